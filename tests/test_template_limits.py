"""The template sandbox counts (issue 11): time, output, loop steps and the size of every value.

Every payload here once hung the orchestrator or exhausted memory (``validate`` even folded the
constant ones while compiling). Each must now fail with one line naming the limit, quickly and
without allocating what it asked for; ordinary templates keep working.
"""

from __future__ import annotations

import time
import tracemalloc

import pytest

from jupyter_workflows.engine.rehearsal import rehearse
from jupyter_workflows.expressions import ExpressionError, render, template_error
from jupyter_workflows.limits import LIMITS, configure

HOSTILE = {
    "format width": "{{ '%03000000000d' | format(1) }}",
    "indent": "{{ 'x' | indent(999999999) }}",
    "nested range loops": (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    ),
    "lipsum": "{{ lipsum(10000000) }}",
    "nested repeat": "{{ [[0] * 10000000] * 10000000 }}",
    "nested repeat in text": "x{{ [[0] * 10000000] * 10000000 }}",
    "center": "{{ 'x' | center(999999999) }}",
    "replace": "{{ ('x' * 1000000) | replace('x', 'y' * 30) }}",
    "join": "{{ range(100000) | map('string') | join('x' * 1000) }}",
    "percent star width": "{{ '%*d' % (999999999, 1) }}",
    "percent precision": "{{ '%.999999999f' % 1.5 }}",
    "str.format width": "{{ '{:>999999999}'.format(1) }}",
    "str.format nested width": "{{ '{:>{}}'.format(1, 999999999) }}",
    "repeat inside a loop": "{% for i in range(100000) %}{{ 'x' * 10000000 }}{% endfor %}",
    "doubling with ~": (
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}"
    ),
    "doubling with +": (
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
        "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}"
    ),
    "squaring ints": (
        "{% set ns = namespace(s=3) %}{% for i in range(40) %}"
        "{% set ns.s = ns.s * ns.s %}{% endfor %}{{ ns.s > 1 }}"
    ),
    "power": "{{ 2 ** (10 ** 7) }}",
    "macro buffer": (
        "{% macro m() %}{% for i in range(100000) %}{{ 'x' * 1000000 }}{% endfor %}"
        "{% endmacro %}{{ m() | length }}"
    ),
    "ljust": "{{ 'x'.ljust(999999999) }}",
    "expandtabs": "{{ 'a\tb'.expandtabs(999999999) }}",
    "str.join": "{{ ','.join(range(100000) | map('string') | map('center', 1000)) }}",
    "batch": "{{ [1] | batch(999999999, 0) | list }}",
    "slice": "{{ [] | slice(999999999) | list }}",
    "tojson indent": "{{ {'a': 1} | tojson(999999999) }}",
    "wordwrap": "{{ 'x y' | wordwrap(1, wrapstring='y' * 10000000) }}",
    "sum of lists": "{{ ([[1] * 1000] * 20000) | sum(start=[]) | length }}",
    "recursive macro": "{% macro f(n) %}{{ f(n) }}{{ f(n) }}{% endmacro %}{{ f(1) }}",
}


@pytest.mark.parametrize("template", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_template_is_one_line_quickly(template: str) -> None:
    start = time.monotonic()
    assert template_error(template) is None  # compiles, and compiling evaluates nothing
    assert time.monotonic() - start < 10
    tracemalloc.start()
    try:
        with pytest.raises(ExpressionError) as info:
            render(template, {})
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert "\n" not in message
    assert "TemplateLimitError" in message or "RecursionError" in message, message
    assert peak < 700 * 2**20, f"{peak / 2**20:.0f} MiB"
    assert time.monotonic() - start < 60  # a hang detector, not a benchmark


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ 'ab' * 3 }}", "ababab"),
        ("{% for i in range(3) %}{{ loop.length }}{% endfor %}", "333"),
        ("{{ range(5) | sum }}", 10),
        ("{{ [[1], [2]] | sum(start=[]) }}", [1, 2]),
        ("{{ ' '.join(['a', 'b']) }}", "a b"),
        ("{{ '{:>5}'.format(1) }}", "    1"),
        ("{{ '%05d' % 3 }}", "00003"),
        ("{{ 'x' | center(5) }}", "  x  "),
        ("{{ [1, 2, 3] | join(',') }}", "1,2,3"),
        ("{{ 'a-b' | replace('-', '+') }}", "a+b"),
        ("{{ 'a\nb' | indent(2, first=true) }}", "  a\n  b"),
        ("{{ 2 ** 10 }}", 1024),
        ("{{ [1, 2] | batch(1) | list }}", [[1], [2]]),
        ("{{ ('x' * 10000000) | length }}", 10_000_000),
        ("{{ lipsum(2, false) | length > 10 }}", True),
        ("{{ {'a': [1]} | tojson(2) }}", '{\n  "a": [\n    1\n  ]\n}'),
        ("{% for x in items %}{{ x }}{% else %}none{% endfor %}", "none"),
    ],
)
def test_ordinary_templates_still_render(template: str, expected: object) -> None:
    assert render(template, {"items": []}) == expected


def test_limits_are_configurable() -> None:
    old = LIMITS.template_loop_iterations
    configure(template_loop_iterations=5)
    try:
        with pytest.raises(ExpressionError, match="JUPYTER_WORKFLOWS_LIMIT_TEMPLATE_LOOP"):
            render("{% for i in range(6) %}{{ i }}{% endfor %}", {})
        assert render("{% for i in range(5) %}{{ i }}{% endfor %}", {}) == "01234"
    finally:
        configure(template_loop_iterations=old)


def test_loop_budget_is_per_render_not_per_process() -> None:
    old = LIMITS.template_loop_iterations
    configure(template_loop_iterations=10)
    try:
        for _ in range(5):  # 5 x 8 steps: each render has its own budget
            assert render("{% for i in range(8) %}.{% endfor %}", {}) == "........"
    finally:
        configure(template_loop_iterations=old)


def test_time_limit_stops_a_slow_render() -> None:
    old = LIMITS.template_seconds
    configure(template_seconds=0.5)
    try:
        start = time.monotonic()
        with pytest.raises(ExpressionError, match="template_seconds"):
            render(
                "{% for i in range(100000) %}{{ range(1000) | map('string') | join }}{% endfor %}",
                {},
            )
        assert time.monotonic() - start < 30
    finally:
        configure(template_seconds=old)


def test_a_hostile_template_fails_its_run_in_one_line() -> None:
    rehearsal = rehearse(
        "name: w\n"
        "tasks:\n"
        "  t:\n"
        "    action: core.echo\n"
        "    input: {message: \"{{ '%03000000000d' | format(1) }}\"}\n"
    )
    assert rehearsal.status == "failed"
    assert "TemplateLimitError" in (rehearsal.error or "")
    assert "\n" not in (rehearsal.error or "")
