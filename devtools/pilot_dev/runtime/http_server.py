"""The HTTP/1.1 front of `pilot run`: one thread per connection, parsed by httptools.

Each request is handled on the thread that read it, start to finish: a Lambda
handler is synchronous (Mangum runs its own event loop), so an asyncio server would
have to hand every request to a worker thread and back, two cross-thread wake-ups
that cost more than the whole translation to an API Gateway event. Here the only
wake-up is the one the kernel does when the request's bytes arrive.

Threads read, parse and answer their connections freely, but at most `app_slots`
of them run the app at a time; the others wait their turn in order of arrival. One
interpreter has one core's worth of Python: 32 threads all running the app
contended for the GIL in 5 ms slices, which tripled nobody's throughput and made the
slowest of them wait half a second (issue 18: p99 35x a bare uvicorn app). A few
slots keep a handler that waits on Postgres from holding the others up.

What it implements, and nothing more: keep-alive and pipelining, Content-Length and
chunked request bodies (httptools decodes them), `Expect: 100-continue`, a body-size
limit answered with 413 before the body is read, 400 for what does not parse, an
idle timeout, and a graceful stop that lets requests in hand finish.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from http import HTTPStatus

import httptools


@dataclass(slots=True)
class HttpRequest:
    method: str
    path: str
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    client_ip: str


@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    # work that need not delay the client (an access log line): run once it is sent
    after: Callable[[], None] | None = None


App = Callable[[HttpRequest], HttpResponse]
TooLarge = Callable[[], HttpResponse]

APP_SLOTS = 3  # requests in the app at once (see the module's docstring)

_REASONS = {status.value: status.phrase for status in HTTPStatus}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


class _Turns:
    """A counting semaphore that grants in order of arrival (threading.Semaphore lets
    a newcomer overtake a thread it just woke, which is what makes a long tail)."""

    def __init__(self, slots: int) -> None:
        self._lock = threading.Lock()
        self._free = max(1, slots)
        self._waiting: deque[threading.Lock] = deque()

    def __enter__(self) -> None:
        with self._lock:
            if self._free and not self._waiting:
                self._free -= 1
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        turn.acquire()  # released by the thread that hands its slot over

    def __exit__(self, *_: object) -> None:
        with self._lock:
            if self._waiting:
                self._waiting.popleft().release()  # the slot passes on, still taken
            else:
                self._free += 1


class _Date:
    """The Date header, formatted once a second rather than once a response."""

    def __init__(self) -> None:
        self.second = -1
        self.value = b""

    def header(self) -> bytes:
        now = int(time.time())
        if now != self.second:
            self.second, self.value = now, f"date: {formatdate(now, usegmt=True)}\r\n".encode()
        return self.value


_FRAMING = frozenset({"content-length", "connection", "transfer-encoding"})  # ours to set


def encode_response(response: HttpResponse, *, keep_alive: bool, head: bool,
                    date: bytes = b"") -> bytes:
    """The status line and headers (names as given: HTTP/1.1 names are case-blind)."""
    head_text = "".join([
        f"HTTP/1.1 {response.status} {_REASONS.get(response.status, '')}\r\n",
        *(f"{name}: {value}\r\n" for name, value in response.headers
          if name.lower() not in _FRAMING),
        f"content-length: {len(response.body)}\r\n",
        "" if keep_alive else "connection: close\r\n",
    ]).encode("latin-1")
    return b"".join((head_text, date, b"\r\n", b"" if head else response.body))


class _Connection:
    """One client connection: the httptools callbacks, and the loop that serves it."""

    def __init__(self, server: HttpServer, sock: socket.socket, client_ip: str) -> None:
        self.server = server
        self.sock = sock
        self.client_ip = client_ip
        self.parser = httptools.HttpRequestParser(self)
        self.ready: deque[tuple[HttpRequest, bool]] = deque()
        self.too_large = False
        self.busy = False
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.declared_length: bytes | None = None
        self.expects_continue = False

    # httptools callbacks ------------------------------------------------------

    def on_message_begin(self) -> None:
        self._reset()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"content-length":
            self.declared_length = value
        elif lowered == b"expect":
            self.expects_continue = value.lower() == b"100-continue"
        self.headers.append((lowered.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        declared = self.declared_length
        if declared is not None and declared.isdigit() and int(declared) > self.server.max_body:
            self.too_large = True  # answered before a byte of the body is read
            return
        if self.expects_continue:
            self.sock.sendall(_CONTINUE)

    def on_body(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.server.max_body:
            self.too_large = True
        elif not self.too_large:
            self.chunks.append(chunk)

    def on_message_complete(self) -> None:
        if self.too_large:
            return
        url = httptools.parse_url(self.url)
        request = HttpRequest(
            method=self.parser.get_method().decode("ascii"),
            path=url.path.decode("latin-1"),
            query=(url.query or b"").decode("latin-1"),
            headers=self.headers,
            body=b"".join(self.chunks),
            client_ip=self.client_ip,
        )
        self.ready.append((request, self.parser.should_keep_alive()))

    # serving ------------------------------------------------------------------

    def serve(self) -> None:
        server = self.server
        try:
            # The idle timeout is the kernel's (SO_RCVTIMEO): a Python socket timeout
            # would add a poll() before every recv().
            seconds = int(server.idle_timeout)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO,
                                 struct.pack("ll", seconds, 0))
            while True:
                try:
                    data = self.sock.recv(65536)
                except OSError:  # idle timeout, reset, or shut down by stop()
                    return
                if not data:
                    return
                self.busy = True  # stop() now waits for this request to be answered
                try:
                    self.parser.feed_data(data)
                except httptools.HttpParserUpgrade:
                    self._fail(HTTPStatus.BAD_REQUEST, "protocol upgrades are not supported")
                    return
                except httptools.HttpParserError as exc:
                    self._fail(HTTPStatus.BAD_REQUEST, f"malformed HTTP request: {exc}")
                    return
                if self.too_large:
                    self._send(server.too_large(), keep_alive=False, head=False)
                    self._drain()
                    return
                if not self._answer_ready():
                    return
                self.busy = False
        finally:
            server.forget(self)
            with contextlib.suppress(OSError):
                self.sock.close()
            if server.on_thread_exit is not None:
                server.on_thread_exit()

    def _answer_ready(self) -> bool:
        """Answer every complete request received so far; False once the connection ends."""
        while self.ready:
            request, keep_alive = self.ready.popleft()
            try:
                with self.server.slots:
                    response = self.server.app(request)
            except Exception:  # the app answers errors itself; this is the last resort
                response = HttpResponse(500, [("content-type", "text/plain")],
                                        b"internal error in the local gateway")
            keep_alive = keep_alive and not self.server.stopping
            self._send(response, keep_alive=keep_alive, head=request.method == "HEAD")
            if response.after is not None:
                response.after()
            if not keep_alive:
                return False
        return True

    def _send(self, response: HttpResponse, *, keep_alive: bool, head: bool) -> None:
        payload = encode_response(response, keep_alive=keep_alive, head=head,
                                  date=self.server.date.header())
        with contextlib.suppress(OSError):  # the client went away; nothing to tell it
            self.sock.sendall(payload)

    def _drain(self) -> None:
        # Read (and drop) what the client is still sending for a while, so that closing
        # does not reset the connection before it has read the answer.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
            self.sock.settimeout(1.0)  # Python's timeout from here: a short, bounded drain
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and self.sock.recv(65536):
                pass

    def _fail(self, status: HTTPStatus, message: str) -> None:
        body = message.encode()
        self._send(HttpResponse(status.value, [("content-type", "text/plain")], body),
                   keep_alive=False, head=False)

    def close_if_idle(self) -> None:
        if not self.busy:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)


class HttpServer:
    def __init__(self, app: App, *, host: str, port: int, max_body: int,
                 too_large: TooLarge, idle_timeout: float = 75.0,
                 on_thread_exit: Callable[[], None] | None = None,
                 app_slots: int = APP_SLOTS, reuse_port: bool = False) -> None:
        self.app = app
        # other processes listen on the same port (runtime/http_processes.py)
        self.reuse_port = reuse_port
        self.slots = _Turns(app_slots)
        self.on_thread_exit = on_thread_exit  # frees what the app kept per thread
        self.host = host
        self.requested_port = port
        self.max_body = max_body
        self.too_large = too_large
        self.idle_timeout = idle_timeout  # longer than common clients' pool idle times
        self.date = _Date()
        self.lock = threading.Lock()
        self.stopping = False
        self._connections: set[_Connection] = set()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._listener is not None
        return int(self._listener.getsockname()[1])

    def start(self) -> HttpServer:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.reuse_port:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            listener.bind((self.host, self.requested_port))
        except OSError:
            listener.close()
            raise
        listener.listen(128)
        listener.settimeout(0.25)  # so the accept loop notices stop() promptly
        self._listener = listener
        self._thread = threading.Thread(target=self._accept, name="http-accept", daemon=True)
        self._thread.start()
        return self

    def _accept(self) -> None:
        assert self._listener is not None
        while not self.stopping:
            try:
                sock, address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            connection = _Connection(self, sock, address[0])
            with self.lock:
                if self.stopping:
                    sock.close()
                    return
                self._connections.add(connection)
            threading.Thread(target=connection.serve, name="http-conn", daemon=True).start()

    def forget(self, connection: _Connection) -> None:
        with self.lock:
            self._connections.discard(connection)

    def stop(self, grace: float = 30.0) -> None:
        """Refuse new connections, close idle ones, let requests in hand finish."""
        with self.lock:
            self.stopping = True
        if self._thread is not None:
            self._thread.join(2)
        if self._listener is not None:
            self._listener.close()
        deadline = time.monotonic() + grace
        while True:
            with self.lock:
                remaining = list(self._connections)
                for connection in remaining:
                    connection.close_if_idle()
            if not remaining or time.monotonic() > deadline:
                return
            time.sleep(0.02)
