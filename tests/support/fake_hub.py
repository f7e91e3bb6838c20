"""A hub impostor on loopback: whatever answers `hub.url` when it is not the hub (a man
on the path of a plain-HTTP hub URL, a hijacked DNS name, a misconfigured URL).

    with FakeHub(lambda req: (200, "application/json", b'{"orders": [...]}')) as fake:
        start_agent(run_dir, env={"SHOPGATE_HUB_URL": fake.url})
        fake.wait_for(lambda r: r.path.endswith("/orders"))

`answer(request)` decides every GET; events POSTed by the relay are acknowledged as the
real hub does, so the agent's outbox behaves normally. Every request is recorded.
"""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from tests.support.sim import wait_until


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


Answer = Callable[[Request], tuple[int, str, bytes]]


@dataclass
class FakeHub:
    answer: Answer
    requests: list[Request] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _record(self, body: bytes = b"") -> Request:
                parts = urlsplit(self.path)
                req = Request(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                fake.requests.append(req)
                return req

            def _send(self, status: int, ctype: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._send(*fake.answer(self._record()))

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                req = self._record(raw)
                if req.path.endswith("/events"):
                    body = gzip.decompress(raw) if req.headers.get("content-encoding") else raw
                    n = len(json.loads(body).get("events", []))
                    reply = {"accepted": n, "duplicates": 0}
                    self._send(200, "application/json", json.dumps(reply).encode())
                else:
                    self._send(*fake.answer(req))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, check: Callable[[Request], bool], timeout: float = 10.0) -> Request:
        return wait_until(
            lambda: next((r for r in list(self.requests) if check(r)), None),
            timeout,
            "a request to the fake hub",
        )

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def json_answer(body: Any, status: int = 200) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(body, ensure_ascii=False).encode()
