"""A small thread-safe cache with two bounds: at most ``max_entries`` values (the least recently
used goes first) and at most ``max_age_s`` seconds since a value was last stored or read (an
idle value expires). What the app keeps in memory between requests (uploaded class sets, live
games, imported judge items, the judge's results) is kept in one of these, so neither many
sessions nor a long-running process can grow it without end.

    >>> cache = BoundedCache(max_entries=2, max_age_s=60)
    >>> cache.put("a", 1); cache.put("b", 2); cache.put("c", 3)
    >>> cache.get("a") is None, cache.get("c"), len(cache)
    (True, 3, 2)
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from typing import Any


class BoundedCache:
    """LRU with a maximum count and a maximum idle age. ``clock`` (seconds, monotonic) is
    replaceable for tests."""

    def __init__(
        self,
        max_entries: int,
        max_age_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_entries < 1 or max_age_s <= 0:
            raise ValueError("a cache needs room for one entry and a positive age")
        self.max_entries, self.max_age_s, self._clock = max_entries, max_age_s, clock
        self._data: OrderedDict[Hashable, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def _expire(self, now: float) -> None:
        while self._data:
            key, (stamp, _) = next(iter(self._data.items()))
            if now - stamp <= self.max_age_s:
                break
            del self._data[key]

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            now = self._clock()
            self._data[key] = (now, value)
            self._data.move_to_end(key)
            self._expire(now)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    def get(self, key: Hashable, default: Any = None) -> Any:
        """The value (and it counts as used now), or ``default`` when it was never stored,
        was evicted or has expired."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            found = self._data.get(key)
            if found is None:
                return default
            self._data[key] = (now, found[1])
            self._data.move_to_end(key)
            return found[1]

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            self._expire(self._clock())
            return key in self._data

    def __len__(self) -> int:
        with self._lock:
            self._expire(self._clock())
            return len(self._data)


class CachedSequence(Sequence):
    """A list kept in a :class:`BoundedCache` under ``key`` and looked up on each use, so a
    session's ``gr.State`` holds this small handle instead of the list itself. Once the list
    was evicted or expired the handle is empty and ``expired`` is true."""

    def __init__(self, cache: BoundedCache, key: Hashable) -> None:
        self._cache, self.key = cache, key

    def _items(self) -> Sequence:
        return self._cache.get(self.key, ())

    @property
    def expired(self) -> bool:
        return self.key not in self._cache

    def __len__(self) -> int:
        return len(self._items())

    def __getitem__(self, index):
        return self._items()[index]

    def __repr__(self) -> str:
        return f"CachedSequence({self.key!r}, {len(self)} items)"
