"""Property tests of the language: valid documents round-trip, garbage only ever gives SpecError.

``valid_documents`` builds workflows the way people write them: unique names, tasks running
``core.*`` actions, every sugar at random, transitions only to existing tasks, typed parameters
with fitting defaults. ``needs`` only point backwards and ``group`` numbers never decrease down
the document, so no dependency cycle can appear; nothing transitions into the first task, so
there is always a start task.
"""

from __future__ import annotations

import datetime
import json
import string
from typing import Any

import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import jupyter_workflows as jw
from jupyter_workflows import SpecError

SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

RESERVED = {"fail", "noop", "retry"}
ACTIONS = ["core.noop", "core.echo", "core.sleep", "core.fail", "core.shell", "core.http"]

identifiers = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(string.ascii_letters + "_"),
    st.text(alphabet=string.ascii_letters + string.digits + "_", max_size=8),
)
names = st.builds(
    lambda head, tail: head + tail,
    st.sampled_from(string.ascii_letters + "_"),
    st.text(alphabet=string.ascii_letters + string.digits + "_.-", max_size=10),
).filter(lambda n: n not in RESERVED)

# Text without template markup (templates are generated on purpose, below) or YAML comments.
plain_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="{}%"),
    max_size=20,
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False),
    plain_text,
    st.dates(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(identifiers, inner, max_size=3)
    ),
    max_leaves=8,
)
# Names valid wherever a template may stand (templates are strict: ``result`` only in a
# transition, ``item`` only in a with_items task; tests/spec/test_strict_templates.py).
templates = st.sampled_from(
    [
        "{{ parameters }}",
        "{{ parameters | length }}",
        "{{ task | list }}",
        "n={{ (vars | length) + 1 }}",
        "{{ vars | to_json }}",
        "{% if parameters %}yes{% else %}no{% endif %}",
        "{{ system.run_id }}",
    ]
)
conditions = st.sampled_from(
    ["{{ succeeded() }}", "{{ failed() }}", "{{ result == 1 }}", "{{ timed_out() }}", True, False]
)
PARAMETER_VALUES = {
    "string": plain_text,
    "integer": st.integers(min_value=-1000, max_value=1000),
    "number": st.floats(allow_nan=False, allow_infinity=False, width=32),
    "boolean": st.booleans(),
    "array": st.lists(st.integers(), max_size=3),
    "object": st.dictionaries(identifiers, st.integers(), max_size=3),
    "any": values,
}


@st.composite
def parameters(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in draw(st.lists(identifiers, unique=True, max_size=3)):
        kind = draw(st.sampled_from(sorted(PARAMETER_VALUES)))
        spec: dict[str, Any] = {"type": kind}
        if draw(st.booleans()):
            spec["default"] = draw(PARAMETER_VALUES[kind])
        elif draw(st.booleans()):
            spec["required"] = True
        if draw(st.booleans()):
            spec["description"] = draw(plain_text)
        out[name] = kind if draw(st.integers(0, 5)) == 0 else spec
    return out


def options(draw: st.DrawFn) -> dict[str, Any]:
    """The fields a task shares with ``defaults``."""
    out: dict[str, Any] = {}
    if draw(st.booleans()):
        out["retry"] = draw(
            st.one_of(
                st.integers(0, 5),
                st.fixed_dictionaries(
                    {"count": st.integers(0, 5)},
                    optional={
                        "delay": st.floats(0, 60),
                        "backoff": st.sampled_from(["constant", "linear", "exponential"]),
                        "max_delay": st.floats(0, 600),
                    },
                ),
            )
        )
    if draw(st.booleans()):
        out["timeout"] = draw(st.floats(min_value=0.001, max_value=1e6))
    if draw(st.integers(0, 3)) == 0:
        out["resources"] = draw(st.dictionaries(identifiers, st.floats(0, 64), max_size=2))
    if draw(st.integers(0, 3)) == 0:
        out["queue"] = draw(identifiers)
    if draw(st.integers(0, 3)) == 0:
        out["priority"] = draw(st.integers(-100, 100))
    if draw(st.integers(0, 3)) == 0:
        out["cache"] = draw(
            st.one_of(
                st.booleans(),
                st.fixed_dictionaries({}, optional={"key": templates, "expire": st.floats(1, 1e6)}),
            )
        )
    if draw(st.integers(0, 3)) == 0:
        out["max_runs"] = draw(st.integers(1, 100))
    return out


def targets_of(draw: st.DrawFn, pool: list[str]) -> Any:
    chosen = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3))
    return chosen[0] if len(chosen) == 1 and draw(st.booleans()) else chosen


