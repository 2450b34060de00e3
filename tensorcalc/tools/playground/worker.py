"""The process that answers the playground's requests, so that one that takes too long
can be stopped: Python cannot stop a thread, but it can end a process.

One worker process answers one request at a time (the page sends one at a time); a
request past the time limit ends the process, answers with an error that says so, and a
new process takes its place. The worker's memory limit is the playground's
(``actions.MEMORY_LIMIT`` or a lower ``TENSORCALC_MEMORY_LIMIT``): inputs larger are
refused before they are loaded or drawn.
"""

from __future__ import annotations

import multiprocessing
import threading
from multiprocessing.connection import Connection
from typing import Any

from ...limits import memory_limit, set_memory_limit
from .actions import MEMORY_LIMIT, answer

#: The default time limit of one request, in seconds.
TIME_LIMIT = 10.0


def _serve(conn: Connection) -> None:
    """The worker process: answer requests until the pipe closes."""
    set_memory_limit(min(memory_limit(), MEMORY_LIMIT))
    while True:
        try:
            action, request = conn.recv()
        except EOFError:
            return
        conn.send(answer(action, request))


class Worker:
    """A worker process, and its replacement after a request that ran out of time."""

    def __init__(self, time_limit: float = TIME_LIMIT) -> None:
        self.time_limit = time_limit
        self._lock = threading.Lock()
        self._context = multiprocessing.get_context("spawn")  # no fork of a threaded server
        self._start()

    def _start(self) -> None:
        self._conn, child = self._context.Pipe()
        self._process = self._context.Process(target=_serve, args=(child,), daemon=True,
                                              name="tensorcalc-playground-worker")
        self._process.start()
        child.close()

    def _restart(self) -> None:
        self._process.kill()
        self._process.join()
        self._conn.close()
        self._start()

    def ask(self, action: str, request: Any) -> dict[str, Any]:
        """The answer to one request, or an error once it has run ``time_limit`` seconds."""
        with self._lock:
            self._conn.send((action, request))
            if self._conn.poll(self.time_limit):
                try:
                    result: dict[str, Any] = self._conn.recv()
                    return result
                except EOFError:  # the process died (out of memory, killed)
                    self._restart()
                    return _stopped("the worker process stopped while answering (out of "
                                    "memory?); it has been restarted")
            self._restart()
            return _stopped(f"the request took longer than the time limit of "
                            f"{self.time_limit:g} s and was stopped; try smaller sizes")

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            self._process.join(timeout=2)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()


def _stopped(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "kind": "TimeLimit", "line": 0, "column": 0}}
