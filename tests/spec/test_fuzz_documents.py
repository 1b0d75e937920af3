"""Fuzz the loader and validator (issue 11): thousands of generated broken documents, each one a
one-line WorkflowError or a workflow, never a traceback, a hang or a memory blow-up.

Documents are made by mutating valid seeds with fragments an attacker or a careless user would
write (tags, anchors and aliases, merge keys, deep brackets, control characters, huge numbers,
templates that would be expensive to evaluate, bad schedules). Deterministic (a fixed seed), and
bounded: each document must finish in a few seconds, the whole run in well under a minute.
"""

from __future__ import annotations

import random
import resource
import time

import jupyter_workflows as jw
from jupyter_workflows.exceptions import WorkflowError

SEEDS = [
    "name: a\ntasks:\n  t: {action: core.noop, on_success: u}\n  u: {action: core.echo}\n",
    "name: b\nparameters: {n: {type: integer, default: 1}}\ntasks:\n  t:\n    action: core.echo\n"
    "    input: {x: '{{ parameters.n }}'}\n    decision:\n      - {when: '{{ result }}', next: u}\n"
    "      - {default: [u]}\n  u: {action: core.noop}\n",
    '{"name": "c", "tasks": {"t": {"action": "core.noop", "retry": 2}}}',
    "name: d\nschedule: '@daily'\ntasks:\n  - name: t\n    action: core.noop\n    with_items: [1, 2]\n",
]

FRAGMENTS = [
    "!!int x",
    "!!float abc",
    "!!bool maybe",
    "!!binary ###",
    "!!timestamp 2020-99-99",
    "!!set {a}",
    "!!python/object:os.system x",
    "!custom 1",
    "&a",
    "*a",
    "*undefined",
    "<<: 5",
    "<<: [1]",
    "<<: *a",
    "? [a, b]\n: 1",
    "[" * 500,
    "{" * 500,
    "]" * 3,
    "9" * 5000,
    "1e400",
    "-.inf",
    ".nan",
    "\t",
    "\x00",
    "\x1b",
    "\ufeff",
    "\ud800",
    "'unterminated",
    '"\\u12"',
    "- - - -",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "%TAG ! tag:x\n",
    "|\n  block",
    ">-\n folded",
    ": :",
    "?",
    "{{ '%03000000000d' | format(1) }}",
    "{{ 9 ** 9 ** 9 }}",
    "{% for i in range(99999) %}",
    "{{ lipsum(99999999) }}",
    "'{{ ' * 50",
    "RRULE:FREQ=MINUTELY;INTERVAL=0",
    "RRULE:FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30",
    "0 0 30 2 *",
    "schedule: 'RRULE:INTERVAL=0'",
    "decision: [{default: x}, {default: y}]",
    "needs: [t, t, t]",
    "group: -1",
    "join: 0",
    "retry: {count: 1e400}",
    "timeout: -1",
    "with_items: '{{ range(10**9) }}'",
    "tasks: []",
    "tasks: {}",
    "name: ''",
    "name: [1]",
    "x" * 2000,
    "k" * 1100 + ": 1",
]


def _mutate(rng: random.Random, text: str) -> str:
    for _ in range(rng.randint(1, 4)):
        kind = rng.random()
        at = rng.randint(0, len(text))
        if kind < 0.5:
            text = text[:at] + rng.choice(FRAGMENTS) + text[at:]
        elif kind < 0.65:
            text = text[:at] + text[at + rng.randint(1, 10) :]
        elif kind < 0.8:
            line = rng.choice(text.splitlines() or [""])
            text = text[:at] + "\n" + line + "\n" + text[at:]
        elif kind < 0.9:
            anchors = "x: &a [" + ", ".join(["lol"] * 9) + "]\n"
            for i in range(rng.randint(1, 12)):
                anchors += f"y{i}: &a [" + ", ".join(["*a"] * 9) + "]\n"
            text = anchors + text
        else:
            text = (
                text[:at]
                + chr(rng.randint(0, 0x10FFFF))
                .encode("utf-8", "replace")
                .decode("utf-8", "replace")
                + text[at:]
            )
    return text


def test_seeds_are_valid() -> None:
    for seed in SEEDS:
        jw.load(seed).validate()


def test_fuzz_loader_and_validator() -> None:
    rng = random.Random(11)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    outcomes = {"loaded": 0, "refused": 0}
    slowest = (0.0, "")
    for _ in range(2500):
        text = _mutate(rng, rng.choice(SEEDS))
        began = time.monotonic()
        try:
            workflow = jw.load(text)
            workflow.validate()
            outcomes["loaded"] += 1
        except WorkflowError as exc:
            message = str(exc)
            assert "\n" not in message and len(message) < 1200, repr(message[:300])
            assert "internal error" not in message, message
            outcomes["refused"] += 1
        took = time.monotonic() - began
        slowest = max(slowest, (took, text[:200]))
        assert took < 10, (took, text[:300])  # a hang detector
    grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown < 1024, f"peak memory grew by {grown:.0f} MiB"
    assert outcomes["refused"] > 1000 and outcomes["loaded"] > 0, outcomes
    assert time.monotonic() - start < 240, slowest