def publish_of(draw: st.DrawFn) -> Any:
    items = draw(
        st.lists(st.tuples(identifiers, st.one_of(templates, values)), min_size=1, max_size=3)
    )
    keys = [k for k, _ in items]
    if len(set(keys)) == len(keys) and draw(st.booleans()):
        return dict(items)
    return [{k: v} for k, v in items]


def task_body(
    draw: st.DrawFn, index: int, pool: list[str], earlier: list[str], group: int | None
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    kind = draw(st.sampled_from(["action", "action", "action", "routing"]))
    if kind == "action":
        body["action"] = draw(st.sampled_from(ACTIONS))
        if draw(st.booleans()):
            body["input"] = draw(
                st.dictionaries(identifiers, st.one_of(values, templates), max_size=3)
            )
        if draw(st.integers(0, 3)) == 0:
            body["with_items"] = draw(
                st.one_of(st.lists(values, max_size=3), st.just("{{ parameters | list }}"))
            )
            if draw(st.booleans()):
                body["batch_size"] = draw(st.integers(1, 10))
    body.update(options(draw))
    if draw(st.integers(0, 3)) == 0:
        body["description"] = draw(plain_text)
    if pool and draw(st.booleans()):
        body["on_success"] = targets_of(draw, pool)
    if pool and draw(st.integers(0, 2)) == 0:
        body["on_failure"] = targets_of(draw, [*pool, "fail", "noop"])
    if pool and draw(st.integers(0, 3)) == 0:
        body["on_complete"] = targets_of(draw, pool)
    if draw(st.integers(0, 3)) == 0:
        body["publish"] = publish_of(draw)
    if pool and draw(st.integers(0, 3)) == 0:
        entries: list[dict[str, Any]] = [
            {"when": draw(conditions), "next": targets_of(draw, pool)}
            for _ in range(draw(st.integers(1, 2)))
        ]
        if draw(st.booleans()):
            entries[0]["publish"] = publish_of(draw)
        if draw(st.booleans()):
            entries.append({"default": targets_of(draw, pool)})
        body["decision"] = entries
    if pool and draw(st.integers(0, 3)) == 0:
        body["next"] = [
            {
                k: v
                for k, v in {
                    "when": draw(st.one_of(st.none(), conditions)),
                    "publish": publish_of(draw) if draw(st.booleans()) else None,
                    "do": targets_of(draw, [*pool, "fail", "noop", "retry"]),
                }.items()
                if v is not None
            }
            for _ in range(draw(st.integers(1, 2)))
        ]
    if earlier and draw(st.integers(0, 3)) == 0:
        body["needs"] = targets_of(draw, earlier)
        if draw(st.booleans()):
            body["join"] = "all"
    if group is not None:
        body["group"] = group
    return body


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    all_names = draw(st.lists(names, min_size=1, max_size=7, unique=True))
    n_top = draw(st.integers(1, len(all_names)))
    top, spare = all_names[:n_top], all_names[n_top:]
    # Non-decreasing groups: group edges only point down the document, like needs.
    groups = sorted(draw(st.lists(st.integers(0, 4), min_size=n_top, max_size=n_top)))
    use_groups = draw(st.integers(0, 3)) == 0
    tasks: dict[str, Any] = {}
    for i, name in enumerate(top):
        pool = top[1:]  # the first task is never a target, so it always starts
        body = task_body(draw, i, pool, top[:i], groups[i] if use_groups else None)
        if spare and draw(st.integers(0, 2)) == 0:
            # A parallel group of the spare names: plain action tasks.
            members = {m: {"action": draw(st.sampled_from(ACTIONS))} for m in spare}
            spare = []
            for key in ("action", "input", "with_items", "batch_size"):
                body.pop(key, None)
            body = {"type": "parallel", "tasks": members, **body}
        tasks[name] = body
    doc: dict[str, Any] = {"name": draw(names)}
    if draw(st.booleans()):
        doc["description"] = draw(plain_text)
    if draw(st.integers(0, 3)) == 0:
        doc["version"] = draw(st.one_of(st.integers(0, 10), st.sampled_from(["1.0", "2024-a"])))
    if draw(st.booleans()):
        doc["parameters"] = draw(parameters())
    if draw(st.booleans()):
        doc["vars"] = draw(st.dictionaries(identifiers, st.one_of(values, templates), max_size=3))
    if draw(st.integers(0, 2)) == 0:
        doc["defaults"] = options(draw)
    if draw(st.integers(0, 3)) == 0:
        doc["keep_going"] = draw(st.booleans())
    if draw(st.booleans()):
        doc["output_map"] = draw(st.dictionaries(identifiers, templates, max_size=2))
    if draw(st.integers(0, 2)) == 0:
        doc["tasks"] = [
            {"name": n, **b} if draw(st.booleans()) else {n: b} for n, b in tasks.items()
        ]
    else:
        doc["tasks"] = tasks
    return doc


def assert_same(a: jw.Workflow, b: jw.Workflow) -> None:
    assert a == b
    assert a.spec == b.spec
    assert a.compiled.tasks == b.compiled.tasks
    assert a.compiled.start == b.compiled.start
    assert a.compiled.needs == b.compiled.needs


@SETTINGS
@given(valid_documents())
def test_valid_documents_validate_and_round_trip(doc: dict[str, Any]) -> None:
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)
    workflow = jw.load(text)
    warnings = workflow.validate()
    assert all(w.message for w in warnings)
    assert workflow.compiled.start
    again = jw.load(workflow.to_yaml())
    assert_same(again, workflow)
    assert again.to_yaml() == workflow.to_yaml()


