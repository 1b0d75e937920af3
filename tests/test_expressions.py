"""Tests for jupyter_workflows.expressions: native rendering, the sandbox, errors, secrets."""

from __future__ import annotations

import datetime
import pickle
import threading
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jinja2 import Undefined

from jupyter_workflows import expressions
from jupyter_workflows.exceptions import StoreError, WorkflowError
from jupyter_workflows.expressions import (
    MASKER,
    ExpressionError,
    SecretMasker,
    evaluate,
    exact_expression,
    is_template,
    render,
    secret_function,
    secret_lookup,
    template_error,
)


@dataclass
class TaskView:
    result: Any = None
    status: str = "succeeded"
    error: str | None = None
    attempts: int = 1


class KeyValue:
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def get(self, key: str, default: Any = None) -> Any:
        return self._data.get(key, default)


@pytest.fixture
def scope() -> dict[str, Any]:
    return {
        "parameters": {"app": "web", "regions": ["eu", "us"], "replicas": 3, "code": "007"},
        "vars": {"deployment_id": "d-42", "config": {"a": 1}},
        "task": {
            "build": {"result": {"image": "web:1"}, "status": "succeeded", "attempts": 2},
            "items": {"result": "shadowed", "status": "failed"},
            "update": {"result": 5},
            "train": TaskView(result=[1, 2, 3], attempts=3),
        },
        "item": "eu",
        "index": 0,
        "result": None,
        "error": None,
        "system": {"run_id": "r1", "workflow": "deploy"},
        "kv": KeyValue({"k": "v"}),
        "succeeded": lambda: True,
        "failed": lambda: False,
        "completed": lambda: True,
        "timed_out": lambda: False,
    }


# -- native types -----------------------------------------------------------------------------


def test_exact_expression_keeps_native_types(scope: dict[str, Any]) -> None:
    assert render("{{ parameters.regions }}", scope) == ["eu", "us"]
    assert render("{{ vars.config }}", scope) == {"a": 1}
    assert render("{{ parameters.replicas }}", scope) == 3
    assert render("{{ index }}", scope) == 0
    assert render("{{ parameters.code }}", scope) == "007"  # no literal_eval guessing
    assert render("{{ parameters.replicas * 2 }}", scope) == 6
    assert render("{{ parameters.regions | length }}", scope) == 2
    assert render("{{ [item, index] }}", scope) == ["eu", 0]
    assert render("{{-  item  -}}", scope) == "eu"
    assert render("{{item}}", scope) == "eu"


def test_missing_values_are_errors_strict_templates(scope: dict[str, Any]) -> None:
    # CONTRACT §1.3: an undefined lookup is an error at run time, not null
    for template in (
        "{{ nothing }}",
        "{{ result.approved }}",  # result is None
        "{{ result.a.b.c }}",
        "{{ parameters.nothing }}",
        "{{ parameters['nothing'] }}",
        "{{ [result.x, 1] }}",
        "{{ {'k': result.x} }}",
        "[{{ result.approved }}]",
        "{{ result.x | to_json }}",
        "{{ parameters.nothing or 1 }}",
    ):
        with pytest.raises(ExpressionError, match="UndefinedError"):
            render(template, scope)


def test_missing_values_under_an_explicit_default(scope: dict[str, Any]) -> None:
    assert render("{{ nothing | default(None) }}", scope) is None
    assert render("{{ result.a.b.c | default(3) }}", scope) == 3
    assert render("{{ parameters.nothing | default('x') }}", scope) == "x"
    assert render("n={{ parameters['nothing'] | default(0) }}", scope) == "n=0"
    assert render("{{ nothing is defined }}", scope) is False
    assert render("{{ parameters.app if parameters.app is defined else 1 }}", scope) == "web"


def test_generators_become_lists(scope: dict[str, Any]) -> None:
    assert render("{{ parameters.regions | map('upper') }}", scope) == ["EU", "US"]
    assert render("{{ parameters.regions | reject('equalto', 'eu') }}", scope) == ["us"]


