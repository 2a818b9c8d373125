"""The process side of budgeted SymPy work: a zygote that forks killable workers.

SymPy cannot be cancelled, and interrupting a thread at an arbitrary bytecode
corrupts the interpreter (a lock taken and never released, a half-imported
module). So budgeted passes run in a separate process, and a pass that
outlives its budget is ended by killing that process: nothing it held can
leak into the user's process.

Starting a Python process and importing SymPy costs about a second, far too
much to pay per kill. A *zygote* pays it once: a single-threaded process that
has imported SymPy and the pass modules, and that forks a fresh worker (a few
milliseconds) whenever the user's process asks for one. The zygote and every
worker exit when the user's process closes its end of their sockets (at exit,
or if it dies), so nothing outlives it.

This module is imported by the zygote without importing ``symdiff`` itself
(which would import JAX): it needs only the standard library and SymPy. The
bootstrap that starts the zygote is :data:`symdiff._budget.BOOTSTRAP`.

Protocol (pickle frames over a socket pair, :class:`multiprocessing.connection.Connection`):

- user -> zygote control socket: ``b"fork"`` -> reply ``b"<pid>"`` with the
  user's end of a new worker socket attached (``SCM_RIGHTS``); ``b"kill <pid>"``
  -> reply ``b"ok"``; ``b"ping"`` -> ``b"ok"`` (once the preloads are imported).
- user -> worker: ``(generator_function, args, seconds)``; the worker sends
  ``("item", value)`` for each value the generator yields, then ``("done",)``,
  or ``("error", text)``. It stops early, between items, once ``seconds`` are spent.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection

__all__ = ["serve", "zygote_main"]

_STACK_BYTES = 512 * 2**20  # SymPy recurses over deep trees
_RECURSION_LIMIT = 100_000


def serve(conn: Connection) -> None:
    """Run jobs from ``conn`` until it closes."""
    from sympy.core.parameters import distribute
    while True:
        try:
            with distribute(False):  # unpickling re-runs constructors: keep 2*(b + w*x) as it was sent
                fn, args, seconds = conn.recv()
        except (EOFError, OSError):
            return
        except Exception:  # noqa: BLE001 - a job naming what this process cannot import: refuse it, keep serving
            conn.send(("error", traceback.format_exc(limit=5)))
            continue
        deadline = time.monotonic() + seconds
        try:
            for value in fn(*args):
                conn.send(("item", value))
                if time.monotonic() >= deadline:
                    break
            conn.send(("done",))
        except (EOFError, OSError):
            return
        except BaseException:  # noqa: BLE001 - reported to the user's process, which keeps its fallback
            try:
                conn.send(("error", traceback.format_exc(limit=5)))
            except (EOFError, OSError):
                return


def _worker_main(sock: socket.socket) -> None:
    """A forked worker: serve jobs on a deep-stack thread, then exit without running the zygote's cleanup."""
    try:
        sys.setrecursionlimit(_RECURSION_LIMIT)
        threading.stack_size(_STACK_BYTES)
        conn = Connection(sock.detach())
        thread = threading.Thread(target=serve, args=(conn,), name="symdiff-worker")
        thread.start()
        thread.join()
    finally:
        os._exit(0)


def _reap(children: set[int]) -> None:
    for pid in list(children):
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            done = pid
        if done:
            children.discard(pid)


def zygote_main(control_fd: int) -> None:
    """Fork workers on request until the control socket closes (the bootstrap has preloaded SymPy)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is the user's process's business
    control = socket.socket(fileno=control_fd)
    children: set[int] = set()
    try:
        while True:
            try:
                request = control.recv(64)
            except OSError:
                break
            if not request:  # the user's process closed the socket or exited
                break
            _reap(children)
            if request == b"fork":
                ours, theirs = socket.socketpair()
                pid = os.fork()
                if pid == 0:
                    control.close()
                    theirs.close()
                    _worker_main(ours)
                ours.close()
                children.add(pid)
                socket.send_fds(control, [str(pid).encode()], [theirs.fileno()])
                theirs.close()
            elif request == b"ping":
                control.sendall(b"ok")
            elif request.startswith(b"kill "):
                pid = int(request.split()[1])
                if pid in children:  # never signal a pid that is not (or no longer) our child
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    children.discard(pid)
                control.sendall(b"ok")
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