@SETTINGS
@given(valid_documents())
def test_json_and_yaml_documents_agree(doc: dict[str, Any]) -> None:
    def plain(value: Any) -> Any:  # JSON has no dates
        if isinstance(value, datetime.date):
            return value.isoformat()
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value

    doc = plain(doc)
    assume(all(abs(x) != float("inf") for x in _floats(doc)))  # JSON has no infinity either
    from_yaml = jw.load(yaml.safe_dump(doc, sort_keys=False))
    from_json = jw.load(json.dumps(doc, indent=2))
    assert_same(from_json, from_yaml)


def _floats(value: Any):
    if isinstance(value, float):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _floats(v)
    elif isinstance(value, list):
        for v in value:
            yield from _floats(v)


def _only_spec_errors(text: str) -> None:
    try:
        jw.load(text, name="fallback").validate()
    except SpecError as error:
        assert "\n" not in str(error)
        assert error.line is None or error.line >= 1
        assert error.col is None or error.col >= 1


@SETTINGS
@given(st.text(max_size=200))
def test_garbage_text_gives_only_spec_errors(text: str) -> None:
    _only_spec_errors(text)


yaml_tokens = st.sampled_from(
    [
        "name:",
        " w\n",
        "tasks:",
        "\n  ",
        "a:",
        " {",
        "}",
        "[",
        "]",
        ",",
        "-",
        " ",
        "\t",
        ":",
        "action: core.noop",
        "on_success: a",
        "needs: [a]",
        "'",
        '"',
        "&x",
        "*x",
        "<<: *x",
        "|",
        ">",
        "\n",
        "#",
        "!!str",
        "!!python/name:os.system",
        "{{ result",
        " }}",
        "{%",
        "%}",
        "---",
        "...",
        "? ",
        "type: parallel",
        "decision:",
        "- when: x",
        "group: 1",
        "join: 2",
        "retry: -1",
        "timeout: abc",
        "\ufeff",
        "\x00",
        "~",
        "null",
        "true",
        "0x1F",
        "1e9",
    ]
)


@SETTINGS
@given(st.lists(yaml_tokens, max_size=40).map("".join))
def test_yaml_shaped_garbage_gives_only_spec_errors(text: str) -> None:
    _only_spec_errors(text)


garbage_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(),
        st.text(max_size=10),
        st.sampled_from(["{{ x", "{{ x }}", "fail", "core.noop", "parallel", "all", "a", "b"]),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(
                st.sampled_from(
                    [
                        "name",
                        "tasks",
                        "action",
                        "workflow",
                        "input",
                        "next",
                        "do",
                        "when",
                        "on_success",
                        "needs",
                        "group",
                        "join",
                        "type",
                        "decision",
                        "default",
                        "publish",
                        "retry",
                        "cache",
                        "parameters",
                        "vars",
                        "defaults",
                        "with_items",
                        "batch_size",
                        "a",
                        "b",
                        "timeout",
                        "type",
                        "count",
                    ]
                ),
                st.text(max_size=6),
            ),
            inner,
            max_size=5,
        ),
    ),
    max_leaves=30,
)


@SETTINGS
@given(garbage_values)
def test_random_documents_give_only_spec_errors(data: Any) -> None:
    _only_spec_errors(yaml.safe_dump(data, allow_unicode=True))


@SETTINGS
@given(valid_documents(), st.data())
def test_mutated_valid_documents_give_only_spec_errors(
    doc: dict[str, Any], data: st.DataObject
) -> None:
    """Break one value somewhere in a valid document: deep parts of the code get garbage."""
    paths: list[tuple[Any, ...]] = []

    def walk(value: Any, path: tuple[Any, ...]) -> None:
        paths.append(path)
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, (*path, k))
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, (*path, i))

    walk(doc, ())
    path = data.draw(st.sampled_from(paths[1:]))
    replacement = data.draw(garbage_values)
    target = doc
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = replacement
    _only_spec_errors(yaml.safe_dump(doc, allow_unicode=True))
