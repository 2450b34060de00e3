"""The playground's HTTP server: the standard library's ``ThreadingHTTPServer``, no
framework (a handful of fixed routes need none, and it adds no dependency).

Every request must carry the server's token, a random ``secrets.token_urlsafe`` value, as
``?token=`` or in the header ``X-Tensorcalc-Token`` (as Jupyter does: another user of the
machine, or a web page in the browser, does not know it). A request with an ``Origin``
header must come from the page itself. Bodies are at most ``MAX_REQUEST`` bytes; the work
runs in ``worker.Worker`` under a time and memory limit. Files are served from a fixed
table built at start (the page and KaTeX), never from a path in the request.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import socket
import sys
import webbrowser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .examples import EXAMPLES
from .worker import TIME_LIMIT, Worker

#: The largest request body, in bytes (room for a few uploaded arrays).
MAX_REQUEST = 8 * 2**20

_HERE = Path(__file__).resolve().parent
_KATEX = _HERE.parent.parent / "assets" / "katex"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".woff2": "font/woff2"}
_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
           "font-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
           "form-action 'none'; frame-ancestors 'none'")


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _files(token: str) -> dict[str, tuple[bytes, str]]:
    """Every path the server answers a GET for, with its content and type: the page, its
    script and style, and KaTeX (its fonts' URLs carry the token)."""
    files: dict[str, tuple[bytes, str]] = {}
    for f in (_HERE / "static").iterdir():
        if f.suffix in _TYPES:
            files[f"/static/{f.name}"] = (f.read_bytes(), _TYPES[f.suffix])
    for f in [*_KATEX.iterdir(), *(_KATEX / "fonts").iterdir()]:
        if f.suffix in _TYPES:
            files["/katex/" + f.relative_to(_KATEX).as_posix()] = (f.read_bytes(),
                                                                   _TYPES[f.suffix])
    page, kind = files.pop("/static/index.html")
    files["/"] = (page.replace(b"__TOKEN__", token.encode()), kind)
    css, kind = files["/katex/katex.min.css"]
    files["/katex/katex.min.css"] = (
        re.sub(rb"url\((fonts/[^)]+\.woff2)\)", rb"url(\1?token=" + token.encode() + rb")",
               css), kind)
    files["/api/examples"] = (json.dumps(EXAMPLES).encode(), "application/json")
    return files


class Playground(ThreadingHTTPServer):
    """The server, with its token, the origins its page has, its files and its worker."""

    daemon_threads = True

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 time_limit: float = TIME_LIMIT) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), _Handler)
        self.token = secrets.token_urlsafe(32)
        self.port = int(self.server_address[1])
        shown = f"[{host}]" if ":" in host else host
        names = {shown} | ({"127.0.0.1", "localhost", "[::1]"} if is_loopback(host) else set())
        self.origins = {f"http://{name}:{self.port}" for name in names}
        self.url = f"http://{shown}:{self.port}/?token={self.token}"
        self.files = _files(self.token)
        self.worker = Worker(time_limit)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed (closed early, too slow): one line, no traceback."""
        error = sys.exc_info()[1]
        print(f"tensorcalc: note: a request from {client_address[0]} failed: "
              f"{type(error).__name__}: {error}", file=sys.stderr)

    def server_close(self) -> None:
        super().server_close()
        self.worker.close()


class _Handler(BaseHTTPRequestHandler):
    server: Playground
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds a connection may stay silent: a slow client holds no thread

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Quiet: the URL of each request carries the token."""

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Content-Security-Policy", _POLICY)
        self.end_headers()
        self.wfile.write(body)

    def _refuse(self, status: HTTPStatus, message: str) -> None:
        body = json.dumps({"error": {"message": message, "kind": status.phrase,
                                     "line": 0, "column": 0}}).encode()
        self.close_connection = True
        self._send(status, body, "application/json")

    def _allowed(self) -> bool:
        """Whether the request carries the token and, if it has an Origin, comes from the
        page; if not, it has been refused."""
        query = parse_qs(urlsplit(self.path).query)
        given = self.headers.get("X-Tensorcalc-Token") or (query.get("token") or [""])[0]
        if not secrets.compare_digest(given.encode(), self.server.token.encode()):
            self._refuse(HTTPStatus.FORBIDDEN, "missing or wrong token: open the URL that "
                                               "'tensorcalc serve' printed")
            return False
        origin = self.headers.get("Origin")
        if origin is not None and origin not in self.server.origins:
            self._refuse(HTTPStatus.FORBIDDEN, f"requests from {origin} are refused")
            return False
        return True

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        if not self._allowed():
            return
        found = self.server.files.get(urlsplit(self.path).path)
        if found is None:
            self._refuse(HTTPStatus.NOT_FOUND, "no such page")
            return
        self._send(HTTPStatus.OK, *found)

    def do_POST(self) -> None:  # noqa: N802 - the base class's name
        if not self._allowed():
            return
        path = urlsplit(self.path).path
        if not path.startswith("/api/"):
            self._refuse(HTTPStatus.NOT_FOUND, "no such action")
            return
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            self._refuse(HTTPStatus.LENGTH_REQUIRED, "a request needs a Content-Length")
            return
        if int(length) > MAX_REQUEST:
            self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                         f"the request is {int(length):,} bytes; the playground takes at most "
                         f"{MAX_REQUEST:,}")
            return
        try:
            request = json.loads(self.rfile.read(int(length)))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            self._refuse(HTTPStatus.BAD_REQUEST, "the request is not JSON")
            return
        result = self.server.worker.ask(path.removeprefix("/api/"), request)
        status = HTTPStatus.BAD_REQUEST if "error" in result else HTTPStatus.OK
        self._send(status, json.dumps(result).encode(), "application/json")


def serve(host: str, port: int, open_browser: bool, time_limit: float = TIME_LIMIT) -> int:
    """``tensorcalc serve``: print the URL, open it if asked, serve until interrupted."""
    if not is_loopback(host):
        print(f"tensorcalc: warning: serving on {host}, not on this machine only: anyone "
              "who can reach it and has the URL (its token) can use the playground",
              file=sys.stderr)
    server = Playground(host, port, time_limit)
    print(f"tensorcalc playground: {server.url}", flush=True)
    if open_browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
