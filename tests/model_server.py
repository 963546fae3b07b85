"""An HTTP file server on 127.0.0.1 for download tests, with switchable misbehaviour.

Each served path has a payload and a mode:

    range       honours `Range: bytes=N-` (206), else the whole file (200)
    no-range    ignores Range and always sends the whole file (200)
    drop-half   for the first `drops` requests, stops at the middle of the file and
                closes the connection; later requests behave like "range"
    stall-half  sends up to the middle of the file, then waits for `release()`
    error-once  answers the first request with `status` (503, 429), then like "range"
    status      always answers with `status` (404) and a short text body
    html        answers 200 with an HTML page (Content-Type text/html)

Every request is recorded with its Range header, status and the body bytes sent.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SEND_CHUNK = 16 * 1024


@dataclass
class ServedFile:
    payload: bytes
    mode: str = "range"
    status: int = 404
    drops: int = 1


@dataclass
class RequestRecord:
    path: str
    range: str | None
    authorization: str | None
    status: int = 0
    sent: int = 0


@dataclass
class ModelServer:
    files: dict[str, ServedFile] = field(default_factory=dict)
    requests: list[RequestRecord] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._release = threading.Event()
        self.stalled = threading.Event()
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server._handle(self)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def serve(self, path: str, payload: bytes, mode: str = "range", **options) -> str:
        self.files[path] = ServedFile(payload, mode, **options)
        return self.url(path)

    def release(self) -> None:
        self._release.set()

    def close(self) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def bytes_sent(self, path: str | None = None) -> int:
        return sum(r.sent for r in self.requests if path is None or r.path == path)

    # Request handling --------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        record = RequestRecord(
            handler.path, handler.headers.get("Range"), handler.headers.get("Authorization")
        )
        with self._lock:
            self.requests.append(record)
            served = self.files.get(handler.path)
            earlier = sum(1 for r in self.requests[:-1] if r.path == handler.path)
        if served is None:
            self._send_text(handler, record, 404, "text/plain", b"no such file")
            return

        mode = served.mode
        if mode == "drop-half" and earlier >= served.drops:
            mode = "range"
        if mode == "error-once":
            if earlier == 0:
                self._send_text(handler, record, served.status, "text/plain", b"try later")
                return
            mode = "range"
        if mode == "status":
            self._send_text(handler, record, served.status, "text/plain", b"not here")
            return
        if mode == "html":
            page = b"<!DOCTYPE html><html><body><h1>Sign in to continue</h1></body></html>"
            self._send_text(handler, record, 200, "text/html; charset=utf-8", page)
            return

        payload = served.payload
        start = 0
        if record.range and mode != "no-range":
            start = int(record.range.removeprefix("bytes=").split("-")[0])
            if start >= len(payload):
                handler.send_response(416)
                handler.send_header("Content-Range", f"bytes */{len(payload)}")
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                record.status = 416
                return
        status = 206 if start else 200
        handler.send_response(status)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(len(payload) - start))
        if status == 206:
            handler.send_header("Content-Range", f"bytes {start}-{len(payload) - 1}/{len(payload)}")
        handler.send_header("Accept-Ranges", "none" if mode == "no-range" else "bytes")
        handler.end_headers()
        record.status = status

        middle = len(payload) // 2
        stop = middle if mode in ("drop-half", "stall-half") and start < middle else len(payload)
        try:
            self._send_body(handler, record, payload, start, stop)
            if mode == "stall-half" and stop < len(payload):
                self.stalled.set()
                self._release.wait(30)
                self._send_body(handler, record, payload, stop, len(payload))
        except (BrokenPipeError, ConnectionResetError):
            pass
        if stop < len(payload):
            handler.close_connection = True

    def _send_body(self, handler, record: RequestRecord, payload: bytes, start: int, stop: int) -> None:
        position = start
        while position < stop:
            chunk = payload[position:min(stop, position + SEND_CHUNK)]
            handler.wfile.write(chunk)
            handler.wfile.flush()
            position += len(chunk)
            record.sent += len(chunk)

    def _send_text(self, handler, record: RequestRecord, status: int, content_type: str, body: bytes) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
        record.status = status
        record.sent += len(body)
