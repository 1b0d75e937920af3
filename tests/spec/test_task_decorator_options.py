"""``@jw.task(...)`` options are checked when the decorator runs: one-line SpecError each."""

from __future__ import annotations

import pytest

import jupyter_workflows as jw
from jupyter_workflows.actions import registry
from jupyter_workflows.exceptions import SpecError, WorkflowError
from jupyter_workflows.spec.models import CachePolicy, RetryPolicy


@pytest.fixture(autouse=True)
def _own_registry(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def f(a: int = 1) -> int:
    return a


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"retry": "x"}, "@task: option 'retry': Input should be a mapping (got 'x')"),
        ({"retry": -1}, "option 'retry': Input should be greater than or equal to 0 (got -1)"),
        ({"retry": {"cont": 2}}, "option 'retry': unknown field 'cont' (did you mean 'count'?)"),
        ({"cache": {"ky": 1}}, "option 'cache': unknown field 'ky' (did you mean 'key'?)"),
        ({"cache": {"expire": 0}}, "option 'cache': Input should be greater than 0"),
        ({"timeout": -5}, "option 'timeout': Input should be greater than 0 (got -5)"),
        ({"timeout": "x"}, "option 'timeout': Input should be a valid number"),
        ({"resources": {"GPU": "a"}}, "option 'resources': Input should be a valid number"),
        ({"resources": [1]}, "option 'resources': Input should be a mapping (got [1])"),
        ({"queue": 5}, "option 'queue': Input should be a valid string (got 5)"),
        ({"name": 5}, "@task(name=...) must be a string, got int 5"),
        ({"name": "bad name!"}, "@task: invalid action name 'bad name!'"),
        ({"name": "core.echo"}, "@task: the action name 'core.echo' is reserved"),
        ({"name": "core.mine"}, "'core.*' and 'llm.*' are the builtin actions"),
        ({"name": "llm.prompt"}, "@task: the action name 'llm.prompt' is reserved"),
    ],
)
def test_bad_options_are_one_line_spec_errors(options, says) -> None:
    with pytest.raises(SpecError) as info:
        jw.task(**options)(f)
    assert says in str(info.value)
    assert "\n" not in str(info.value)
    assert isinstance(info.value, WorkflowError)


@pytest.mark.parametrize(
    ("argument", "says"),
    [
        (5, "@task registers a function, got int 5"),
        ("myname", "got str 'myname' (to name the action, write @task(name=...))"),
    ],
)
def test_a_non_function_is_refused(argument, says) -> None:
    with pytest.raises(SpecError, match=r"^@task registers a function") as info:
        jw.task(argument)
    assert says in str(info.value)


def test_a_lambda_needs_a_name() -> None:
    with pytest.raises(SpecError, match="has no name to register it by; give @task"):
        jw.task(lambda: 1)
    assert jw.task(name="named_lambda")(lambda: 1)() == 1


def test_a_builtin_name_is_not_registered() -> None:
    with pytest.raises(SpecError):
        jw.task(name="core.echo")(f)
    assert "core.echo" not in registry._REGISTRY


def test_good_options_are_parsed_as_task_fields() -> None:
    t = jw.task(name="audit.opts", retry=3, timeout=5, cache=True, queue="q", resources={"GPU": 1})(
        f
    )
    d = t.definition
    assert d.name == "audit.opts"
    assert d.retry == RetryPolicy(count=3)
    assert d.timeout == 5
    assert d.cache == CachePolicy()
    assert d.queue == "q"
    assert d.resources == {"GPU": 1.0}
    assert jw.task(cache=False)(f).definition.cache is None
    assert jw.task(f).definition.name == "f"


def test_an_import_path_name_is_accepted() -> None:
    # How a resumed run re-registers kernel-defined functions it called as ``__main__:f``.
    assert jw.task(name="__main__:f")(f).definition.name == "__main__:f"
    assert registry.resolve_action("__main__:f").fn is f
