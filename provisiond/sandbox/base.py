"""What every panel simulator shares: a threaded HTTP server on loopback, fault injection.

A simulator is faked only at the wire: it answers requests exactly as the panel's contract in
shared/panels says, and keeps per-account state in memory so tests can assert on it. A subclass
implements ``handle(request)`` and returns a ``Response``; the base class adds latency, injected
transient failures and a log of the requests it saw (with bodies, for signature tests).
"""

from __future__ import annotations

import dataclasses
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    raw_query: str = ""  # the query string as sent: order and repeated names kept (Webmin's @in)

    def form(self) -> dict[str, str]:
        """Query parameters merged with a form-encoded body (body wins), as PHP panels read them."""
        merged = dict(self.query)
        ctype = self.headers.get("content-type", "")
        if self.body and (not ctype or "application/x-www-form-urlencoded" in ctype):
            merged.update(_parse_qs(self.body.decode("utf-8", "replace")))
        return merged


@dataclasses.dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


def _parse_qs(text: str) -> dict[str, str]:
    return {k: v for k, v in urllib.parse.parse_qsl(text, keep_blank_values=True)}


class PanelSimulator:
    """Base class: ``with Simulator() as sim: ... sim.url``."""

    panel = "base"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0):
        self.lock = threading.RLock()
        self.latency = latency
        self.requests: list[Request] = []
        self._faults: list[Response] = []
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def host(self) -> str:
        return self._server.server_address[0]

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "PanelSimulator":
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True,
                                        name=f"sim-{self.panel}")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- fault injection -------------------------------------------------------------------
    def fail_next(self, count: int = 1, status: int = 503, body: bytes = b"Service Unavailable",
                  content_type: str = "text/plain") -> None:
        """Answer the next ``count`` requests with a transient failure instead of handling them."""
        with self.lock:
            self._faults.extend(Response(status, body, content_type) for _ in range(count))

    def _take_fault(self) -> Response | None:
        with self.lock:
            return self._faults.pop(0) if self._faults else None

    # -- dispatch --------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError

    def _dispatch(self, request: Request) -> Response:
        with self.lock:
            self.requests.append(request)
        if self.latency:
            time.sleep(self.latency)
        fault = self._take_fault()
        if fault is not None:
            return fault
        return self.handle(request)

    def _handler_class(self):
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self):
                parsed = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    method=self.command,
                    path=parsed.path,
                    query=_parse_qs(parsed.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    raw_query=parsed.query,
                )
                response = simulator._dispatch(request)
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, format, *args):  # keep test and demo output quiet
                pass

        return Handler
