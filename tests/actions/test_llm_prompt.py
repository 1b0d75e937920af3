"""``llm.prompt`` end to end against a loopback OpenAI-compatible server started by the test.

The server (``http.server`` in a thread, 127.0.0.1, port 0) speaks ``POST /v1/chat/completions``
plain and streamed (server-sent events), checks the bearer key, can be told to answer 429/503 a
few times first, and records what it was asked. Runs go through the real engine (in-process
executor) and a SQLite store, which is scanned byte by byte for the API key afterwards.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import jupyter_workflows as jw
from jupyter_workflows.exceptions import SpecError

KEY = "sk-test-0123456789abcdef-never-stored"


class FakeLLM:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.failures: list[int] = []  # statuses to answer first, one per request
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with outer.lock:
                    outer.requests.append(
                        {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
                    )
                    status = outer.failures.pop(0) if outer.failures else 200
                if self.path != "/v1/chat/completions":
                    return self._json(404, {"error": "no such path"})
                if self.headers.get("Authorization") != f"Bearer {KEY}":
                    # Like some servers, echo what was sent: the action must not repeat it.
                    return self._json(
                        401, {"error": f"bad key {self.headers.get('Authorization')}"}
                    )
                if status != 200:
                    return self._json(status, {"error": {"message": "busy, try later"}})
                prompt = body["messages"][-1]["content"]
                reply = f"You asked: {prompt}"
                usage = {
                    "prompt_tokens": len(prompt.split()),
                    "completion_tokens": len(reply.split()),
                    "total_tokens": len(prompt.split()) + len(reply.split()),
                }
                if not body.get("stream"):
                    return self._json(
                        200,
                        {
                            "id": "c1",
                            "model": body["model"],
                            "choices": [
                                {"index": 0, "message": {"role": "assistant", "content": reply}}
                            ],
                            "usage": usage,
                        },
                    )
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                words = reply.split(" ")
                for i, word in enumerate(words):
                    piece = word if i == 0 else " " + word
                    chunk = {
                        "model": body["model"],
                        "choices": [{"index": 0, "delta": {"content": piece}}],
                    }
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                final = {"model": body["model"], "choices": [], "usage": usage}
                self.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())

            def _json(self, status: int, data: Any) -> None:
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch, engine: Any) -> Iterator[FakeLLM]:
    server = FakeLLM()
    monkeypatch.setenv("LLM_TEST_KEY", KEY)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    yield server
    server.close()


def _workflow(
    folder: Path,
    url: str,
    *,
    stream: bool = False,
    retry: int = 0,
    key: str = "{{ secret('LLM_TEST_KEY') }}",
) -> Any:
    (folder / "prompts").mkdir(exist_ok=True)
    (folder / "prompts" / "summary.j2").write_text(
        "Summarise {{ parameters.topic }} in {{ vars.words }} words"
        "{% if parameters.tone %}, {{ parameters.tone }}{% endif %}."
    )
    doc = f"""\
name: summarise
parameters:
  topic: {{type: string}}
  tone: {{type: string, default: ""}}
vars:
  words: 12
tasks:
  ask:
    action: llm.prompt
    retry: {{count: {retry}, delay: 0.05}}
    input:
      prompt_file: prompts/summary.j2
      system: You are terse.
      model: tiny-test
      base_url: {url}
      api_key: "{key}"
      stream: {str(stream).lower()}
output_map:
  text: "{{{{ task.ask.result }}}}"
