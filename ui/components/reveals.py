"""Which viewer has seen the judge's numbers for which item, remembered on the server.

A judgement is stored as blind only when its annotator never had the judge's view of that item:
the page's own "blind" flag is whatever the client sent last, so it is not trusted. A viewer is
the browser session and, with login on, the user (another tab of the same annotator counts).
Bounded: the oldest entries are forgotten past ``max_entries``.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

import gradio as gr

from ui.context import session_of


class RevealLog:
    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._seen: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def viewers(request: gr.Request | None) -> list[str]:
        found = [f"session:{session_of(request) or ''}"]
        user = getattr(request, "username", None) if request is not None else None
        if user:
            found.append(f"user:{user}")
        return found

    def add(self, request: gr.Request | None, item_id: str) -> None:
        """The judge's numbers for ``item_id`` were sent to this viewer."""
        with self._lock:
            for viewer in self.viewers(request):
                self._seen[(viewer, item_id)] = time.time()
                self._seen.move_to_end((viewer, item_id))
            while len(self._seen) > self.max_entries:
                self._seen.popitem(last=False)

    def seen(self, request: gr.Request | None, item_id: str) -> bool:
        with self._lock:
            return any((v, item_id) in self._seen for v in self.viewers(request))
