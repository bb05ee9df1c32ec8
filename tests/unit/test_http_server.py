"""The HTTP/1.1 front of `pilot run`, spoken to over real sockets."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from pilot_dev.runtime.gateway import AccessLog
from pilot_dev.runtime.http_server import HttpRequest, HttpResponse, HttpServer
from pilot_dev.runtime.invoker import Lines

LIMIT = 64 * 1024


class Recorder:
    """An app that answers with what it was given, and remembers every request."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []
        self.release = threading.Event()
        self.release.set()
        self.after_calls = 0

    def __call__(self, request: HttpRequest) -> HttpResponse:
        self.requests.append(request)
        if request.path == "/slow":
            self.release.wait(10)
        if request.path == "/boom":
            raise RuntimeError("the app broke")
        body = json.dumps({"method": request.method, "path": request.path,
                           "query": request.query, "size": len(request.body),
                           "headers": dict(request.headers)}).encode()

        def after() -> None:
            self.after_calls += 1

        return HttpResponse(200, [("content-type", "application/json"), ("x-app", "1")], body,
                            after=after)


def too_large() -> HttpResponse:
    return HttpResponse(413, [("content-type", "application/json")], b'{"error": "too large"}')


Served = tuple[HttpServer, "Recorder"]


@pytest.fixture
def served() -> Iterator[Served]:
    app = Recorder()
    server = HttpServer(app, host="127.0.0.1", port=0, max_body=LIMIT,
                        too_large=too_large).start()
    yield server, app
    app.release.set()
    server.stop(grace=5)


def _raw(port: int, payload: bytes, *, read_until_close: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        if not read_until_close:
            return sock.recv(65536)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def test_keep_alive_serves_many_requests_on_one_connection(served: Served) -> None:
    server, app = served
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}") as client:
        first = client.get("/items/7?q=1&q=2", headers={"X-Trace": "abc"})
        second = client.post("/items", json={"name": "x"})
    assert first.status_code == 200 and first.headers["x-app"] == "1"
    assert first.json()["query"] == "q=1&q=2"
    assert first.json()["headers"]["x-trace"] == "abc"  # header names arrive lower-cased
    assert second.json()["method"] == "POST" and second.json()["size"] == len('{"name":"x"}')
    assert "date" in first.headers
    assert [r.client_ip for r in app.requests] == ["127.0.0.1", "127.0.0.1"]
    # the after-work runs once each response is sent (so, possibly just after the client
    # has read it)
    deadline = time.monotonic() + 5
    while app.after_calls < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert app.after_calls == 2


def test_chunked_bodies_are_decoded(served: Served) -> None:
    server, _ = served

    def pieces() -> Iterator[bytes]:
        yield b"a" * 1000
        yield b"b" * 2000

    response = httpx.post(f"http://127.0.0.1:{server.port}/upload", content=pieces())
    assert response.status_code == 200
    assert response.json()["size"] == 3000


def test_expect_100_continue_gets_the_interim_answer_then_the_final_one(served: Served) -> None:
    server, _ = served
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                     b"Expect: 100-continue\r\n\r\n")
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"hello")
        final = sock.recv(65536)
    assert final.startswith(b"HTTP/1.1 200 OK")
    assert b'"size": 5' in final


def test_a_declared_oversized_body_gets_413_before_it_is_sent(served: Served) -> None:
    server, app = served
    answer = _raw(server.port, f"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: {LIMIT + 1}\r\n"
                               "Expect: 100-continue\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"100 Continue" not in answer
    assert b"connection: close" in answer.lower()
    assert app.requests == []  # the app never saw it


def test_an_oversized_chunked_body_gets_413(served: Served) -> None:
    server, app = served

    def pieces() -> Iterator[bytes]:
        for _ in range(8):
            yield b"z" * (LIMIT // 4)

    response = httpx.post(f"http://127.0.0.1:{server.port}/upload", content=pieces())
    assert response.status_code == 413
    assert app.requests == []


def test_what_does_not_parse_gets_400_and_the_connection_closes(served: Served) -> None:
    server, app = served
    answer = _raw(server.port, b"this is not http\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400 Bad Request")
    assert b"malformed HTTP request" in answer
    assert app.requests == []


def test_pipelined_requests_are_answered_in_order(served: Served) -> None:
    server, _ = served
    answer = _raw(server.port, b"GET /one HTTP/1.1\r\nHost: t\r\n\r\n"
                               b"GET /two HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    assert answer.count(b"HTTP/1.1 200 OK") == 2
    assert answer.index(b'"/one"') < answer.index(b'"/two"')


def test_head_answers_carry_the_length_but_no_body(served: Served) -> None:
    server, _ = served
    answer = _raw(server.port, b"HEAD /x HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-length: " in head and body == b""


def test_an_app_that_raises_gets_a_500_and_the_server_keeps_serving(served: Served) -> None:
    server, _ = served
    with httpx.Client(base_url=f"http://127.0.0.1:{server.port}") as client:
        assert client.get("/boom").status_code == 500
        assert client.get("/fine").status_code == 200


def test_stop_finishes_the_request_in_hand_and_refuses_new_connections() -> None:
    app = Recorder()
    server = HttpServer(app, host="127.0.0.1", port=0, max_body=LIMIT,
                        too_large=too_large).start()
    port = server.port
    app.release.clear()
    result: dict[str, httpx.Response] = {}
    caller = threading.Thread(
        target=lambda: result.setdefault("slow", httpx.get(f"http://127.0.0.1:{port}/slow",
                                                           timeout=10)))
    caller.start()
    deadline = time.monotonic() + 5
    while not app.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    idle = socket.create_connection(("127.0.0.1", port))  # connected, never sends
    stopper = threading.Thread(target=server.stop)
    stopper.start()
    time.sleep(0.3)
    assert stopper.is_alive()  # waiting for the request in hand
    app.release.set()
    stopper.join(10)
    caller.join(10)
    assert not stopper.is_alive()
    assert result["slow"].status_code == 200
    assert result["slow"].headers["connection"] == "close"
    assert idle.recv(1) == b""  # the idle connection was closed, not left hanging
    idle.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/after", timeout=2)


def test_a_port_in_use_is_an_error_at_start() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        server = HttpServer(Recorder(), host="127.0.0.1", port=taken.getsockname()[1],
                            max_body=LIMIT, too_large=too_large)
        with pytest.raises(OSError):
            server.start()
    finally:
        taken.close()


def test_access_lines_follow_the_template_format_and_stay_valid_json() -> None:
    shipped: list[tuple[str, Lines]] = []
    access = AccessLog('{"id":"$context.requestId","path":"$context.path",'
                       '"status":"$context.status","agent":"$context.identity.userAgent"}',
                       "/aws/apigateway/api", lambda group, lines: shipped.append((group, lines)))
    access.write({"requestId": "r1", "path": '/a"b\\c', "status": "200"})
    group, render = shipped[0]
    assert group == "/aws/apigateway/api"
    lines = render() if callable(render) else render  # rendered on the shipper's thread
    entry = json.loads(lines[0])
    # a value the gateway does not have is "-", as API Gateway writes it
    assert entry == {"id": "r1", "path": '/a"b\\c', "status": "200", "agent": "-"}