def test_anything_else_renders_to_a_string(scope: dict[str, Any]) -> None:
    assert render("deploy {{ parameters.app }}", scope) == "deploy web"
    assert render("deploy {{ parameters.app | upper }}", scope) == "deploy WEB"
    assert render(" {{ index }}", scope) == " 0"
    assert render("{{ index }} ", scope) == "0 "
    assert render("{{ item }}{{ index }}", scope) == "eu0"
    assert render("{{ item }}\n", scope) == "eu\n"  # YAML block scalars keep their newline
    assert render("{% for r in parameters.regions %}{{ r }},{% endfor %}", scope) == "eu,us,"
    assert render("n={{ parameters.regions }}", scope) == "n=['eu', 'us']"
    assert render("{{ nothing | default('fallback') }}", scope) == "fallback"


def test_non_templates_are_returned_unchanged(scope: dict[str, Any]) -> None:
    value = {"a": [1, "plain", {"b": None}], "c": (1.5, True)}
    assert render(value, scope) is value
    assert render("plain {text} with braces", scope) == "plain {text} with braces"
    assert render("{# a comment only #}", scope) == "{# a comment only #}"
    assert render(42, scope) == 42
    assert render(None, scope) is None


def test_containers_are_rendered_recursively(scope: dict[str, Any]) -> None:
    value = {
        "{{ item }}": "{{ item }}",
        "list": ["{{ index }}", "x", {"deep": "{{ parameters.app }}"}],
        "tuple": ("{{ item }}", 1),
        "same": ["untouched"],
    }
    rendered = render(value, scope)
    assert rendered == {
        "{{ item }}": "eu",  # keys stay as they are
        "list": [0, "x", {"deep": "web"}],
        "tuple": ("eu", 1),
        "same": ["untouched"],
    }
    assert rendered["same"] is value["same"]
    assert value["list"][0] == "{{ index }}"  # the input is not modified


def test_typical_task_input(scope: dict[str, Any]) -> None:
    value = {"region": "{{ item }}", "n": "{{ index }}", "msg": "deploy {{ parameters.app }}"}
    assert render(value, scope) == {"region": "eu", "n": 0, "msg": "deploy web"}


# -- lookups ----------------------------------------------------------------------------------


def test_attribute_access_on_dicts_and_objects(scope: dict[str, Any]) -> None:
    assert render("{{ task.build.result.image }}", scope) == "web:1"
    assert render("{{ task.build.attempts }}", scope) == 2
    assert render("{{ task['build']['status'] }}", scope) == "succeeded"
    assert render("{{ task.train.result }}", scope) == [1, 2, 3]
    assert render("{{ task.train.attempts }}", scope) == 3
    assert render("{{ task.train.result[1] }}", scope) == 2
    assert render("{{ system.run_id }}-{{ vars.deployment_id }}", scope) == "r1-d-42"


def test_mapping_keys_win_over_dict_methods(scope: dict[str, Any]) -> None:
    assert render("{{ task.items.result }}", scope) == "shadowed"
    assert render("{{ task.update.result }}", scope) == 5
    assert render("{{ task.items.status }} and {{ task.update.result }}", scope) == "failed and 5"


def test_fast_paths_agree_with_jinja(scope: dict[str, Any]) -> None:
    env = expressions._ENV
    templates = [
        "{{ item }}",
        "{{ task.build.result.image }}",
        "{{ task['build'].status }}",
        "{{ task.train.result[0] }}",
        "{{ range }}",
    ]
    for template in templates:
        inner = exact_expression(template)
        assert inner is not None
        assert render(template, scope) == env.compile_expression(inner)(scope), template
        mixed = f"<{template}|{template}>"
        assert render(mixed, scope) == env.from_string(mixed).render(scope), mixed
    for template in ("{{ result.approved }}", "{{ nothing.at.all }}"):  # both strict
        inner = exact_expression(template)
        with pytest.raises(ExpressionError, match="UndefinedError"):
            render(template, scope)
        value = env.compile_expression(inner, undefined_to_none=False)(scope)
        assert isinstance(value, Undefined)
        with pytest.raises(ExpressionError, match="UndefinedError"):
            render(f"<{template}>", scope)


