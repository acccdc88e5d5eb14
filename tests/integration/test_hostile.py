"""Hostile input against the real mayak binary.

Each case sends something a broken or malicious client would (oversized or malformed
HTTP, bad JSON, slow or abandoned connections, thousands of idle sockets) and checks
two things: the client gets a clear answer (the right status in OpenAI's error shape)
or a close, and the server keeps serving everyone else afterwards.

Raw sockets are used wherever a well-behaved client library would refuse to send the
bytes or would hide what the server did with the connection. Every socket has a
timeout, so no case can hang. The limits asserted here are those of
src/core/mk_limits.h.
"""
import json
import random
import resource
import select
import socket
import time

import pytest
import requests

from conftest import SLOW, openai_config, sse_events, wait_for

# Mirrors src/core/mk_limits.h.
MAX_HEADER_BYTES = 16 * 1024
MAX_HEADERS = 100
MAX_URL_BYTES = 8192
MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_JSON_DEPTH = 64
HEADER_TIMEOUT_S = 10.0  # MK_HEADER_TIMEOUT_MS; neither the config nor the CLI can lower it

IO_TIMEOUT = 5.0 * SLOW  # per socket operation


# ---- raw HTTP/1.1 client ------------------------------------------------------------


class Raw:
    """One TCP connection to mayak that sends exact bytes and reads responses back,
    keeping any bytes past the current response for the next read."""

    def __init__(self, port, timeout=IO_TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        """Reads more bytes into buf; False at EOF (a reset counts as EOF)."""
        if self.eof:
            return False
        try:
            d = self.sock.recv(65536)
        except ConnectionResetError:
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def _line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise EOFError(f"connection closed inside a response line (have {self.buf[:200]!r})")
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise EOFError(f"connection closed inside a body ({len(self.buf)} of {n} bytes)")
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_head(self):
        """Status line and headers of the next response: (status, {lowercased name: value})."""
        status_line = self._line()
        parts = status_line.split(b" ", 2)
        assert len(parts) >= 2 and parts[0] in (b"HTTP/1.1", b"HTTP/1.0"), f"bad status line {status_line!r}"
        headers = {}
        while True:
            line = self._line()
            if not line:
                break
            name, _, value = line.partition(b":")
            headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        return int(parts[1]), headers

    def read_response(self):
        """The next whole response: (status, headers, body bytes). Skips 1xx."""
        while True:
            status, headers = self.read_head()
            if status >= 200:
                break
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():  # trailers
                        pass
                    break
                body += self._exact(size)
                self._exact(2)
        else:
            body = self._exact(int(headers.get("content-length", "0")))
        return status, headers, body

    def closed_by_peer(self):
        """True once the server closes (EOF or reset) without sending more bytes;
        fails if it sends something else or keeps the connection open past the timeout."""
        try:
            while self._fill():
                pass
        except socket.timeout:
            return False
        return True

    def close(self):
        self.sock.close()


def exchange(port, data, wait_close=True):
    """Sends data on a new connection and reads one response; returns (status, headers,
    body, closed) where closed says the server closed the connection afterwards
    (checked only with wait_close: a kept-alive connection would wait out the timeout)."""
    c = Raw(port)
    try:
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before everything was written
        status, headers, body = c.read_response()
        closed = wait_close and not c.buf and c.closed_by_peer()
        return status, headers, body, closed
    finally:
        c.close()


def assert_openai_error(body, status_hint=""):
    """The body is OpenAI's error object with all four keys; returns the inner dict."""
    doc = json.loads(body)
    assert set(doc) == {"error"}, f"{status_hint}: {doc}"
    err = doc["error"]
    assert {"message", "type", "param", "code"} <= set(err), f"{status_hint}: {err}"
    assert isinstance(err["message"], str) and err["message"], err
    assert isinstance(err["type"], str) and err["type"], err
    return err


def request_line(path="/healthz", method="GET", extra=b"", version=b"HTTP/1.1"):
    return method.encode() + b" " + path.encode() + b" " + version + b"\r\nHost: 127.0.0.1\r\n" + extra


def chat_body(content="hello", **extra):
    body = {"model": "default", "messages": [{"role": "user", "content": content}]}
    body.update(extra)
    return json.dumps(body).encode()


def post_chat_raw(data, content_type=b"application/json"):
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: " + content_type +
            b"\r\nContent-Length: " + str(len(data)).encode() + b"\r\n\r\n" + data)


