"""What every panel simulator shares: a threaded HTTP server on loopback, fault injection.

A simulator is faked only at the wire: it answers requests exactly as the panel's contract in
shared/panels says, and keeps per-account state in memory so tests can assert on it. A subclass
implements ``handle(request)`` and returns a ``Response``; the base class adds latency, injected
transient failures, a log of the requests it saw (with bodies, for signature tests) and, like a
busy panel, a limit on the calls it serves at once (``max_concurrency``): a call beyond it waits
for one to finish, so a benchmark cannot go faster than the panels by overloading one.
"""

from __future__ import annotations

import dataclasses
import math
import random
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

    def __init__(self, host: str = "127.0.0.1", port: int = 0, latency: float = 0.0,
                 max_concurrency: int | None = None, slow_calls: dict[str, float] | None = None,
                 seed: int | None = None):
        """``latency``: seconds every call takes. ``max_concurrency``: calls served at once
        (None: no limit); a further call waits for a place before its latency starts.
        ``slow_calls``: call name (see ``call_name``) → mean seconds of a log-normal draw that
        replaces ``latency`` for that call (sigma ``LOGNORMAL_SIGMA``), e.g. a WHM createacct
        that takes seconds to a minute while reads stay quick."""
        self.lock = threading.RLock()
        self.latency = latency
        self.max_concurrency = max_concurrency
        self.slow_calls = dict(slow_calls or {})
        self._rng = random.Random(seed)
        self._places = threading.BoundedSemaphore(max_concurrency) if max_concurrency else None
        self.in_flight = 0
        self.peak_in_flight = 0
        self.delays: list[float] = []   # seconds each call took to answer, in the order served
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

    LOGNORMAL_SIGMA = 0.8

    def call_name(self, request: Request) -> str:
        """What the call is, for ``slow_calls``: the last part of its path (a subclass whose
        calls share one path says better)."""
        return request.path.rstrip("/").rsplit("/", 1)[-1]

    def delay_for(self, request: Request) -> float:
        """Seconds this call takes: a log-normal draw with the configured mean for a slow call,
        else ``latency``."""
        mean = self.slow_calls.get(self.call_name(request))
        if mean is None:
            return self.latency
        sigma = self.LOGNORMAL_SIGMA
        with self.lock:
            return self._rng.lognormvariate(math.log(mean) - sigma * sigma / 2, sigma)

    def _dispatch(self, request: Request) -> Response:
        with self.lock:
            self.requests.append(request)
        if self._places is not None:
            self._places.acquire()
        try:
            with self.lock:
                self.in_flight += 1
                self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
            try:
                return self._serve_one(request)
            finally:
                with self.lock:
                    self.in_flight -= 1
        finally:
            if self._places is not None:
                self._places.release()

    def _serve_one(self, request: Request) -> Response:
        delay = self.delay_for(request)
        with self.lock:
            self.delays.append(delay)
        if delay:
            time.sleep(delay)
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
