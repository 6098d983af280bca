"""A tiny S3 endpoint on 127.0.0.1 that misbehaves on purpose, for the server-fault tests.

:class:`HostileS3` answers in one of these ways (``mode``):

* ``same-token``: every ListObjectsV2 page is truncated and names the same continuation token;
* ``no-token``: every ListObjectsV2 page is truncated and names no continuation token;
* ``fresh-token``: every page is truncated with a new token, so the listing never ends;
* ``skewed``: every request is refused with ``403 RequestTimeTooSkewed``, carrying
  ``ServerTime`` (two hours ahead of this machine) and ``RequestTime`` (the request's
  ``X-Amz-Date``), as AWS S3 does;
* ``slow``: everything is relayed, but the bodies of item objects (keys with ``/data/``) are
  read and sent at ``rate`` bytes a second, steadily: a slow link (a large rate) or a trickle
  (a tiny one).

Any other request is relayed to ``upstream`` (a moto server), so a real dataset can be read
through it; without an upstream it is answered ``404 NoSuchKey``. Only the standard library is
used; the port is picked by the OS.
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

MODES = ("same-token", "no-token", "fresh-token", "foreign-key", "skewed", "slow")
#: How often a ``slow`` server moves a piece of a body.
TICK = 0.05
#: How far ahead of this machine the ``skewed`` server says its clock is.
SKEW = timedelta(hours=2)
_HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "host"})


class HostileS3:
    """The server, as a context manager; ``requests`` counts what it was asked, by operation."""

    def __init__(self, mode: str, upstream: str | None = None, rate: float = 0.0) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: one of {', '.join(MODES)}")
        if mode == "slow" and not (rate > 0 and upstream):
            raise ValueError("a slow server needs a rate (bytes a second) and an upstream")
        self.mode = mode
        self.rate = rate
        self.upstream = urlsplit(upstream) if upstream else None
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.hostile = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint_url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def count(self, operation: str) -> None:
        with self._lock:
            self.requests[operation] += 1

    def __enter__(self) -> HostileS3:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def hostile(self) -> HostileS3:
        found: HostileS3 = self.server.hostile  # type: ignore[attr-defined]
        return found

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests look at what the client prints."""

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def setup(self) -> None:
        super().setup()
        if self.hostile.mode == "slow":
            # A small receive window, as on a real slow link: what the client has sent is then
            # mostly what this server has read, not bytes parked in loopback's large buffers.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = self._slowly_read(length) if self._slow else self.rfile.read(length)
        except OSError:
            return  # the client gave up on a slow body
        if len(body) < length:
            return
        target = urlsplit(self.path)
        query = parse_qs(target.query, keep_blank_values=True)
        mode = self.hostile.mode
        if mode == "skewed":
            self.hostile.count("skewed")
            self._skewed()
        elif (
            mode in ("same-token", "no-token", "fresh-token", "foreign-key")
            and self.command == "GET"
            and query.get("list-type") == ["2"]
        ):
            self.hostile.count("ListObjectsV2")
            self._endless_page(target.path.strip("/"), query)
        elif self.hostile.upstream is not None:
            self.hostile.count("relayed")
            self._relay(body)
        else:
            self.hostile.count("other")
            self._reply(404, _error("NoSuchKey", "The specified key does not exist."))

    @property
    def _slow(self) -> bool:
        return self.hostile.mode == "slow" and "/data/" in self.path

    def _piece(self) -> int:
        return max(1, int(self.hostile.rate * TICK))

    def _slowly_read(self, length: int) -> bytes:
        received = bytearray()
        while len(received) < length:
            piece = self.rfile.read(min(self._piece(), length - len(received)))
            if not piece:
                break
            received += piece
            time.sleep(TICK)
        return bytes(received)

    def _slowly_write(self, answer: bytes) -> None:
        view = memoryview(answer)
        try:
            while view:
                self.wfile.write(view[: self._piece()])
                self.wfile.flush()
                view = view[self._piece() :]
                time.sleep(TICK)
        except OSError:
            self.close_connection = True  # the client gave up on a slow body

    def _endless_page(self, bucket: str, query: dict[str, list[str]]) -> None:
        prefix = query.get("prefix", [""])[0]
        given = query.get("continuation-token", [""])[0]
        # Only fresh tokens count pages; a repeated token is answered as a second page.
        page = int(given[5:]) + 1 if given.startswith("page-") else 2 if given else 1
        token = {
            "same-token": "always-the-same",
            "no-token": "",
            "fresh-token": f"page-{page}",
            "foreign-key": "",
        }[self.hostile.mode]
        # One foreign key a page: listings skip it, and the pages are not empty. "foreign-key"
        # answers one last page with a key outside the prefix asked for.
        foreign = self.hostile.mode == "foreign-key"
        key = "elsewhere/x" if foreign else f"{prefix}hostile-{page}"
        truncated = "false" if foreign else "true"
        xml = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>"
            f"<KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>{truncated}</IsTruncated>"
            + (f"<ContinuationToken>{escape(given)}</ContinuationToken>" if given else "")
            + (f"<NextContinuationToken>{token}</NextContinuationToken>" if token else "")
            + f"<Contents><Key>{escape(key)}</Key>"
            "<LastModified>2026-01-01T00:00:00.000Z</LastModified>"
            "<ETag>&quot;d41d8cd98f00b204e9800998ecf8427e&quot;</ETag><Size>0</Size>"
            "<StorageClass>STANDARD</StorageClass></Contents></ListBucketResult>"
        )
        self._reply(200, xml.encode())

    def _skewed(self) -> None:
        server_time = datetime.now(UTC) + SKEW
        request_time = self.headers.get("X-Amz-Date", "")
        extra = (
            f"<RequestTime>{escape(request_time)}</RequestTime>"
            f"<ServerTime>{server_time.strftime('%Y-%m-%dT%H:%M:%SZ')}</ServerTime>"
            "<MaxAllowedSkewMilliseconds>900000</MaxAllowedSkewMilliseconds>"
        )
        message = "The difference between the request time and the current time is too large."
        self._reply(403, _error("RequestTimeTooSkewed", message, extra))

    def _relay(self, body: bytes) -> None:
        upstream = self.hostile.upstream
        assert upstream is not None and upstream.hostname and upstream.port
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Host"] = str(self.headers.get("Host", upstream.netloc))
            connection.request(self.command, self.path, body=body or None, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            self.send_response(response.status, response.reason)
            # A HEAD answer's Content-Length is the object's size: keep it.
            own_length = self.command != "HEAD"
            for name, value in response.getheaders():
                lower = name.lower()
                if lower not in _HOP_BY_HOP and not (own_length and lower == "content-length"):
                    self.send_header(name, value)
            if own_length:
                self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            if self.command == "HEAD":
                pass
            elif self._slow and self.command == "GET" and not urlsplit(self.path).query:
                self._slowly_write(answer)
            else:
                self.wfile.write(answer)
        finally:
            connection.close()

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def _error(code: str, message: str, extra: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>{extra}"
        "<RequestId>hostile-1</RequestId><HostId>hostile</HostId></Error>"
    ).encode()
