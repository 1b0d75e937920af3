"""``python -m jupyter_workflows`` is the CLI."""

from .cli.app import _entry

_entry()
