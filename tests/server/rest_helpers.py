"""Helpers shared by the REST tests of this folder (imported as ``rest_helpers``)."""

from __future__ import annotations

from typing import Any

import httpx

#: A ``RunningServer`` (tests/server/conftest.py): ``url``, ``client`` (sends the token),
#: ``anonymous`` (sends none), ``log`` and ``root``.
Server = Any


def api_error(response: httpx.Response) -> str:
    """The one-line ``{"error": ...}`` of a refused request (it must be exactly that shape)."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert isinstance(body["error"], str) and body["error"] and "\n" not in body["error"]
    return body["error"]
