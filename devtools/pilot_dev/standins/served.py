"""What every HTTP stand-in shares: its server on a daemon thread, its address, and
start/stop (also as a `with` block). A stand-in builds its handler class and hands the
server to `_serve`."""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from typing import Self


class ServedStandIn:
    thread_name = "standin"

    def _serve(self, server: ThreadingHTTPServer) -> None:
        self._server = server
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{self.port}"

    def start(self) -> Self:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
            name=f"{self.thread_name}:{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
