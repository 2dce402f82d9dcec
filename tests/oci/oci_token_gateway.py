"""A Bearer-token front for a registry, as Docker Hub, GHCR and Harbor put in front of theirs.

`/token` is the token service: it checks HTTP Basic credentials and hands out
an opaque token. Every `/v2/` request without a valid token gets a 401 with
`WWW-Authenticate: Bearer realm=...,service=...,scope=...`; with one, it is
forwarded to the real registry behind and the answer relayed back. Counters
say how many tokens were issued and refused.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import requests

__all__ = ["TokenGateway"]

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host",
               "authorization", "content-length"}


class TokenGateway:
    def __init__(self, upstream: str, username: str, password: str) -> None:
        self.upstream = upstream
        self._expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self._tokens: set[str] = set()
        self._lock = threading.Lock()
        self.tokens_issued = 0
        self.tokens_refused = 0
        self.scopes: list[str] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # quiet
                del args

            def do_GET(self) -> None:
                gateway._handle(self)

            do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        self._session = requests.Session()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._session.close()

    def _send(self, handler: BaseHTTPRequestHandler, status: int, headers: dict[str, str], body: bytes) -> None:
        handler.send_response(status)
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        path = handler.path
        if path.startswith("/token"):
            query = parse_qs(urlsplit(path).query)
            if handler.headers.get("Authorization") != self._expected:
                with self._lock:
                    self.tokens_refused += 1
                self._send(handler, 401, {"Content-Type": "application/json"}, b'{"details":"bad credentials"}')
                return
            token = secrets.token_hex(16)
            with self._lock:
                self._tokens.add(token)
                self.tokens_issued += 1
                self.scopes.extend(query.get("scope", []))
            self._send(handler, 200, {"Content-Type": "application/json"},
                       json.dumps({"token": token, "access_token": token}).encode())
            return
        auth = handler.headers.get("Authorization", "")
        with self._lock:
            valid = auth.startswith("Bearer ") and auth[7:] in self._tokens
        if not valid:
            match = re.match(r"/v2/(.+?)/(?:blobs|manifests|tags)/", path)
            scope = f',scope="repository:{match.group(1)}:pull,push"' if match else ""
            challenge = f'Bearer realm="http://{self.host}/token",service="ingot-test"{scope}'
            self._send(handler, 401, {"WWW-Authenticate": challenge, "Content-Type": "application/json"},
                       b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
            return
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["Host"] = self.host  # the registry builds Location URLs from it
        reply = self._session.request(handler.command, f"http://{self.upstream}{path}", headers=headers,
                                      data=body, allow_redirects=False)
        relay = {k: v for k, v in reply.headers.items() if k.lower() not in _HOP_BY_HOP}
        self._send(handler, reply.status_code, relay, b"" if handler.command == "HEAD" else reply.content)
