"""Offline stand-in for Slack incoming webhooks (a boundary tests cannot reach).

Behaves like ``https://hooks.slack.com/services/T…/B…/…`` as Slack documents it
(https://api.slack.com/messaging/webhooks, "Handling errors"; the status codes and
body strings in https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks;
rate limits in https://api.slack.com/docs/rate-limits: about one message per second per
webhook, answered with HTTP 429 and ``Retry-After``):

* ``POST /services/<team>/<bot>/<secret>`` with a JSON body carrying ``text`` and/or
  ``blocks`` → ``200 ok`` (plain text), and the message is recorded;
* a body that is not JSON, or has neither ``text`` nor ``blocks`` → ``400
  invalid_payload``; ``blocks`` that are not a list of objects with a ``type``, more than
  50 blocks, or a section text over 3,000 characters → ``400 invalid_blocks``;
* a team path segment of ``TNOTEAM`` → ``404 no_team``; a bot segment of ``BARCHIVED``
  → ``410 channel_is_archived`` (a hook whose channel was archived);
* more than ``rate_per_s`` messages to one webhook within a second → ``429
  rate_limited`` with ``Retry-After: 1``;
* anything else → ``404 no_service``.

Faults on demand: ``POST /_sandbox/faults`` ``{"status": 429|500, "count": N}`` answers
the next N messages with that status. ``GET /_sandbox/messages`` lists what was
accepted; ``DELETE /_sandbox/messages`` clears. Slack does not sign incoming-webhook
requests, and neither does Amazon Pilot: the URL itself is the secret.

In-process: ``SlackStandIn().start()`` then ``.webhook_url("T1", "B1")``, ``.messages``,
``.stop()``. As a process: ``python -m pilot_dev.standins.slack_server --port 8788``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000


def check_message(body: bytes) -> tuple[int, str]:
    """Slack's answer to this body when the hook itself is fine."""
    try:
        message = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return 400, "invalid_payload"
    if not isinstance(message, dict) or not (message.get("text") or message.get("blocks")):
        return 400, "invalid_payload"
    blocks = message.get("blocks")
    if blocks is None:
        return 200, "ok"
    if not isinstance(blocks, list) or len(blocks) > MAX_BLOCKS:
        return 400, "invalid_blocks"
    for block in blocks:
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            return 400, "invalid_blocks"
        text = block.get("text")
        if isinstance(text, dict) and len(str(text.get("text", ""))) > MAX_SECTION_TEXT:
            return 400, "invalid_blocks"
    return 200, "ok"


class SlackStandIn:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, rate_per_s: int = 50) -> None:
        self.messages: list[dict[str, Any]] = []
        self.answers: list[tuple[str, int, str]] = []  # (path, status, body) of every POST
        self.rate_per_s = rate_per_s
        self.lock = threading.Lock()
        self._recent: dict[str, deque[float]] = defaultdict(deque)
        self._faults: list[int] = []
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, text: str, headers: dict[str, str] | None = None
                        ) -> None:
                data = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/_sandbox/messages":
                    with standin.lock:
                        data = json.dumps({"count": len(standin.messages),
                                           "messages": standin.messages})
                    self._answer(200, data)
                else:
                    self._answer(404, "no_service")

            def do_DELETE(self) -> None:
                if self.path == "/_sandbox/messages":
                    with standin.lock:
                        standin.messages.clear()
                        standin.answers.clear()
                    self._answer(204, "")
                else:
                    self._answer(404, "no_service")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path == "/_sandbox/faults":
                    fault = json.loads(body or b"{}")
                    standin.inject(int(fault.get("status", 500)), int(fault.get("count", 1)))
                    self._answer(200, "armed")
                    return
                status, text, headers = standin.handle(self.path, body)
                self._answer(status, text, headers)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ------------------------------------------------------------------ behaviour

    def handle(self, path: str, body: bytes) -> tuple[int, str, dict[str, str]]:
        parts = path.split("?", 1)[0].strip("/").split("/")
        with self.lock:
            answer = self._decide(parts, body)
            self.answers.append((path, answer[0], answer[1]))
            return answer

    def _decide(self, parts: list[str], body: bytes) -> tuple[int, str, dict[str, str]]:
        if len(parts) != 4 or parts[0] != "services" or not all(parts[1:]):
            return 404, "no_service", {}
        if parts[1] == "TNOTEAM":
            return 404, "no_team", {}
        if parts[2] == "BARCHIVED":
            return 410, "channel_is_archived", {}
        if self._faults:
            status = self._faults.pop(0)
            if status == 429:
                return 429, "rate_limited", {"Retry-After": "1"}
            return status, "rollup_error", {}
        hook = "/".join(parts)
        now = time.monotonic()
        recent = self._recent[hook]
        while recent and now - recent[0] > 1.0:
            recent.popleft()
        if len(recent) >= self.rate_per_s:
            return 429, "rate_limited", {"Retry-After": "1"}
        recent.append(now)
        status, text = check_message(body)
        if status == 200:
            self.messages.append({"hook": hook, "message": json.loads(body)})
        return status, text, {}

    def inject(self, status: int, count: int = 1) -> None:
        with self.lock:
            self._faults.extend([status] * count)

    # ------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def webhook_url(self, team: str = "T0001", bot: str = "B0001",
                    secret: str = "XXXXXXXXXXXXXXXXXXXXXXXX") -> str:
        return f"http://127.0.0.1:{self.port}/services/{team}/{bot}/{secret}"

    def hook_messages(self, url: str) -> list[dict[str, Any]]:
        hook = url.split("/", 3)[3].strip("/")
        with self.lock:
            return [m["message"] for m in self.messages if m["hook"] == hook]

    def start(self) -> SlackStandIn:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8788)
    parser.add_argument("--rate", type=int, default=1, help="messages per second per hook")
    args = parser.parse_args(argv)
    standin = SlackStandIn(args.host, args.port, rate_per_s=args.rate)
    print(f"Slack stand-in on {standin.webhook_url()} (allow it with "
          f"WEBHOOK_ALLOW_HOSTS={args.host}:{standin.port})", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        standin.server.serve_forever()


if __name__ == "__main__":
    main()
