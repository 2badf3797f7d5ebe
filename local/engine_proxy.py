"""A fault-injecting HTTP proxy in front of a real OpenSearch node, on loopback.

Tests aim the writer at the proxy to see the engine fail in the ways it does in production: a
bulk request whose items are partly rejected with 429 or 503 (those items are held back from the
node, so they really are not written), a whole request rejected with 503 or 429, or a connection cut.
Requests without a queued fault pass through unchanged.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests


@dataclass
class EngineFault:
    """One fault for the next bulk request.

    kind: `partial` (the items at `every`-th positions get `status`), `whole` (the request gets
    `status`), or `disconnect` (the connection closes without a response).
    """

    kind: str
    status: int = 429
    every: int = 5


class EngineProxy:
    """Forwards to `upstream` and applies queued faults to `_bulk` requests."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults: deque[EngineFault] = deque()
        self.bulk_requests = 0
        self._session = requests.Session()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> str:
        self._thread.start()
        return self.url

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class names it
                return

            def _forward(self, body: bytes | None) -> tuple[int, dict[str, str], bytes]:
                headers = {
                    name: value
                    for name, value in self.headers.items()
                    if name.lower() not in ("host", "content-length")
                }
                response = proxy._session.request(
                    self.command, proxy.upstream + self.path, data=body, headers=headers, timeout=60
                )
                forwarded_headers = {
                    name: value
                    for name, value in response.headers.items()
                    if name.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding")
                }
                return response.status_code, forwarded_headers, response.content

            def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.headers.get("Content-Encoding") == "gzip" and body:
                    import gzip

                    body = gzip.decompress(body)
                    del self.headers["Content-Encoding"]
                is_bulk = self.path.split("?")[0].endswith("/_bulk")
                fault = proxy.faults.popleft() if is_bulk and proxy.faults else None
                if is_bulk:
                    proxy.bulk_requests += 1
                if fault is None or body is None:
                    self._reply(*self._forward(body))
                elif fault.kind == "disconnect":
                    self.close_connection = True
                    self.connection.close()
                elif fault.kind == "whole":
                    error = {
                        "error": {"type": "injected", "reason": "injected fault"},
                        "status": fault.status,
                    }
                    self._reply(fault.status, {"Content-Type": "application/json"}, json.dumps(error).encode())
                else:
                    self._reply(*self._partial(body, fault))

            def _partial(self, body: bytes, fault: EngineFault) -> tuple[int, dict[str, str], bytes]:
                lines = [line for line in body.decode().split("\n") if line]
                pairs = [(lines[i], lines[i + 1]) for i in range(0, len(lines), 2)]
                held_back = {i for i in range(len(pairs)) if i % fault.every == 0}
                kept = [pair for i, pair in enumerate(pairs) if i not in held_back]
                forwarded_items: list[dict[str, Any]] = []
                if kept:
                    payload = ("\n".join(line for pair in kept for line in pair) + "\n").encode()
                    status, headers, content = self._forward(payload)
                    forwarded_items = json.loads(content)["items"]
                items = []
                forwarded = iter(forwarded_items)
                for i, (action, _) in enumerate(pairs):
                    if i in held_back:
                        meta = json.loads(action)["create"]
                        items.append(
                            {
                                "create": {
                                    "_index": meta["_index"],
                                    "_id": meta["_id"],
                                    "status": fault.status,
                                    "error": {"type": "injected", "reason": "injected item fault"},
                                }
                            }
                        )
                    else:
                        items.append(next(forwarded))
                response = {"took": 1, "errors": True, "items": items}
                return 200, {"Content-Type": "application/json"}, json.dumps(response).encode()

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        return Handler
