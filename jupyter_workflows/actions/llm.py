"""``llm.prompt``: one chat completion from any OpenAI-compatible server, as a task.

Inputs: ``prompt`` (or ``prompt_file``, below), ``system``, ``model``, ``base_url``, ``api_key``,
``temperature``, ``max_tokens``, ``stream``, ``timeout``. The result is the reply's text.

- **Servers.** ``POST {base_url}/chat/completions`` (OpenAI, vLLM, Ollama, llama.cpp, ...).
  ``base_url`` defaults to ``$OPENAI_BASE_URL``, else a local Ollama (``127.0.0.1:11434/v1``);
  ``api_key`` to ``$OPENAI_API_KEY``; ``model`` to ``$JUPYTER_WORKFLOWS_LLM_MODEL``, else
  ``llama3``.
- **Streaming.** ``stream: true`` reads the server-sent events as they come (and asks for the
  usage in the last one, ``stream_options.include_usage``); the result is the same text.
- **Retries.** A ``429`` or ``5xx`` answer (or a dropped connection) fails the attempt with
  ``LLMUnavailable``; the task's ``retry:`` policy (count, delay, backoff) decides whether and
  when it is tried again. Other ``4xx`` answers fail with ``ActionFailed``.
- **Usage.** The token counts the server reports are logged into the run's trace:
  ``llm.prompt: model M, prompt_tokens P, completion_tokens C, total_tokens T``.
- **The API key** is sent only in the ``Authorization`` header. Give it as
  ``api_key: "{{ secret('NAME') }}"`` (masked as ``***`` in every stored input, trace and
  output) or through ``$OPENAI_API_KEY`` on the workers; it is removed from any error text.
- **Prompt files.** ``prompt_file: prompts/summary.j2`` (relative to the workflow's folder) is
  read when the run starts and becomes the task's ``prompt``, rendered like any input, with the
  same sandboxed templates and scopes (``parameters``, ``vars``, ``task.X.result``, ``item``...).
  A file that is missing or has a template syntax error stops the run from starting, with
  ``FILE:LINE:COL: message``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["LLMUnavailable", "inline_prompt_file", "llm_prompt"]


class LLMUnavailable(Exception):
    """The server is busy or failing (429, 5xx, connection): worth another attempt."""


def _hide(text: str, key: str | None) -> str:
    return text.replace(key, "***") if key else text


def llm_prompt(
    prompt: str,
    system: str | None = None,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    stream: bool = False,
    timeout: float = 120.0,
    context: Any = None,
) -> str:
    """Ask an OpenAI-compatible chat-completions server; return the reply's text."""
    import httpx

    from .base import ActionFailed

    base = (base_url or os.environ.get("OPENAI_BASE_URL") or "http://127.0.0.1:11434/v1").rstrip(
        "/"
    )
    key = api_key or os.environ.get("OPENAI_API_KEY") or None
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": "user", "content": prompt}
    ]
    body: dict[str, Any] = {
        "model": model or os.environ.get("JUPYTER_WORKFLOWS_LLM_MODEL", "llama3"),
        "messages": messages,
    }
    if temperature is not None:
        body["temperature"] = temperature
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    url = f"{base}/chat/completions"

    def refused(status: int, text: str) -> Exception:
        detail = _hide(" ".join(text.split())[:200], key)
        message = f"LLM server answered HTTP {status} from {url}" + (
            f": {detail}" if detail else ""
        )
        if status == 429 or status >= 500:
            return LLMUnavailable(message)
        return ActionFailed(message)

    try:
        if stream:
            with httpx.stream("POST", url, json=body, headers=headers, timeout=timeout) as resp:
                if resp.status_code >= 400:
                    raise refused(resp.status_code, resp.read().decode("utf-8", "replace"))
                text, usage, model_used = _read_stream(resp.iter_lines())
        else:
            resp = httpx.post(url, json=body, headers=headers, timeout=timeout)
            if resp.status_code >= 400:
                raise refused(resp.status_code, resp.text)
            try:
                data = resp.json()
                text = data["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError):
                raise ActionFailed(
                    f"LLM server at {url} answered without choices[0].message.content"
                ) from None
            usage, model_used = data.get("usage"), data.get("model")
    except httpx.TransportError as exc:
        raise LLMUnavailable(
            _hide(f"LLM server {url} unreachable: {type(exc).__name__}: {exc}", key)
        ) from None
    _log_usage(context, model_used or body["model"], usage)
    return text


def _read_stream(lines: Any) -> tuple[str, dict[str, Any] | None, str | None]:
    """The text, usage and model of a chat-completions event stream."""
    from .base import ActionFailed

    parts: list[str] = []
    usage = model = None
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            break
        try:
            event = json.loads(data)
        except ValueError:
            raise ActionFailed(
                f"LLM server sent an event that is not JSON: {data[:80]!r}"
            ) from None
        model = event.get("model") or model
        if event.get("usage"):
            usage = event["usage"]
        for choice in event.get("choices") or []:
            piece = (choice.get("delta") or {}).get("content")
            if piece:
                parts.append(piece)
    return "".join(parts), usage, model


def _log_usage(context: Any, model: str, usage: dict[str, Any] | None) -> None:
    import logging

    logger = getattr(context, "logger", None) or logging.getLogger("jupyter_workflows.task")
    if not usage:
        logger.info("llm.prompt: model %s, the server reported no token usage", model)
        return
    logger.info(
        "llm.prompt: model %s, prompt_tokens %s, completion_tokens %s, total_tokens %s",
        model,
        usage.get("prompt_tokens"),
        usage.get("completion_tokens"),
        usage.get("total_tokens"),
    )


def inline_prompt_file(task_input: Any, base_dir: str | Path) -> Any:
    """``input`` with ``prompt_file`` replaced by ``prompt`` (the file's text), for a run start.

    Raises :class:`~jupyter_workflows.exceptions.SpecError` for a missing file or a template
    syntax error in it (``FILE:LINE:COL: message``).
    """
    from ..exceptions import SpecError
    from ..expressions import is_template, template_error

    if not isinstance(task_input, dict) or "prompt_file" not in task_input:
        return task_input
    name = task_input["prompt_file"]
    if not isinstance(name, str) or is_template(name):
        raise SpecError(f"prompt_file must be a file name (relative to {base_dir}), not {name!r}")
    path = Path(name) if Path(name).is_absolute() else Path(base_dir) / name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(
            f"prompt_file: cannot read it ({exc.strerror or exc})", file=str(path)
        ) from None
    except UnicodeDecodeError:
        raise SpecError("prompt_file: not UTF-8 text", file=str(path)) from None
    problem = template_error(text)
    if problem is not None:
        line, col, message = problem
        raise SpecError(f"template syntax error: {message}", file=str(path), line=line, col=col)
    if "prompt" in task_input:
        raise SpecError(f"{path}: give either prompt or prompt_file, not both")
    out = {k: v for k, v in task_input.items() if k != "prompt_file"}
    out["prompt"] = text
    return out