"""
    path = folder / "summarise.yaml"
    path.write_text(doc)
    return jw.load(path)


def _no_key_anywhere(folder: Path, run: Any) -> None:
    for path in folder.rglob("*"):
        if path.is_file() and "prompts" not in path.parts:
            assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in json.dumps(run.trace(), default=str)
    assert KEY not in json.dumps(run.to_dict(), default=str)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streaming"])
def test_a_prompt_from_a_file_plain_and_streamed(
    llm: FakeLLM, tmp_path: Path, stream: bool
) -> None:
    wf = _workflow(tmp_path, llm.url, stream=stream)
    run = wf.run({"topic": "the quarterly sales", "tone": "politely"})
    assert run.status == "succeeded", run.error
    asked = "Summarise the quarterly sales in 12 words, politely."
    assert run.outputs == {"text": f"You asked: {asked}"}
    (request,) = llm.requests
    assert request["auth"] == f"Bearer {KEY}"
    assert request["body"]["model"] == "tiny-test"
    assert request["body"]["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": asked},
    ]
    assert bool(request["body"].get("stream")) is stream
    logs = "\n".join(line for t in run.trace()["tasks"] for line in t.get("logs", []))
    assert (
        "llm.prompt: model tiny-test, prompt_tokens 8, completion_tokens 10, total_tokens 18"
        in logs
    )
    _no_key_anywhere(tmp_path, run)


def test_busy_answers_are_retried_with_the_tasks_policy(llm: FakeLLM, tmp_path: Path) -> None:
    llm.failures = [429, 503]
    run = _workflow(tmp_path, llm.url, retry=3).run({"topic": "retries"})
    assert run.status == "succeeded", run.error
    assert run.tasks[0]["attempts"] == 3 and len(llm.requests) == 3
    _no_key_anywhere(tmp_path, run)


def test_without_retries_a_busy_server_fails_the_run_in_one_line(
    llm: FakeLLM, tmp_path: Path
) -> None:
    llm.failures = [429]
    run = _workflow(tmp_path, llm.url, retry=0).run({"topic": "no retries"})
    assert run.status == "failed"
    assert run.error.startswith("LLMUnavailable: task 'ask' failed: LLM server answered HTTP 429")
    assert "\n" not in run.error


def test_a_wrong_key_is_not_repeated_in_the_error(
    llm: FakeLLM, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_TEST_KEY", KEY + "-wrong")
    run = _workflow(tmp_path, llm.url).run({"topic": "keys"})
    assert run.status == "failed"
    assert "HTTP 401" in run.error and "bad key Bearer ***" in run.error
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert (KEY + "-wrong").encode() not in path.read_bytes(), path


def test_an_unreachable_server_is_one_line(
    engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("LLM_TEST_KEY", KEY)
    run = _workflow(tmp_path, f"http://127.0.0.1:{port}/v1").run({"topic": "void"})
    assert run.status == "failed" and "unreachable" in run.error and "\n" not in run.error


def test_a_bad_prompt_file_stops_the_run_before_it_exists(engine: Any, tmp_path: Path) -> None:
    wf = _workflow(tmp_path, "http://127.0.0.1:9/v1")
    (tmp_path / "prompts" / "summary.j2").write_text("line one\nSummarise {{ parameters.topic ")
    with pytest.raises(SpecError) as caught:
        wf.run({"topic": "x"})
    assert str(caught.value).startswith(
        f"{tmp_path / 'prompts' / 'summary.j2'}:2:1: template syntax error"
    )
    (tmp_path / "prompts" / "summary.j2").unlink()
    with pytest.raises(SpecError, match="prompt_file: cannot read it"):
        wf.run({"topic": "x"})
    assert jw.runs() == []


@pytest.mark.cluster
def test_on_dask_workers_streamed_with_retries(
    dask_engine: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same on a real LocalCluster: the prompt file is read where the run starts, the task
    runs in a worker process, a 503 is retried, and the key stays out of the store."""
    server = FakeLLM()
    monkeypatch.setenv("LLM_TEST_KEY", KEY)
    try:
        server.failures = [503]
        run = _workflow(tmp_path, server.url, stream=True, retry=2).run({"topic": "workers"})
        assert run.status == "succeeded", run.error
        assert run.outputs == {"text": "You asked: Summarise workers in 12 words."}
        assert run.tasks[0]["attempts"] == 2
        _no_key_anywhere(tmp_path, run)
    finally:
        server.close()
