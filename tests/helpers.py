"""Small helpers shared by tests that start servers on this machine."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(demo, queue: dict | None = None, **launch_options) -> Iterator[str]:
    """Serve a gradio Blocks app in this process on 127.0.0.1 (a free port unless
    ``server_port`` is given), queue on (``queue``: its options); yield its URL and close it
    afterwards."""
    options = {"server_name": "127.0.0.1", "quiet": True, "show_error": True, **launch_options}
    options.setdefault("server_port", free_port())
    demo.queue(**(queue or {}))
    demo.launch(**options, prevent_thread_lock=True)
    try:
        yield f"http://127.0.0.1:{options['server_port']}/"
    finally:
        demo.close()
