"""A seller's webhook endpoint on loopback, for tests, chaos cases and benches.

Records every POST (path, body, lower-cased headers, when); answers each path with the
statuses planned for it, in order, the last one repeating (default 200), after an
optional delay. A 3xx answer names a Location, so that a client that followed redirects
would be seen (`/redirected-here`). Delivery code must be allowed to reach it with
WEBHOOK_ALLOW_HOSTS=<host:port> (loopback is refused otherwise).
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class WebhookReceiver:
    def __init__(self, delay_s: float = 0.0) -> None:
        self.requests: list[dict[str, Any]] = []
        self.plans: dict[str, list[int]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                with receiver.lock:
                    seen = sum(1 for r in receiver.requests if r["path"] == self.path)
                    receiver.requests.append({
                        "path": self.path, "body": body, "at": time.monotonic(),
                        "headers": {k.lower(): v for k, v in self.headers.items()}})
                    plan = receiver.plans.get(self.path, [200])
                    status = plan[min(seen, len(plan) - 1)]
                if delay_s:
                    time.sleep(delay_s)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "/redirected-here")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        """host:port, the value WEBHOOK_ALLOW_HOSTS needs."""
        return f"127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return f"http://{self.host}{path}"

    def plan(self, path: str, statuses: list[int]) -> None:
        with self.lock:
            self.plans[path] = statuses

    def hits(self, path: str | None = None) -> list[dict[str, Any]]:
        """The requests to `path` (every request when None), in arrival order."""
        with self.lock:
            return [r for r in self.requests if path is None or r["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
