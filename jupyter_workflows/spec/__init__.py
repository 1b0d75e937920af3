"""The workflow language as pure data: models, loader, compiler, validation, graph shapes.

Importing this package pulls in pydantic, PyYAML and networkx, never Dask (a test pins it).
"""

from __future__ import annotations

from .compile import CompiledWorkflow, CTask, CTransition, compile_workflow
from .loader import SourceMap, load_spec, parse_document
from .models import (
    CachePolicy,
    DecisionEntry,
    ParameterSpec,
    RetryPolicy,
    TaskDefaults,
    TaskSpec,
    Transition,
    WorkflowSpec,
)

__all__ = [
    "CTask",
    "CTransition",
    "CachePolicy",
    "CompiledWorkflow",
    "DecisionEntry",
    "ParameterSpec",
    "RetryPolicy",
    "SourceMap",
    "TaskDefaults",
    "TaskSpec",
    "Transition",
    "WorkflowSpec",
    "compile_workflow",
    "load_spec",
    "parse_document",
]