def test_compiled_templates_are_cached(scope: dict[str, Any]) -> None:
    template = "{{ parameters.app ~ ' cached' }}"
    render(template, scope)
    hits = expressions._compile.cache_info().hits
    assert render(template, scope) == "web cached"
    assert expressions._compile.cache_info().hits == hits + 1


# -- filters and callables --------------------------------------------------------------------


def test_from_json_and_to_json(scope: dict[str, Any]) -> None:
    assert render('{{ \'{"b": [1, 2], "a": null}\' | from_json }}', scope) == {
        "b": [1, 2],
        "a": None,
    }
    scope["data"] = {"b": 1, "a": datetime.date(2024, 1, 2)}
    assert render("{{ data | to_json }}", scope) == '{"b": 1, "a": "2024-01-02"}'
    assert render("{{ result.x | default(None) | to_json }}", scope) == "null"
    assert render("{{ [1] | to_json(indent=1) }}", scope) == "[\n 1\n]"
    assert render("{{ data | to_json | from_json }}", scope) == {"b": 1, "a": "2024-01-02"}


def test_from_json_error_is_an_expression_error(scope: dict[str, Any]) -> None:
    with pytest.raises(ExpressionError, match="JSONDecodeError"):
        render("{{ 'nope' | from_json }}", scope)


def test_scope_callables(scope: dict[str, Any]) -> None:
    assert render("{{ succeeded() }}", scope) is True
    assert render("{{ failed() }}", scope) is False
    assert render("{{ completed() and not timed_out() }}", scope) is True
    assert render("{{ kv.get('k') }}", scope) == "v"
    assert render("{{ kv.get('missing', 'dflt') }}", scope) == "dflt"
    assert render("{{ kv.get('missing') }}", scope) is None
    scope["secret"] = secret_function(lambda name: {"DB_PASSWORD": "s3cr3t-pw"}.get(name))
    assert render("{{ secret('DB_PASSWORD') }}", scope) == "s3cr3t-pw"


def test_workflow_errors_from_callables_pass_through(scope: dict[str, Any]) -> None:
    def broken_get(key: str, default: Any = None) -> Any:
        raise StoreError("the store is locked")

    scope["kv"] = SimpleNamespace(get=broken_get)
    with pytest.raises(StoreError, match="the store is locked"):
        render("{{ kv.get('k') }}", scope)


# -- evaluate ---------------------------------------------------------------------------------


def test_evaluate(scope: dict[str, Any]) -> None:
    assert evaluate(None, scope) is True
    assert evaluate(True, scope) is True
    assert evaluate(False, scope) is False
    with pytest.raises(ExpressionError, match="UndefinedError"):
        evaluate("{{ result.approved }}", scope)  # result is None: strict
    assert evaluate("{{ result.approved | default(false) }}", scope) is False
    scope["result"] = {"approved": True}
    assert evaluate("{{ result.approved }}", scope) is True
    scope["result"] = {"approved": False}
    assert evaluate("{{ result.approved }}", scope) is False
    with pytest.raises(ExpressionError, match="UndefinedError"):
        evaluate("{{ nothing }}", scope)
    assert evaluate("{{ nothing is defined }}", scope) is False
    assert evaluate("{{ parameters.regions }}", scope) is True
    assert evaluate("{{ [] }}", scope) is False
    assert evaluate("{{ index }}", scope) is False  # 0
    assert evaluate("{{ parameters.app == 'web' }}", scope) is True
    assert evaluate("{{ failed() }}", scope) is False
    assert evaluate("{{ succeeded() }}", scope) is True


