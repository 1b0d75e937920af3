"""Values a template derives from a secret are masked like the secret (issue 11)."""

from __future__ import annotations

import pytest

from jupyter_workflows.expressions import SecretMasker, _taint, render, secret_function

SECRET = "s3cr3t-value-xyz"


@pytest.fixture
def scope(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("JW_TEST_DERIVED_TOKEN", SECRET)
    return {"secret": secret_function(), "name": "JW_TEST_DERIVED_TOKEN"}


@pytest.mark.parametrize(
    "template",
    [
        "{{ secret(name) | reverse }}",
        "{{ secret(name) | upper }}",
        "{{ secret(name)[:6] }}",
        "{{ secret(name)[::-1] }}",
        "Bearer {{ secret(name) | upper }}",
        "{{ secret(name) | replace('-', '') }}",
        "{{ (secret(name) | title) if true else '' }}",
    ],
)
def test_derived_strings_are_masked(scope: dict[str, object], template: str) -> None:
    from jupyter_workflows.expressions import MASKER

    value = render(template, scope)
    assert isinstance(value, str) and value
    assert MASKER.mask_text(f"log: {value} end") == "log: *** end"
    assert MASKER.mask({"input": value}) == {"input": "***"}


def test_a_list_of_a_secret_is_masked_whole(scope: dict[str, object]) -> None:
    from jupyter_workflows.expressions import MASKER

    value = render("{{ secret(name) | list }}", scope)
    assert value == list(SECRET)
    assert MASKER.mask({"input": value}) == {"input": "***"}
    assert SECRET[::-1] not in MASKER.mask_text(str(value))
    assert MASKER.mask_text(str(value)) == "***"


def test_templates_without_a_secret_are_not_registered() -> None:
    masker = SecretMasker()
    _taint("plain", masker)
    assert masker.mask_text("plain") == "***"  # _taint registers what it is given...
    from jupyter_workflows.expressions import MASKER

    before = len(MASKER)
    render("{{ 'abc' | upper }}", {})
    assert len(MASKER) == before  # ...and render calls it only when a secret was read


def test_short_derived_values_are_not_registered() -> None:
    masker = SecretMasker()
    _taint("ab", masker)
    _taint(["a", "b"], masker)
    assert masker.mask_text("ab a b") == "ab a b"
    assert masker.mask(["a", "b"]) == "***"  # the container itself still is
