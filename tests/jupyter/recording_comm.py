"""A widget comm that records what it would publish to the front end (shared by the widget tests).

Tests put it in place with ``monkeypatch.setattr(comm, "create_comm", RecordingComm)``; every
widget made afterwards talks through one, and a test reads back the messages it sent or hands
it a message as the browser would send one.
"""

from __future__ import annotations

from typing import Any

from comm.base_comm import BaseComm


class RecordingComm(BaseComm):
    """A comm that keeps what it would publish to the front end."""

    def __init__(self, **kwargs: Any) -> None:
        self.published: list[tuple[str, dict | None]] = []
        super().__init__(**kwargs)

    def publish_msg(
        self,
        msg_type: str,
        data: dict | None = None,
        metadata: Any = None,
        buffers: Any = None,
        **keys: Any,
    ) -> None:
        self.published.append((msg_type, data))

    def custom_messages(self) -> list[dict]:
        """The contents of the custom messages sent, in order."""
        return [
            data["content"]
            for kind, data in self.published
            if kind == "comm_msg" and data and data.get("method") == "custom"
        ]

    def state_updates(self) -> list[dict]:
        """The states of the trait updates sent, in order."""
        return [
            data["state"]
            for kind, data in self.published
            if kind == "comm_msg" and data and data.get("method") == "update"
        ]

    def status_updates(self) -> int:
        """How many trait updates carried a ``status``."""
        return sum(
            1
            for kind, data in self.published
            if kind == "comm_msg"
            and data
            and data.get("method") == "update"
            and "status" in data.get("state", {})
        )

    def from_front_end(self, data: dict) -> None:
        """Deliver a message as the kernel does when the browser sends one."""
        self.handle_msg({"content": {"comm_id": self.comm_id, "data": data}, "buffers": []})