def assert_serving(m, what=""):
    """A normal request still works: /healthz and a chat completion through the fake."""
    r = requests.get(m.url + "/healthz", timeout=IO_TIMEOUT)
    assert r.status_code == 200, f"/healthz after {what}: {r.status_code} {r.text}"
    r = m.chat("are you still there?", timeout=10)
    assert r.status_code == 200, f"chat after {what}: {r.status_code} {r.text}"
    assert "are you still there?" in r.json()["choices"][0]["message"]["content"]
    assert m.proc.alive(), f"mayak died after {what}:\n{m.proc.output()[-3000:]}"


def metric(m, name):
    """Value of an unlabelled metric from /metrics (None when absent)."""
    for line in m.metrics().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


@pytest.fixture
def gw(fake, mayak_factory):
    """mayak with the openai provider on the fake, so a normal chat works end to end."""
    return mayak_factory(openai_config(fake.url))


# ---- HTTP limits ----------------------------------------------------------------------


def test_header_block_over_16k_is_431(gw):
    big = b"X-Big: " + b"a" * (MAX_HEADER_BYTES + 100) + b"\r\n\r\n"
    status, _, body, closed = exchange(gw.port, request_line(extra=big))
    assert status == 431
    assert assert_openai_error(body, "431")["code"] == "request_header_fields_too_large"
    assert closed, "the connection should close after a 431"
    # Under the limit the same shape of request is fine.
    ok = b"X-Big: " + b"a" * (MAX_HEADER_BYTES // 2) + b"\r\n\r\n"
    status, _, _, _ = exchange(gw.port, request_line(extra=ok), wait_close=False)
    assert status == 200
    assert_serving(gw, "an oversized header block")


def test_more_than_100_headers_is_431(gw):
    def headers(n):  # Host plus n-1 more
        return b"".join(b"X-H%d: v\r\n" % i for i in range(n - 1)) + b"\r\n"

    status, _, _, _ = exchange(gw.port, request_line(extra=headers(MAX_HEADERS)), wait_close=False)
    assert status == 200, "exactly 100 headers are allowed"
    status, _, body, closed = exchange(gw.port, request_line(extra=headers(MAX_HEADERS + 1)))
    assert status == 431
    err = assert_openai_error(body, "431")
    assert err["code"] == "request_header_fields_too_large" and "headers" in err["message"]
    assert closed
    # Thousands of tiny headers are cut off at the count, not buffered.
    status, _, _, closed = exchange(gw.port, request_line(extra=headers(3000)))
    assert status == 431 and closed
    assert_serving(gw, "too many headers")


def test_url_over_8k_is_414(gw):
    path = "/healthz?q=" + "a" * (MAX_URL_BYTES + 10)
    status, _, body, closed = exchange(gw.port, request_line(path=path, extra=b"\r\n"))
    assert status == 414
    assert assert_openai_error(body, "414")["code"] == "uri_too_long"
    assert closed
    assert_serving(gw, "an overlong URL")


def test_announced_body_over_8mb_is_413_before_upload(gw):
    """Content-Length one byte over the limit: the answer comes from the headers alone,
    so the client never has to send 8 MB."""
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + str(MAX_BODY_BYTES + 1).encode() + b"\r\n\r\n")
    c = Raw(gw.port)
    try:
        c.send(head + b'{"model":"default",')  # a little of the body, then nothing more
        status, _, body = c.read_response()
        assert status == 413
        assert assert_openai_error(body, "413")["code"] == "request_too_large"
        assert c.closed_by_peer(), "the connection should close after a 413"
    finally:
        c.close()
    # An absurd length is also a 413 (or a 400 for a length that does not parse), never a hang.
    status, _, body, closed = exchange(gw.port, head.replace(str(MAX_BODY_BYTES + 1).encode(), b"99999999999999"))
    assert status in (400, 413) and closed
    assert_openai_error(body)
    assert_serving(gw, "an oversized Content-Length")