def test_evaluate_reads_false_strings_as_false(scope: dict[str, Any]) -> None:
    assert evaluate("{{ 'false' }}", scope) is False
    assert evaluate("{{ succeeded() }} ", scope) is True  # renders "True "
    assert evaluate(" {{ failed() }}", scope) is False  # renders " False"
    assert evaluate("{{ ' No ' }}", scope) is False
    assert evaluate("{{ 'anything' }}", scope) is True


def test_evaluate_bare_expressions(scope: dict[str, Any]) -> None:
    assert evaluate("failed()", scope) is False
    assert evaluate("succeeded() and parameters.replicas > 2", scope) is True
    assert evaluate("true", scope) is True
    assert evaluate("false", scope) is False
    with pytest.raises(ExpressionError):
        evaluate("failed(", scope)


def test_evaluate_errors_are_expression_errors(scope: dict[str, Any]) -> None:
    with pytest.raises(ExpressionError, match="UndefinedError"):
        evaluate("{{ result.count > 3 }}", scope)


# -- exact_expression, is_template, template_error -------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ result.approved }}", "result.approved"),
        ("{{x}}", "x"),
        ("{{- x -}}", "x"),
        ('{{ "}}" }}', '"}}"'),
        ("{{ a }}{{ b }}", None),
        (" {{ a }}", None),
        ("{{ a }} ", None),
        ("{{ a }}{# c #}", None),
        ("{{ a }}{% if 1 %}{% endif %}", None),
        ("plain", None),
        ("{{ a", None),
    ],
)
def test_exact_expression(text: str, expected: str | None) -> None:
    assert exact_expression(text) == expected


def test_is_template() -> None:
    assert is_template("{{ x }}")
    assert is_template("a {% if x %}b{% endif %}")
    assert not is_template("a {b} c")
    assert not is_template("{# comment #}")


def test_template_error_positions() -> None:
    text = "first line\nsecond {{ fine }}\nthird {% for x in %}{% endfor %}\n"
    line, col, message = template_error(text)  # type: ignore[misc]
    assert (line, col) == (3, 1)
    assert message == "Expected an expression, got 'end of statement block'"
    line, col, message = template_error("a\n\n{{ x | no_such_filter }}")  # type: ignore[misc]
    assert (line, col, message) == (3, 1, "No filter named 'no_such_filter'.")
    assert template_error("{{ x +}}") == (1, 1, "unexpected 'end of template'")


def test_template_error_none_for_good_templates() -> None:
    assert template_error("deploy {{ parameters.app | upper }}\n{% if x %}y{% endif %}") is None
    assert template_error("{{ result.approved }}") is None
    assert template_error("not a template") is None


# -- the sandbox ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ ().__class__.__bases__[0].__subclasses__() }}",
        "{{ item.__class__ }}",
        "x {{ item.__class__ }} y",
        "{{ nothing.__class__ }}",
        "{{ parameters['__class__'] }}",
        "{{ succeeded.__globals__ }}",
        "{{ parameters.regions.append('x') }}",
        "{% set _ = parameters.regions.append('x') %}",
        "{{ parameters.update({'app': 'evil'}) }}",
        "{{ parameters.pop('app') }}",
        "{{ 'a' * 10**9 }}",
        "{{ 2 ** (10 ** 7) }}",
        "{{ range(10**9) | list }}",
        "{{ '{0.__class__}'.format(item) }}",
    ],
)
def test_sandbox_escapes_raise_one_line_expression_errors(
    template: str, scope: dict[str, Any]
) -> None:
    regions = list(scope["parameters"]["regions"])
    with pytest.raises(ExpressionError) as caught:
        render(template, scope)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("cannot render '")
    assert "Error" in message
    assert scope["parameters"]["regions"] == regions
    assert scope["parameters"]["app"] == "web"


