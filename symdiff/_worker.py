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

import io
import os
import pickle
import signal
import socket
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection

__all__ = ["serve", "send", "receive", "rebuild", "zygote_main"]

_STACK_BYTES = 512 * 2**20  # SymPy recurses over deep trees
_RECURSION_LIMIT = 100_000


def rebuild(cls: type, args: tuple):
    """A SymPy node from its class and arguments, as it was: not re-evaluated.

    Pickle's default re-runs the constructor, which distributes numbers over
    sums (``2*(b + w*x)`` would arrive as ``2*b + 2*w*x``) and may do
    unbounded work (``gamma(10**100)``). Rebuilding from a canonical node's own
    arguments without evaluation gives back the identical node.
    """
    try:
        return cls(*args, evaluate=False)
    except TypeError:  # a class without the keyword (ExprCondPair, Tuple, ...)
        return cls(*args)


class _Pickler(pickle.Pickler):
    def __init__(self, file, basic: type):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.basic = basic

    def reducer_override(self, obj):
        if isinstance(obj, self.basic) and obj.args:  # a node (atoms keep SymPy's own reduction)
            return rebuild, (type(obj), obj.args)
        return NotImplemented


def send(conn: Connection, obj) -> None:
    """Send ``obj``, its SymPy nodes to be rebuilt as they are (see :func:`rebuild`)."""
    from sympy import Basic

    buffer = io.BytesIO()
    _Pickler(buffer, Basic).dump(obj)
    conn.send_bytes(buffer.getbuffer())


def receive(conn: Connection):
    """The next object :func:`send` sent on ``conn``."""
    return pickle.loads(conn.recv_bytes())


def serve(conn: Connection) -> None:
    """Run jobs from ``conn`` until it closes."""
    while True:
        try:
            fn, args, seconds = receive(conn)
        except (EOFError, OSError):
            return
        except Exception:  # noqa: BLE001 - a job naming what this process cannot import: refuse it, keep serving
            send(conn, ("error", traceback.format_exc(limit=5)))
            continue
        deadline = time.monotonic() + seconds
        try:
            for value in fn(*args):
                send(conn, ("item", value))
                if time.monotonic() >= deadline:
                    break
            send(conn, ("done",))
        except (EOFError, OSError):
            return
        except BaseException:  # noqa: BLE001 - reported to the user's process, which keeps its fallback
            try:
                send(conn, ("error", traceback.format_exc(limit=5)))
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
