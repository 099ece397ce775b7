"""AWS that fails on purpose, over real HTTP: moto's server on a loopback port, and in front of
it a small proxy that passes every request through except the operations told to fail. Those
get what AWS itself sends: a throttling or access-denied error in the service's own protocol,
an HTTP 500 ``InternalFailure``, or no answer at all (a stalled read). The proxy counts the
requests it received per operation, so a test can see botocore's retries."""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from moto.server import ThreadedMotoServer


class Fault(StrEnum):
    THROTTLING = "throttling"
    ACCESS_DENIED = "access denied"
    TIMEOUT = "read timeout"
    SERVER_ERROR = "HTTP 500"


@dataclass(frozen=True)
class ErrorAnswer:
    status: int
    code: str
    message: str


def error_for(fault: Fault, service: str) -> ErrorAnswer | None:
    """What AWS answers for ``fault`` on ``service`` (None: it does not answer)."""
    if fault is Fault.TIMEOUT:
        return None
    if fault is Fault.THROTTLING:
        if service == "s3":
            return ErrorAnswer(503, "SlowDown", "Please reduce your request rate.")
        return ErrorAnswer(
            429 if service == "bedrock" else 400, "ThrottlingException", "Rate exceeded"
        )
    if fault is Fault.ACCESS_DENIED:
        if service == "s3":
            return ErrorAnswer(403, "AccessDenied", "Access Denied")
        return ErrorAnswer(
            403 if service == "bedrock" else 400,
            "AccessDeniedException",
            f"User: arn:aws:sts::123456789012:assumed-role/portal/app is not authorized to "
            f"perform: {service}:* on this resource",
        )
    code = "InternalError" if service == "s3" else "InternalFailure"
    return ErrorAnswer(500, code, "We encountered an internal error. Please try again.")


def service_of(headers: Any) -> str:
    """The service a signed request is for, from its SigV4 credential scope."""
    scope = str(headers.get("Authorization", "")).split("Credential=")[-1].split(",")[0]
    parts = scope.split("/")
    return parts[3] if len(parts) > 3 else "unknown"


def operation_of(method: str, target: str, headers: Any) -> str:
    """The API operation of a request, for the operations the fault tests name."""
    if headers.get("X-Amz-Target"):  # the JSON protocol: "SageMaker.CreateTrainingJob"
        return str(headers["X-Amz-Target"]).rsplit(".", 1)[-1]
    path, query = urlsplit(target).path, parse_qs(urlsplit(target).query)
    if service_of(headers) == "s3":
        segments = [s for s in path.split("/") if s]
        if method == "GET" and len(segments) >= 2:
            return "GetObject"
        if method == "GET" and query.get("list-type") == ["2"]:
            return "ListObjectsV2"
        return f"s3 {method} {path}"
    if method == "POST" and path == "/model-customization-jobs":
        return "CreateModelCustomizationJob"
    return f"{method} {path}"


@dataclass
class FaultyAws:
    """The proxy's URL (for ``PORTAL_AWS_ENDPOINT_URL``), moto's own URL (for setting up
    state behind the proxy's back), the faults to inject and what was received."""

    url: str
    moto_url: str
    faults: dict[str, Fault] = field(default_factory=dict)  # "Operation" or "Operation /path"
    received: Counter[str] = field(default_factory=Counter)
    stalled: Counter[str] = field(default_factory=Counter)
    released: threading.Event = field(default_factory=threading.Event)
    partial_body: dict[str, int] = field(default_factory=dict)  # op -> bytes sent, then stall
    lost_answers: Counter[str] = field(default_factory=Counter)  # op -> answers to drop
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, operation: str, fault: Fault) -> None:
        self.faults[operation] = fault

    def clear(self) -> None:
        """The fault passes: stalled requests end, and later ones reach moto."""
        self.faults.clear()
        self.partial_body.clear()
        self.lost_answers.clear()
        self.released.set()

    def reset(self) -> None:
        self.clear()
        self.received.clear()
        self.stalled.clear()
        self.released = threading.Event()
        requests.post(f"{self.moto_url}/moto-api/reset", timeout=10).raise_for_status()


def _error_body(answer: ErrorAnswer, method: str, headers: Any) -> tuple[dict[str, str], bytes]:
    request_id = str(uuid.uuid4())
    if service_of(headers) == "s3":
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{answer.code}</Code>'
            f"<Message>{answer.message}</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
        return {"Content-Type": "application/xml", "x-amz-request-id": request_id}, body
    if headers.get("X-Amz-Target"):
        payload = {"__type": answer.code, "message": answer.message}
        content_type = "application/x-amz-json-1.1"
    else:  # rest-json
        payload = {"message": answer.message}
        content_type = "application/json"
    return {
        "Content-Type": content_type,
        "x-amzn-RequestId": request_id,
        "x-amzn-ErrorType": answer.code,
    }, json.dumps(payload).encode()


def _handler(aws: FaultyAws, upstream: tuple[str, int]) -> type[BaseHTTPRequestHandler]:
    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # answers botocore's "Expect: 100-continue" at once

        def _any(self) -> None:
            body = self._body()
            operation = operation_of(self.command, self.path, self.headers)
            exact = f"{operation} {urlsplit(self.path).path}"  # one object, say
            with aws.lock:
                aws.received[operation] += 1
                aws.received[exact] += 1
                fault = aws.faults.get(exact, aws.faults.get(operation))
                partial = aws.partial_body.get(exact, aws.partial_body.get(operation))
                lose = aws.lost_answers[operation] > 0
                if lose:
                    aws.lost_answers[operation] -= 1
            if fault is not None:
                answer = error_for(fault, service_of(self.headers))
                if answer is None:
                    aws.stalled[operation] += 1
                    aws.released.wait(30)  # never answers while the fault lasts
                    self.close_connection = True
                    return
                headers, payload = _error_body(answer, self.command, self.headers)
                self._answer(answer.status, headers, payload)
                return
            status, headers, payload = self._forward(body)
            if lose:  # AWS acted on the request, but its answer never comes
                aws.stalled[operation] += 1
                aws.released.wait(30)
                self.close_connection = True
                return
            if partial is not None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload[:partial])
                self.wfile.flush()
                aws.stalled[operation] += 1
                aws.released.wait(30)  # the rest of the object never comes
                self.close_connection = True
                return
            self._answer(status, headers, payload)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline().strip():
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _forward(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
            connection = http.client.HTTPConnection(*upstream, timeout=60)
            skipped = {"transfer-encoding", "content-length", "connection"}
            headers = {k: v for k, v in self.headers.items() if k.lower() not in skipped}
            headers["Content-Length"] = str(len(body))
            try:
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                kept = {
                    k: v for k, v in response.getheaders() if k.lower() not in skipped | {"date"}
                }
                return response.status, kept, payload
            finally:
                connection.close()

        def _answer(self, status: int, headers: dict[str, str], payload: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Proxy


@contextmanager
def faulty_aws() -> Iterator[FaultyAws]:
    """moto's server and the fault proxy in front of it, both on free loopback ports."""
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    moto_url = f"http://{host}:{port}"
    state = FaultyAws(url="", moto_url=moto_url)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state, (host, port)))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.clear()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        moto.stop()
