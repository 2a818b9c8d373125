"""Shared test set-up: the whole session uses a temporary symdiff disk cache.

Tests never read or fill the user's own cache (``~/.cache/symdiff``), and a
stale entry there can never make a test pass. Set in ``pytest_configure`` so
the doctests under ``symdiff/`` and ``docs/`` get it too.
"""

import os
import shutil
import tempfile

_saved: list = []


def pytest_configure(config):
    path = tempfile.mkdtemp(prefix="symdiff-test-cache-")
    _saved.append((path, os.environ.get("SYMDIFF_CACHE_DIR")))
    os.environ["SYMDIFF_CACHE_DIR"] = path


def pytest_unconfigure(config):
    if not _saved:
        return
    path, previous = _saved.pop()
    if previous is None:
        os.environ.pop("SYMDIFF_CACHE_DIR", None)
    else:
        os.environ["SYMDIFF_CACHE_DIR"] = previous
    shutil.rmtree(path, ignore_errors=True)