def test_chunked_body_over_8mb_is_413(gw):
    """A chunked upload has no length up front: the server must count and stop at the
    limit. We send 256 KB chunks and stop as soon as an answer is readable."""
    c = Raw(gw.port)
    sent = 0
    piece = b"a" * (256 * 1024)
    frame = b"%x\r\n" % len(piece) + piece + b"\r\n"
    poller = select.poll()
    poller.register(c.sock, select.POLLIN)
    try:
        c.send(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n")
        answered = False
        while sent <= MAX_BODY_BYTES + 4 * len(piece):
            if poller.poll(0):  # an answer (or a close) is waiting: stop uploading
                answered = True
                break
            try:
                c.send(frame)
            except (BrokenPipeError, ConnectionResetError):
                answered = True
                break
            sent += len(piece)
        if not answered:
            answered = bool(poller.poll(int(IO_TIMEOUT * 1000)))
        assert answered, f"no answer after sending {sent} body bytes (limit {MAX_BODY_BYTES})"
        assert sent >= MAX_BODY_BYTES - len(piece), f"answered after only {sent} bytes"
        status, _, body = c.read_response()
        assert status == 413, body
        assert assert_openai_error(body, "413")["code"] == "request_too_large"
        assert c.closed_by_peer()
    finally:
        c.close()
    assert_serving(gw, "a chunked body over the limit")


@pytest.mark.parametrize("name,raw", [
    ("two different Content-Lengths",
     b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n{}   "),
    ("Content-Length with Transfer-Encoding (smuggling)",
     b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("negative Content-Length", b"Content-Length: -1\r\n\r\n"),
    ("bad chunk size", b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"),
    ("unsupported Transfer-Encoding", b"Transfer-Encoding: gzip\r\n\r\n"),
    ("NUL in a header value", b"X-A: a\x00b\r\nContent-Length: 2\r\n\r\n{}"),
])
def test_malformed_framing_is_400_and_close(gw, name, raw):
    status, _, body, closed = exchange(gw.port, b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n" + raw)
    assert status == 400, f"{name}: {status} {body!r}"
    assert_openai_error(body, name)
    assert closed, f"{name}: the connection must close (framing can no longer be trusted)"
    assert_serving(gw, name)


# ---- JSON bodies ------------------------------------------------------------------------


BAD_JSON = [
    ("invalid JSON", b"{not json"),
    ("not an object: array", b'[{"model":"default"}]'),
    ("not an object: string", b'"hello"'),
    ("not an object: number", b"42"),
    ("not an object: null", b"null"),
    ("truncated", b'{"model":"default","messages":[{"role":"user","content":"hi'),
    ("truncated after a key", b'{"model":'),
    ("trailing garbage", b'{"model":"default","messages":[{"role":"user","content":"hi"}]} extra'),
    ("two objects", b'{"model":"default"}{"model":"default"}'),
    ("empty body", b""),
    ("only whitespace", b"  \r\n "),
]


@pytest.mark.parametrize("name,data", BAD_JSON, ids=[n for n, _ in BAD_JSON])
def test_bad_json_is_400_openai_error(gw, name, data):
    with requests.Session() as s:
        r = s.post(gw.url + "/v1/chat/completions", data=data,
                   headers={"Content-Type": "application/json"}, timeout=IO_TIMEOUT)
        assert r.status_code == 400, f"{name}: {r.status_code} {r.text}"
        err = assert_openai_error(r.content, name)
        assert err["type"] == "invalid_request_error", err
        # A bad body is the client's mistake, not the connection's: keep-alive survives it.
        r = s.get(gw.url + "/healthz", timeout=IO_TIMEOUT)
        assert r.status_code == 200
    assert_serving(gw, name)


def nested(depth):
    """A chat body whose extra field nests arrays so the whole document is `depth` deep."""
    inner = "[" * (depth - 1) + "]" * (depth - 1)  # the body object itself is one level
    return ('{"model":"default","messages":[{"role":"user","content":"deep"}],"x":' + inner + "}").encode()


def test_nesting_deeper_than_64_is_400(gw):
    for depth in (MAX_JSON_DEPTH + 1, 1000, 100000):
        r = requests.post(gw.url + "/v1/chat/completions", data=nested(depth), timeout=IO_TIMEOUT)
        assert r.status_code == 400, f"depth {depth}: {r.status_code} {r.text[:300]}"
        err = assert_openai_error(r.content, f"depth {depth}")
        assert "nest" in err["message"].lower(), err
    # Objects nest too.
    deep_obj = ('{"a":' * 200 + "1" + "}" * 200).encode()
    r = requests.post(gw.url + "/v1/chat/completions", data=deep_obj, timeout=IO_TIMEOUT)
    assert r.status_code == 400 and "nest" in r.json()["error"]["message"].lower(), r.text
    # Shallower than the limit parses: whatever the answer is, it is not a nesting error.
    r = requests.post(gw.url + "/v1/chat/completions", data=nested(MAX_JSON_DEPTH - 8), timeout=IO_TIMEOUT)
    assert r.status_code == 200 or "nest" not in r.json()["error"]["message"].lower(), r.text
    assert_serving(gw, "deep nesting")


BAD_UTF8 = [
    ("inside a string: lone 0xff", b'"hi \xff there"'),
    ("inside a string: overlong slash", b'"\xc0\xaf"'),
    ("inside a string: UTF-16 surrogate", b'"\xed\xa0\x80"'),
    ("inside a string: above U+10FFFF", b'"\xf4\x90\x80\x80"'),
    ("inside a string: cut multibyte", b'"\xd0"'),
    ("inside a string: stray continuation", b'"\x80\x80"'),
]


@pytest.mark.parametrize("name,content", BAD_UTF8, ids=[n for n, _ in BAD_UTF8])
def test_invalid_utf8_in_string_is_400(gw, name, content):
    data = b'{"model":"default","messages":[{"role":"user","content":' + content + b"}]}"
    r = requests.post(gw.url + "/v1/chat/completions", data=data, timeout=IO_TIMEOUT)
    assert r.status_code == 400, f"{name}: {r.status_code} {r.text}"
    assert assert_openai_error(r.content, name)["code"] == "invalid_utf8"
    assert_serving(gw, name)


def test_invalid_utf8_outside_strings_is_400(gw):
    for data in (b'{"model":"default",\xff"messages":[]}',
                 b'\xef\xbb\xbf\xff{"model":"default","messages":[]}',
                 b'{"model":"default","messages":[]}\xc3'):
        r = requests.post(gw.url + "/v1/chat/completions", data=data, timeout=IO_TIMEOUT)
        assert r.status_code == 400, f"{data!r}: {r.status_code} {r.text}"
        assert assert_openai_error(r.content, repr(data))["code"] == "invalid_utf8"
    # Valid multibyte text is of course fine.
    r = gw.chat("Привет, мир — ☃ 🚀")
    assert r.status_code == 200 and "Привет, мир" in r.json()["choices"][0]["message"]["content"]
    assert_serving(gw, "invalid UTF-8 outside strings")


# ---- slow and abandoned clients ---------------------------------------------------------


def test_slowloris_is_closed_within_header_timeout(gw):
    """SLOW TEST (~11 s): MK_HEADER_TIMEOUT_MS is 10 s and neither the config nor the CLI
    lowers it (src/api/app.c passes no header_timeout_ms). Several clients trickle a
    header block one line at a time and one connects and says nothing; all are
    dropped once the header deadline passes, while other clients are served."""
    slow = []
    try:
        for i in range(8):
            c = Raw(gw.port)
            c.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            slow.append(c)
        silent = Raw(gw.port)
        start = time.monotonic()
        limit = start + HEADER_TIMEOUT_S + 10 * SLOW  # a test bound, not a timing claim
        served = 0
        trickled = 0
        while time.monotonic() < limit and not all(c.eof for c in slow):
            for i, c in enumerate(slow):
                if c.eof:
                    continue
                try:
                    c.send(b"X-Trickle-%d: %d\r\n" % (trickled, i))
                except (BrokenPipeError, ConnectionResetError):
                    c.eof = True
                    continue
                c.sock.settimeout(0.0)
                try:
                    c._fill()
                except (BlockingIOError, InterruptedError):
                    pass
                c.sock.settimeout(IO_TIMEOUT)
            trickled += 1
            # Everyone else is served meanwhile.
            r = requests.get(gw.url + "/healthz", timeout=IO_TIMEOUT)
            assert r.status_code == 200
            served += 1
            time.sleep(0.5)
        for c in slow:
            if not c.eof:
                c.sock.settimeout(max(0.1, limit - time.monotonic()))
                assert c.closed_by_peer(), "a slowloris connection was still open after the header timeout"
            # The server says why before closing (a 408), or just closes.
            if c.buf:
                assert c.buf.startswith(b"HTTP/1.1 408"), c.buf[:200]
                status, _, body = c.read_response()
                assert assert_openai_error(body)["code"] == "request_timeout"
        assert trickled >= 3, "the server closed trickling clients too early to be a header timeout"
        assert served >= 3
        silent.sock.settimeout(max(0.1, limit - time.monotonic()))
        assert silent.closed_by_peer(), "a connection that never sent a byte stayed open"
        assert silent.buf == b"", f"a silent connection is closed without a response: {silent.buf[:200]!r}"
    finally:
        for c in slow:
            c.close()
    assert_serving(gw, "slowloris")


def test_pipelined_healthz_answered_in_order(gw):
    c = Raw(gw.port)
    try:
        c.send(request_line(extra=b"\r\n") * 3)
        ids = []
        for _ in range(3):
            status, headers, body = c.read_response()
            assert status == 200 and json.loads(body)["status"] == "ok"
            ids.append(headers["x-request-id"])
        assert len(set(ids)) == 3, "three separate requests"
        assert c.buf == b""
        # Distinguishable answers come back in the order asked, even when the first
        # waits on the upstream (the fake delays it) and the later ones are instant.
        slow_chat = chat_body("first [[fake latency_ms=300]]")
        c.send(post_chat_raw(slow_chat) + request_line("/v1/nope", extra=b"\r\n") +
               request_line("/v1/models", extra=b"\r\n") + request_line(extra=b"\r\n"))
        status, _, body = c.read_response()
        assert status == 200 and "first" in json.loads(body)["choices"][0]["message"]["content"]
        status, _, body = c.read_response()
        assert status == 404 and "error" in json.loads(body)
        status, _, body = c.read_response()
        assert status == 200 and json.loads(body)["object"] == "list"
        status, _, body = c.read_response()
        assert status == 200 and json.loads(body)["status"] == "ok"
        # The connection is still good for one more.
        c.send(request_line(extra=b"\r\n"))
        assert c.read_response()[0] == 200
    finally:
        c.close()
    assert_serving(gw, "pipelining")


def test_pipelined_garbage_after_valid_request_is_400_and_close(gw):
    c = Raw(gw.port)
    try:
        c.send(request_line(extra=b"\r\n") + b"\x16\x03\x01GARBAGE \x00\x01\x02 NOT HTTP\r\n\r\n" +
               request_line(extra=b"\r\n"))
        status, _, body = c.read_response()
        assert status == 200 and json.loads(body)["status"] == "ok"
        status, headers, body = c.read_response()
        assert status == 400
        assert_openai_error(body, "garbage")
        assert headers.get("connection", "").lower() == "close"
        # The valid request after the garbage is never answered: the stream is not trusted.
        assert c.buf == b"" and c.closed_by_peer()
    finally:
        c.close()
    assert_serving(gw, "pipelined garbage")


GARBAGE = [
    ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x12\x04\x00\x00\x00\x00\x00" + b"\x00" * 18),
    ("TLS ClientHello", bytes.fromhex("16030100a5010000a10303") + bytes(range(32)) + b"\x00" * 80),
    ("random bytes", bytes(random.Random(20240501).randrange(256) for _ in range(4096))),
    ("random printable", bytes(random.Random(7).randrange(32, 127) for _ in range(2000)) + b"\r\n\r\n"),
    ("HTTP/0.9", b"GET /healthz\r\n\r\n"),
    ("HTTP/3.0", b"GET /healthz HTTP/3.0\r\nHost: x\r\n\r\n"),
    ("bare LF flood", b"\n" * 20000),
]


@pytest.mark.parametrize("name,data", GARBAGE, ids=[n for n, _ in GARBAGE])
def test_binary_garbage_and_foreign_protocols_are_refused(gw, name, data):
    c = Raw(gw.port)
    try:
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, _, body = c.read_response()
        # 400 for what is not HTTP, 505 for another HTTP version; 431 would be fair
        # for a flood that never ends its request line.
        assert status in (400, 505, 431), f"{name}: {status} {body!r}"
        assert_openai_error(body, name)
        assert c.buf == b"" and c.closed_by_peer(), f"{name}: the connection must close"
    finally:
        c.close()
    assert_serving(gw, name)


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft == resource.RLIM_INFINITY or soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard


def test_ten_thousand_idle_connections(fake, mayak_factory):
    """10,000 idle connections fit (MK_MAX_CONNECTIONS is 65536) and a normal request
    is still served. The fd limit is raised before mayak starts so it inherits it.
    Idle connections are closed by mayak after MK_HEADER_TIMEOUT_MS (10 s), so the
    checks run right after opening them."""
    want = 10000
    soft, hard = raise_nofile(2 * want + 512)
    count = min(want, soft - 256)
    note = (f"opened {count} of {want} connections: RLIMIT_NOFILE hard limit is {hard}"
            if count < want else f"{count} connections")
    m = mayak_factory(openai_config(fake.url))
    socks = []
    try:
        for i in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(IO_TIMEOUT)
            s.connect(("127.0.0.1", m.port))
            socks.append(s)
        # Open for real: the server has accepted them all (not just the kernel backlog).
        wait_for(lambda: (metric(m, "mayak_http_connections") or 0) >= count, timeout=20,
                 what=f"mayak_http_connections >= {count} ({note})")
        r = m.chat("still serving with many idle sockets")
        assert r.status_code == 200, f"{note}: {r.status_code} {r.text}"
        seen = metric(m, "mayak_http_connections")
        assert seen is not None and seen >= count, f"{note}: mayak_http_connections = {seen}"
        # And an idle one can still talk.
        socks[0].sendall(request_line(extra=b"\r\n"))
        assert socks[0].recv(64).startswith(b"HTTP/1.1 200"), note
    finally:
        for s in socks:
            s.close()
    wait_for(lambda: metric(m, "mayak_http_connections") <= 5, timeout=20,
             what=f"the connection count to drop after closing ({note})")
    assert_serving(m, note)


def test_client_disconnect_mid_stream_cancels_upstream(fake, mayak_factory):
    """A streaming client reads two events and vanishes. The upstream stream is
    practically endless (100000 chunks, 50 ms apart), so it can only end at the fake
    because mayak cancelled it; mayak's stream gauge returns to 0."""
    m = mayak_factory(openai_config(fake.url))
    # The fake counts the /_fake/stats request that asks, so compare with a baseline.
    idle = fake.stats()["inflight"]
    c = Raw(m.port)
    try:
        body = chat_body("talk forever [[fake chunks=100000 interval_ms=50]]", stream=True)
        c.send(post_chat_raw(body))
        status, headers = c.read_head()
        assert status == 200 and headers["content-type"].startswith("text/event-stream")
        while c.buf.count(b"data: ") < 2:
            assert c._fill(), "the stream ended before two events"
        wait_for(lambda: fake.stats()["inflight"] == idle + 1, timeout=5, what="the upstream stream to be in flight")
        assert metric(m, "mayak_streams_in_flight") == 1
    finally:
        c.sock.close()
    wait_for(lambda: fake.stats()["inflight"] == idle, timeout=10,
             what="the fake's upstream request to end (mayak cancels it when the client leaves)")
    wait_for(lambda: metric(m, "mayak_streams_in_flight") == 0, timeout=10,
             what="mayak_streams_in_flight back to 0")
    assert_serving(m, "a client disconnect mid-stream")
    # A stream that is read to the end still works normally afterwards.
    r = m.chat("count [[fake chunks=3]]", stream=True)
    assert sse_events(r)[-1] == "[DONE]"