def test_include_never_reads_a_file(
    scope: dict[str, Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "x").write_text("CONTENT-OF-FILE")
    monkeypatch.chdir(tmp_path)
    for template in ["{% include 'x' %}", "{% import 'x' as m %}", "{% extends 'x' %}"]:
        with pytest.raises(ExpressionError) as caught:
            render(template, scope)
        assert "CONTENT-OF-FILE" not in str(caught.value)
        assert "SecurityError: templates cannot include, import or extend" in str(caught.value)


def test_security_error_message(scope: dict[str, Any]) -> None:
    with pytest.raises(ExpressionError) as caught:
        render("{{ ''.__class__ }}", scope)
    assert str(caught.value) == (
        "cannot render '{{ ''.__class__ }}': "
        "SecurityError: access to attribute '__class__' of 'str' object is unsafe"
    )


# -- render errors ----------------------------------------------------------------------------


def test_render_errors_are_one_line(scope: dict[str, Any]) -> None:
    with pytest.raises(ExpressionError) as caught:
        render("{{ 1/0 }}", scope)
    assert str(caught.value) == "cannot render '{{ 1/0 }}': ZeroDivisionError: division by zero"
    assert caught.value.template == "{{ 1/0 }}"
    assert isinstance(caught.value, WorkflowError)

    with pytest.raises(ExpressionError) as caught:
        render({"a": ["line one\n{{ item + 1 }}"]}, scope)
    assert str(caught.value).startswith("cannot render 'line one\\n{{ item + 1 }}': TypeError: ")
    assert "\n" not in str(caught.value)

    with pytest.raises(ExpressionError) as caught:
        render("ok\n{% if %}", scope)
    assert str(caught.value) == (
        "cannot render 'ok\\n{% if %}': TemplateSyntaxError: line 2: "
        "Expected an expression, got 'end of statement block'"
    )


def test_long_templates_are_shortened_in_messages(scope: dict[str, Any]) -> None:
    template = "{{ 1/0 }}" + "x" * 500
    with pytest.raises(ExpressionError) as caught:
        render(template, scope)
    assert len(str(caught.value)) < 250
    assert "…" in str(caught.value)


def test_expression_error_pickles() -> None:
    error = ExpressionError("cannot render 'x': boom", template="x")
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.template) == ("cannot render 'x': boom", "x")


def test_secret_values_are_masked_in_error_messages(scope: dict[str, Any]) -> None:
    scope["secret"] = secret_function(lambda name: "not-a-number-8c1f")
    with pytest.raises(ExpressionError) as caught:
        render("{{ secret('TOKEN') + 1 }}", scope)
    assert str(caught.value) == (
        "cannot render '{{ secret('TOKEN') + 1 }}': "
        'TypeError: can only concatenate str (not "int") to str'
    )
    with pytest.raises(ExpressionError) as caught:
        render("{{ secret('TOKEN') | from_json }}", scope)
    assert "not-a-number-8c1f" not in str(caught.value)


# -- secrets and masking ----------------------------------------------------------------------


def test_masker_masks_nested_structures_and_substrings() -> None:
    masker = SecretMasker()
    masker.register("hunter2")
    masker.register("")  # ignored
    value = {
        "url": "https://user:hunter2@host/db",
        "hunter2-key": ["a hunter2 b", ("hunter2", 5)],
        "n": 1,
        "clean": ["nothing here"],
    }
    masked = masker.mask(value)
    assert masked == {
        "url": "https://user:***@host/db",
        "***-key": ["a *** b", ("***", 5)],
        "n": 1,
        "clean": ["nothing here"],
    }
    assert masked["clean"] is value["clean"]
    assert value["url"] == "https://user:hunter2@host/db"  # not modified
    assert masker.mask_text("hunter2hunter2") == "***"
    assert len(masker) == 1


def test_masker_without_secrets_returns_the_same_object() -> None:
    value = {"a": ["b"]}
    assert SecretMasker().mask(value) is value
    assert SecretMasker().mask_text("abc") == "abc"


