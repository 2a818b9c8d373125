"""Time budgets for SymPy work, enforced without ever interrupting a thread.

Budgeted passes (simplification, the expansion of high-order derivatives) run
in worker processes forked by a zygote (:mod:`symdiff._worker`, started by :data:`BOOTSTRAP`). A job streams
its results back as it finds them; when the budget is spent, the user's thread
stops reading and the worker is killed (a process, so nothing it held can
leak), and the results received so far are kept. The user's threads only ever
block in ``poll`` with a timeout, never at an arbitrary bytecode.

The zygote starts on first use (:func:`prestart` begins it early, overlapping
its start with parsing and differentiation); idle workers are reused, so a
job that finishes within its budget costs one round trip of pickled
expressions (well under a millisecond for small ones). Where worker processes
are unavailable (no ``fork``), budgeted passes are skipped: results stay
correct, unsimplified.
"""

from __future__ import annotations

import atexit
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
import warnings
from multiprocessing.connection import Connection
from typing import Any, Callable, Iterator

from ._worker import receive, send

__all__ = ["run_budgeted", "prestart", "wait_ready", "worker_stats", "BOOTSTRAP"]

_STARTUP_TIMEOUT = 60.0  # seconds the zygote may take to import SymPy (a loaded CI machine)
_MAX_IDLE = 4  # idle workers kept for reuse
_MAX_WORKERS = max(4, 2 * (os.cpu_count() or 1))  # busy workers at once; more callers wait
_SUPPORTED = hasattr(os, "fork") and hasattr(socket, "send_fds")

# The zygote's program, run by ``python -c`` with the package directory and the
# control socket's fd. A stand-in ``symdiff`` package lets it import the pass
# modules without running ``symdiff/__init__.py`` (which would import JAX); it
# warms SymPy up, so that every forked worker inherits the lazy imports done.
BOOTSTRAP = """
import sys, types
package = types.ModuleType("symdiff")
package.__path__ = [sys.argv[1]]
sys.modules["symdiff"] = package
import symdiff._functions
from symdiff._simplify import warm_up
warm_up()
from symdiff._worker import zygote_main
zygote_main(int(sys.argv[2]))
"""


class _Unavailable(Exception):
    """No worker process can be had here."""


class _Worker:
    def __init__(self, pid: int, conn: Connection):
        self.pid, self.conn = pid, conn


class _Pool:
    """The zygote and its workers, for one process (a ``fork`` of the user's process makes a new pool)."""

    def __init__(self):
        self.owner = os.getpid()
        self.lock = threading.Lock()
        self.slots = threading.Condition(self.lock)  # signalled when a worker is released or killed
        self.control_lock = threading.Lock()  # one request/reply at a time on the control socket
        self.idle: list[_Worker] = []
        self.busy = 0
        self.control: socket.socket | None = None
        self.zygote: subprocess.Popen | None = None
        self.failed: str | None = None
        self.stats = {"jobs": 0, "forks": 0, "kills": 0}

    # ---- the zygote ------------------------------------------------------

    def start(self) -> None:
        """Start the zygote if it is not running (returns at once; it imports SymPy in the background)."""
        with self.control_lock:
            if self.control is not None or self.failed:
                return
            if not _SUPPORTED:
                self.failed = "this platform has no fork() or no socket.send_fds()"
                return
            ours, theirs = socket.socketpair()
            package_dir = os.path.dirname(os.path.abspath(__file__))
            try:
                self.zygote = subprocess.Popen(
                    [sys.executable, "-c", BOOTSTRAP, package_dir, str(theirs.fileno())],
                    pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    start_new_session=True,  # a terminal's Ctrl-C goes to the user's process only
                )
            except OSError as exc:
                ours.close()
                self.failed = f"cannot start the simplification worker: {exc}"
                return
            finally:
                theirs.close()
            self.control = ours

    def _request(self, message: bytes, with_fd: bool):
        """One request to the zygote and its reply (the first waits for the zygote's imports)."""
        self.start()
        with self.control_lock:
            if self.control is None:
                raise _Unavailable(self.failed)
            self.control.settimeout(_STARTUP_TIMEOUT)
            try:
                self.control.sendall(message)
                if with_fd:
                    reply, fds, _, _ = socket.recv_fds(self.control, 64, 1)
                else:
                    reply, fds = self.control.recv(64), []
            except OSError as exc:
                reply, fds = b"", []
                self.failed = f"the simplification worker stopped answering: {exc}"
            if not reply:
                self.failed = self.failed or "the simplification worker exited"
                self._close_control()
                raise _Unavailable(self.failed)
            return reply, fds

    def _close_control(self) -> None:
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.zygote is not None:
            try:
                self.zygote.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.zygote.kill()
                self.zygote.wait()
            self.zygote = None

    def shutdown(self) -> None:
        with self.lock:
            for worker in self.idle:
                worker.conn.close()
            self.idle.clear()
        with self.control_lock:
            self._close_control()

    # ---- workers -----------------------------------------------------------

    def acquire(self, deadline: float) -> _Worker | None:
        """An idle worker, a newly forked one, or ``None`` if none is free before ``deadline``."""
        with self.lock:
            while not self.idle and self.busy >= _MAX_WORKERS:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.slots.wait(left)
            self.busy += 1
            if self.idle:
                return self.idle.pop()
        try:
            reply, fds = self._request(b"fork", with_fd=True)
        except BaseException:
            self._free_slot()
            raise
        self._count("forks")
        return _Worker(int(reply), Connection(fds[0]))

    def _count(self, name: str) -> None:
        with self.lock:
            self.stats[name] += 1

    def _free_slot(self) -> None:
        with self.lock:
            self.busy -= 1
            self.slots.notify()

    def release(self, worker: _Worker) -> None:
        """Return a worker that finished its job."""
        with self.lock:
            self.busy -= 1
            if len(self.idle) < _MAX_IDLE:
                self.idle.append(worker)
                worker = None
            self.slots.notify()
        if worker is not None:
            worker.conn.close()  # it exits when it reads the end of its socket

    def kill(self, worker: _Worker) -> None:
        """End a worker whose job outlived its budget."""
        worker.conn.close()
        self._count("kills")
        try:
            self._request(f"kill {worker.pid}".encode(), with_fd=False)
        except _Unavailable:
            pass  # the zygote is gone; it killed its workers on the way out
        finally:
            self._free_slot()


