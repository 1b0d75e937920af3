"""Task code for hello.yaml: imported from the workflow's folder, shipped to Dask workers by value."""

import logging

log = logging.getLogger(__name__)


def greet(name: str) -> str:
    log.info("greeting %s", name)
    return f"Hello, {name}!"


def shout(text: str) -> str:
    print("shouting:", text)
    return text.upper()