def test_masker_overlapping_secrets_leak_nothing() -> None:
    masker = SecretMasker()
    masker.register("abcd")
    masker.register("cdef")
    masker.register("abcdefgh")
    assert masker.mask_text("xx abcdef yy") == "xx *** yy"
    assert masker.mask_text("abcdefgh abcd cdef") == "*** *** ***"
    assert masker.mask_text("aabcdd") == "a***d"


def test_masker_short_secrets_mask_aggressively() -> None:
    masker = SecretMasker()
    masker.register("a")
    assert masker.mask_text("banana") == "b***n***n***"


def test_masker_registration_is_thread_safe() -> None:
    masker = SecretMasker()
    values = [f"secret-{n:04d}" for n in range(400)]

    def register(chunk: list[str]) -> None:
        for value in chunk:
            masker.register(value)

    threads = [threading.Thread(target=register, args=(values[i::8],)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(masker) == 400
    assert masker.mask(values) == ["***"] * 400


def test_secret_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JW_TEST_SECRET", "env-value-123")
    masker = SecretMasker()
    assert secret_lookup("JW_TEST_SECRET", masker=masker) == "env-value-123"
    assert masker.mask_text("token=env-value-123") == "token=***"


def test_secret_from_store_and_default_masker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JW_STORE_SECRET", raising=False)
    store = {"JW_STORE_SECRET": "store-value-9d2e"}
    secret = secret_function(store.get)
    assert secret("JW_STORE_SECRET") == "store-value-9d2e"
    assert MASKER.mask({"out": "v=store-value-9d2e"}) == {"out": "v=***"}


def test_missing_secret(monkeypatch: pytest.MonkeyPatch, scope: dict[str, Any]) -> None:
    monkeypatch.delenv("JW_MISSING_SECRET", raising=False)
    with pytest.raises(ExpressionError) as caught:
        secret_lookup("JW_MISSING_SECRET", store_lookup={}.__getitem__)
    assert str(caught.value) == "secret 'JW_MISSING_SECRET' is not set"

    scope["secret"] = secret_function()
    with pytest.raises(ExpressionError) as caught:
        render("{{ secret('JW_MISSING_SECRET') }}", scope)
    assert str(caught.value) == (
        "cannot render '{{ secret('JW_MISSING_SECRET') }}': secret 'JW_MISSING_SECRET' is not set"
    )


# -- properties -------------------------------------------------------------------------------

_plain_text = st.text().filter(lambda s: not is_template(s))
_json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _plain_text,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(_plain_text, children, max_size=5)
        | st.tuples(children, children)
    ),
    max_leaves=30,
)
_jinja_fragments = st.lists(
    st.sampled_from(
        [
            "{{",
            "}}",
            "{%",
            "%}",
            "{#",
            "#}",
            "-",
            "+",
            "x",
            "item",
            ".",
            "(",
            ")",
            "'",
            '"',
            "1",
            "0",
            "/",
            "*",
            "|",
            "upper",
            "from_json",
            "to_json",
            " ",
            "\n",
            "__class__",
            "if",
            "endif",
            "else",
            "[",
            "]",
            "9",
            "include",
            "set",
            "=",
            "~",
            "parameters",
            "regions",
            "append",
            ",",
            ":",
            "{",
            "}",
            "raw",
            "endraw",
            "is",
            "defined",
        ]
    ),
    max_size=25,
).map("".join)


@given(_json_like)
@settings(max_examples=200, deadline=None)
def test_render_returns_non_templates_unchanged(value: Any) -> None:
    assert render(value, {"item": 1}) is value


@given(st.text() | _jinja_fragments)
@settings(max_examples=400, deadline=None)
def test_arbitrary_text_raises_only_expression_errors(text: str) -> None:
    scope = {"item": "eu", "parameters": {"regions": ["eu"]}}
    try:
        render(text, scope)
    except ExpressionError as error:
        assert "\n" not in str(error)
    assert scope == {"item": "eu", "parameters": {"regions": ["eu"]}}
    found = template_error(text)
    assert found is None or (found[0] >= 1 and found[1] == 1 and "\n" not in found[2])