_pool_lock = threading.Lock()
_pool: _Pool | None = None
_warned = False


def _get_pool() -> _Pool:
    global _pool
    with _pool_lock:
        if _pool is None or _pool.owner != os.getpid():
            _pool = _Pool()  # after a fork, the parent's sockets belong to the parent
        return _pool


@atexit.register
def _shutdown() -> None:
    if _pool is not None and _pool.owner == os.getpid():
        _pool.shutdown()


def prestart() -> None:
    """Start the worker zygote in the background, so the first budgeted job finds it ready."""
    _get_pool().start()


def wait_ready() -> bool:
    """Block until the zygote has imported SymPy (once per process); whether workers are available.

    Budgets are charged from here on: the one-time start of the zygote is not
    part of any ``derive``'s simplification budget.
    """
    try:
        _get_pool()._request(b"ping", with_fd=False)
        return True
    except _Unavailable as exc:
        _warn_unavailable(str(exc))
        return False


def worker_stats() -> dict[str, int]:
    """Counters of this process's workers: jobs run, workers forked, workers killed at their deadline."""
    return dict(_get_pool().stats)


def _warn_unavailable(reason: str | None) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"symdiff: budgeted simplification is off ({reason}); derivatives stay unsimplified",
                      RuntimeWarning, stacklevel=3)


def run_budgeted(fn: Callable[..., Iterator[Any]], args: tuple, seconds: float) -> list[Any]:
    """The values ``fn(*args)`` yields within ``seconds``, computed in a worker process.

    ``fn`` is a module-level generator function of a module the zygote has
    preloaded (it travels by reference). The values come back as they are
    yielded; when ``seconds`` are spent the worker is killed and the values
    received so far are returned. A job that cannot run (no worker processes
    here, an argument that cannot be pickled) returns ``[]``: callers keep
    their unbudgeted fallback.

    >>> from symdiff._simplify import expand_products
    >>> import sympy
    >>> x = sympy.Symbol("x", real=True)
    >>> run_budgeted(expand_products, ((x + 1) * (x - 1),), 30.0)
    [x**2 - 1]
    """
    if seconds <= 0:
        return []
    deadline = time.monotonic() + seconds
    pool = _get_pool()
    try:
        worker = pool.acquire(deadline)
    except _Unavailable as exc:
        _warn_unavailable(str(exc))
        return []
    if worker is None:
        return []
    pool._count("jobs")
    values: list[Any] = []
    try:
        finished = _collect(worker, (fn, args, max(deadline - time.monotonic(), 0.0)), deadline, values)
    except BaseException:  # e.g. KeyboardInterrupt in the main thread: the worker may be mid-job
        pool.kill(worker)
        raise
    if finished:
        pool.release(worker)
    else:
        pool.kill(worker)
    return values


def _collect(worker: _Worker, job: tuple, deadline: float, values: list) -> bool:
    """Send ``job`` and gather its values until it is done (``True``) or the deadline, or the worker fails."""
    try:
        send(worker.conn, job)
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError, OSError):
        return False  # it may have read part of a frame: not reusable
    while True:
        left = deadline - time.monotonic()
        try:
            if left <= 0 or not worker.conn.poll(left):
                return False
            message = receive(worker.conn)  # nodes rebuilt as the pass left them: 2*(b + w*x) stays
        except (EOFError, OSError, pickle.UnpicklingError, AttributeError, ImportError, RecursionError):
            return False  # it died, or sent what cannot be read back
        if message[0] != "item":  # "done", or "error": the caller's fallback stands
            return True
        values.append(message[1])
