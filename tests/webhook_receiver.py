"""A webhook endpoint on loopback, as a deployment pipeline or an alerting bridge runs one:
it records every POST and answers with the next queued status (200 once the queue is empty)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    deliveries: list[Delivery] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def serve_receiver(path: str, port: int = 0) -> Iterator[Receiver]:
    """A receiver at ``http://127.0.0.1:<port><path>`` while the block runs (a free port unless
    ``port`` is given: a test that sets the URL before the receiver is up chooses it)."""
    state: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hook = state[0]
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if hook.delay:
                threading.Event().wait(hook.delay)
            with hook.lock:
                hook.deliveries.append(Delivery(self.path, dict(self.headers.items()), body))
                status = hook.answers.pop(0) if hook.answers else 200
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"receiver is down")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    host, port = server.server_address[:2]
    state.append(Receiver(url=f"http://{host!s}:{port}{path}"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
