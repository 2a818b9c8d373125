"""The one owner of symdiff's caches: bounded, thread-safe, with counters.

Every symbolic result (captured text, differentiated + simplified + lowered
programs) is computed once per key. Concurrent requests for the same key wait
for the first one instead of redoing the SymPy work.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from concurrent.futures import Future
from typing import Any, Callable, Hashable

__all__ = ["LRUCache", "clear_caches", "stats", "count"]

_counters_lock = threading.Lock()
_counters: dict[str, int] = {"symbolic": 0, "traces": 0, "parses": 0}


def count(name: str, n: int = 1) -> None:
    """Add ``n`` to the counter ``name`` (used by tests to prove cache hits)."""
    with _counters_lock:
        _counters[name] = _counters.get(name, 0) + n


def stats() -> dict[str, int]:
    """A snapshot of the counters: ``symbolic`` (SymPy pipeline runs), ``traces`` (JAX traces), ``parses``.

    >>> import symdiff as sd
    >>> {"parses", "symbolic", "traces"} <= set(sd.cache_stats())
    True
    """
    with _counters_lock:
        return dict(_counters)


class LRUCache:
    """A bounded least-recently-used map whose misses are computed once per key."""

    def __init__(self, name: str, maxsize: int):
        self.name = name
        self.maxsize = maxsize
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._pending: dict[Hashable, Future] = {}
        self._lock = threading.Lock()
        _ALL.append(self)

    def __len__(self) -> int:
        return len(self._data)

    def get_or_create(self, key: Hashable, factory: Callable[[], Any]) -> Any:
        """The cached value for ``key``, computing it with ``factory()`` on a miss."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
            pending = self._pending.get(key)
            owner = pending is None
            if owner:
                pending = self._pending[key] = Future()
        if not owner:
            return pending.result()
        try:
            value = factory()
        except BaseException as exc:
            with self._lock:
                del self._pending[key]
            pending.set_exception(exc)
            raise
        with self._lock:
            del self._pending[key]
            self._data[key] = value
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)
        pending.set_result(value)
        return value

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._data.clear()


_ALL: list[LRUCache] = []


def clear_caches(disk: bool = False) -> None:
    """Empty every symdiff cache (captured text, derived and compiled programs).

    Afterwards this process derives and compiles afresh: it no longer reads the
    disk cache (see ``docs/caches.md``), though it still refreshes it for other
    processes. ``disk=True`` also deletes every entry in the cache directory.

    >>> import symdiff as sd
    >>> sd.clear_caches()
    """
    from . import _disk_cache

    for cache in _ALL:
        cache.clear()
    _disk_cache.forget()
    if disk:
        _disk_cache.clear()
