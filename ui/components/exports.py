"""Export files handed to a browser, and who may download them.

Gradio serves a file a handler returns from its cache at
``/gradio_api/file=<cache>/<digest>/<name>``, where ``<digest>`` is a keyed hash of the file's
content (Gradio's ``processing_utils.hash_file``, with a secret drawn per process), to any
logged-in user who has the URL. :func:`offer` makes every export readable by this process only
(0600) and records the digest's owners (the logged-in annotator; nobody when login is off) and
expiry (``EXPORT_TTL_S``, an hour). :class:`ui.guard.ExportGuard` then answers 404 to anyone
else, and to everyone once it has expired. The files themselves are deleted after the same
time (the export folders by ``store.export.sweep_exports``, Gradio's cached copies by
``delete_cache`` on the Blocks).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path

from gradio.processing_utils import hash_file

from store.export import EXPORT_TTL_S

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class ExportOffers:
    """Digests of offered exports → (owners, expiry time); thread-safe and bounded."""

    def __init__(self, ttl_s: float = EXPORT_TTL_S, max_entries: int = 100_000, clock=time.time):
        self.ttl_s, self.max_entries, self.clock = ttl_s, max_entries, clock
        self._owners: OrderedDict[str, tuple[frozenset, float]] = OrderedDict()
        self._lock = threading.Lock()

    def offer(self, path: str | os.PathLike, owner: str | None) -> str:
        """Make ``path`` 0600 and record that only ``owner`` may download it (anyone when
        ``owner`` is None: login is off). Two annotators' exports with the same bytes share
        Gradio's cached copy, so a digest can have several owners."""
        path = Path(path)
        os.chmod(path, 0o600)
        digest = hash_file(path)
        now = self.clock()
        with self._lock:
            owners, _ = self._owners.pop(digest, (frozenset(), 0.0))
            self._owners[digest] = (owners | {owner}, now + self.ttl_s)
            while len(self._owners) > self.max_entries:
                self._owners.popitem(last=False)
        return str(path)

    def may_download(self, url_path: str, user: str | None) -> bool | None:
        """Whether ``user`` may download the cached file at ``url_path``: None when it is not
        an export, False when it has expired or is another annotator's."""
        parts = url_path.rstrip("/").split("/")
        digest = parts[-2] if len(parts) >= 2 else ""
        if not _DIGEST.match(digest):
            return None
        with self._lock:
            found = self._owners.get(digest)
        if found is None:
            return None
        owners, expires = found
        if self.clock() > expires:
            return False
        return None in owners or user in owners


OFFERS = ExportOffers()


def offer(path: str | os.PathLike, owner: str | None) -> str:
    """:meth:`ExportOffers.offer` on the process's registry (the one the guard reads)."""
    return OFFERS.offer(path, owner)
