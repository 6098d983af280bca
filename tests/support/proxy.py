"""A small HTTP reverse proxy to put between an S3 client and a loopback S3 server.

:class:`S3Proxy` listens on 127.0.0.1 (port picked by the OS) and relays every request to one
upstream server (moto, SeaweedFS) without touching what SigV4 signs: the request target is kept
byte for byte and every end-to-end header, Host included, is forwarded as received. Bodies are
streamed both ways, so objects of hundreds of MB pass through in small, constant memory.

On the way it counts requests by HTTP method and by coarse S3 operation (:class:`ProxyStats`,
names from :func:`s3_operation`), and it can add a round-trip latency or inject faults (503
SlowDown, 500 InternalError, connection resets) so the tests and benchmarks can exercise the
client's retries and measure request counts. Only the standard library is used
(``http.server`` + ``http.client``).

Operations are named for path-style addressing (``/bucket/key``), which is what the loopback
servers are addressed with.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import random
import re
import select
import socket
import socketserver
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

logger = logging.getLogger(__name__)

FAULT_KINDS: tuple[str, ...] = ("slowdown", "reset", "500")
"""The faults a client sees at once, in place of an answer (what the fault-rate tests mix)."""

KNOWN_FAULTS: tuple[str, ...] = (*FAULT_KINDS, "truncate", "stall", "lose")
"""Every fault :class:`S3Proxy` knows how to inject."""

# Big enough that a 200 MiB body costs a few hundred system calls, small enough that memory does
# not grow with the object size.
_CHUNK = 256 * 1024
_MAX_LINE = 65536
_CHUNK_SIZE_RE = re.compile(rb"[0-9A-Fa-f]{1,16}")

# Headers that describe one connection rather than the message (RFC 9110 section 7.6.1). The
# proxy speaks its own connections on both sides, so these are never relayed. Transfer-Encoding
# and Trailer are not listed: request bodies are relayed with their chunked framing intact.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "upgrade",
    }
)
# Response bodies are re-framed (http.client decodes chunking), so their framing headers go too.
_RESPONSE_DROP = _HOP_BY_HOP | {"transfer-encoding", "trailer"}

_BUCKET_SUBRESOURCES = {
    "acl": "BucketAcl",
    "cors": "BucketCors",
    "encryption": "BucketEncryption",
    "lifecycle": "BucketLifecycleConfiguration",
    "location": "BucketLocation",
    "logging": "BucketLogging",
    "notification": "BucketNotificationConfiguration",
    "object-lock": "ObjectLockConfiguration",
    "ownershipControls": "BucketOwnershipControls",
    "policy": "BucketPolicy",
    "publicAccessBlock": "PublicAccessBlock",
    "replication": "BucketReplication",
    "requestPayment": "BucketRequestPayment",
    "accelerate": "BucketAccelerateConfiguration",
    "tagging": "BucketTagging",
    "versioning": "BucketVersioning",
    "website": "BucketWebsite",
}
_OBJECT_SUBRESOURCES = {
    "acl": "ObjectAcl",
    "attributes": "ObjectAttributes",
    "legal-hold": "ObjectLegalHold",
    "retention": "ObjectRetention",
    "tagging": "ObjectTagging",
    "torrent": "ObjectTorrent",
}
_VERBS = {"GET": "Get", "PUT": "Put", "DELETE": "Delete"}


def s3_operation(method: str, target: str, *, copy_source: bool = False) -> str:
    """Name the S3 operation of a path-style request from its method and query, coarsely.

    ``target`` is the request target (path and query); ``copy_source`` tells whether the request
    carries ``x-amz-copy-source`` (CopyObject and UploadPartCopy are PUTs like the others).
    Returns e.g. ``"ListObjectsV2"``, ``"UploadPart"``, ``"DeleteObjects"``, or ``"Unknown"``.
    """
    if target.startswith(("http://", "https://")):
        parts = urlsplit(target)
        path, query = parts.path, parts.query
    else:
        path, _, query = target.partition("?")
    bucket, _, key = path.lstrip("/").partition("/")
    params = dict(parse_qsl(query, keep_blank_values=True))
    method = method.upper()
    if not bucket:
        return "ListBuckets" if method == "GET" else "Unknown"
    if key:
        return _object_operation(method, params, copy_source)
    return _bucket_operation(method, params)


def _bucket_operation(method: str, params: dict[str, str]) -> str:
    if method == "HEAD":
        return "HeadBucket"
    if method == "POST":
        # The only bucket-level POST besides DeleteObjects is a browser form upload.
        return "DeleteObjects" if "delete" in params else "PostObject"
    if method == "GET":
        if params.get("list-type") == "2":
            return "ListObjectsV2"
        if "uploads" in params:
            return "ListMultipartUploads"
        if "versions" in params:
            return "ListObjectVersions"
    verb = _VERBS.get(method)
    if verb is None:
        return "Unknown"
    for name, noun in _BUCKET_SUBRESOURCES.items():
        if name in params:
            return verb + noun
    return {"GET": "ListObjects", "PUT": "CreateBucket", "DELETE": "DeleteBucket"}[method]


def _object_operation(method: str, params: dict[str, str], copy_source: bool) -> str:
    if method == "HEAD":
        return "HeadObject"
    if method == "POST":
        if "uploads" in params:
            return "CreateMultipartUpload"
        if "uploadId" in params:
            return "CompleteMultipartUpload"
        if "restore" in params:
            return "RestoreObject"
        if "select" in params:
            return "SelectObjectContent"
        return "PostObject"
    if method == "PUT" and "partNumber" in params:
        return "UploadPartCopy" if copy_source else "UploadPart"
    if "uploadId" in params:
        if method == "GET":
            return "ListParts"
        if method == "DELETE":
            return "AbortMultipartUpload"
    verb = _VERBS.get(method)
    if verb is None:
        return "Unknown"
    for name, noun in _OBJECT_SUBRESOURCES.items():
        if name in params:
            return verb + noun
    if method == "PUT" and copy_source:
        return "CopyObject"
    return verb + "Object"


@dataclass
class ProxyStats:
    """Request counters of one :class:`S3Proxy`; every update holds a lock (handlers are threads).

    Faulted requests count in ``total``, ``by_method`` and ``by_operation`` like the others, and
    also in ``faults_injected`` / ``faults_by_kind``.
    """

    total: int = 0
    by_method: Counter[str] = field(default_factory=Counter)
    by_operation: Counter[str] = field(default_factory=Counter)
    faults_injected: int = 0
    faults_by_kind: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def record(self, method: str, operation: str) -> None:
        """Count one request."""
        with self._lock:
            self.total += 1
            self.by_method[method] += 1
            self.by_operation[operation] += 1

    def record_fault(self, kind: str) -> None:
        """Count one injected fault."""
        with self._lock:
            self.faults_injected += 1
            self.faults_by_kind[kind] += 1

    def reset(self) -> None:
        """Zero every counter, e.g. between the phases of a test."""
        with self._lock:
            self.total = 0
            self.by_method.clear()
            self.by_operation.clear()
            self.faults_injected = 0
            self.faults_by_kind.clear()

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy of the counters as plain dicts (safe to keep, compare or dump)."""
        with self._lock:
            return {
                "total": self.total,
                "by_method": dict(self.by_method),
                "by_operation": dict(self.by_operation),
                "faults_injected": self.faults_injected,
                "faults_by_kind": dict(self.faults_by_kind),
            }


class S3Proxy:
    """A reverse proxy on ``http://127.0.0.1:<port>`` in front of ``upstream``, served by a thread.

    ``latency`` (seconds, added once per request before it is forwarded) and ``fault_rate`` (the
    probability, 0..1, that a request gets one of ``fault_kinds`` instead of being forwarded) are
    plain attributes: change them while the proxy runs to switch slowness or faults on and off.
    Fault kinds (see :data:`FAULT_KINDS`):

    * ``"slowdown"``: answer 503 SlowDown without forwarding;
    * ``"reset"``: close the client connection with a TCP reset instead of answering;
    * ``"500"``: answer 500 InternalError without forwarding;
    * ``"truncate"``: forward, relay the headers and half of the response body, then close;
    * ``"stall"``: read the request, answer nothing for ``stall_seconds``, then reset;
    * ``"lose"``: forward, so the server carries the request out, then reset instead of answering.

    The request body is read in full first in each case, as a server would. ``seed`` makes the
    fault draws reproducible. ``timeout`` bounds every upstream socket operation. Use it as a
    context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        upstream: str,
        latency: float = 0.0,
        fault_rate: float = 0.0,
        fault_kinds: tuple[str, ...] = ("slowdown", "reset"),
        seed: int | None = None,
        *,
        timeout: float = 300.0,
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme != "http" or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError(f"upstream must look like http://HOST:PORT, got {upstream!r}")
        unknown = sorted(set(fault_kinds) - set(KNOWN_FAULTS))
        if unknown or not fault_kinds:
            raise ValueError(f"fault_kinds must be a non-empty subset of {KNOWN_FAULTS}: {unknown}")
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be within 0..1, got {fault_rate}")
        self.upstream = upstream
        self.upstream_host: str = parts.hostname
        self.upstream_port: int = parts.port or 80
        self.latency = latency
        self.fault_rate = fault_rate
        self.fault_kinds = tuple(fault_kinds)
        # Only requests with these HTTP methods draw faults (None: every request).
        self.fault_methods: tuple[str, ...] | None = None
        # Only these S3 operations (names as in :func:`s3_operation`) draw faults (None: all).
        self.fault_operations: tuple[str, ...] | None = None
        self.stall_seconds = 30.0
        self.timeout = timeout
        self.stats = ProxyStats()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._closed = False
        self.closing = threading.Event()
        self._server = _ProxyServer(self)
        self.port: int = self._server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"s3-proxy-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def __enter__(self) -> S3Proxy:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"S3Proxy({self.url} -> {self.upstream})"

    def close(self) -> None:
        """Stop serving, cut open connections and wait for the handler threads; idempotent."""
        if self._closed:
            return
        self._closed = True
        self.closing.set()
        self._server.shutdown()
        # Handlers of idle keep-alive connections would otherwise wait for a next request forever,
        # and server_close() joins them.
        self._server.registry.abort_all()
        self._server.server_close()
        self._thread.join()

    def draw_fault(self, method: str, operation: str) -> str | None:
        """The fault to inject into the next ``method`` request, or None to forward it."""
        rate = self.fault_rate
        methods, operations = self.fault_methods, self.fault_operations
        if rate <= 0.0 or (methods is not None and method not in methods):
            return None
        if operations is not None and operation not in operations:
            return None
        # One lock around both draws keeps a seeded sequence reproducible per request order.
        with self._rng_lock:
            if self._rng.random() >= rate:
                return None
            return self._rng.choice(self.fault_kinds)


class _Abort(Exception):
    """The exchange cannot be completed: drop the client connection without a (further) answer."""


class _SocketRegistry:
    """The live sockets of a proxy, so that :meth:`S3Proxy.close` can cut them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._closed = False

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            if not self._closed:
                self._sockets.add(sock)
                return
        # A handler that connects upstream while the proxy closes must not outlive it.
        _shutdown(sock)

    def discard(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)

    def abort_all(self) -> None:
        with self._lock:
            self._closed = True
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    # shutdown() rather than close(): it wakes a thread blocked on the socket, and the file
    # descriptor stays owned (and closed) by that thread.
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _UpstreamConnection(http.client.HTTPConnection):
    """One keep-alive connection to the upstream server, owned by one handler thread."""

    def __init__(self, host: str, port: int, timeout: float, registry: _SocketRegistry) -> None:
        super().__init__(host, port, timeout=timeout)
        self._registry = registry

    def connect(self) -> None:
        super().connect()
        self._registry.add(self.sock)

    def close(self) -> None:
        sock = self.sock
        super().close()
        if sock is not None:
            self._registry.discard(sock)

    def _encode_request(self, request: str) -> bytes:
        # http.server decoded the request line as latin-1; encoding it back the same way restores
        # the client's bytes exactly, where http.client would insist on ASCII.
        return request.encode("latin-1")

    def drop_if_stale(self) -> None:
        """Close the connection if the server has closed its end while it was idle.

        An idle keep-alive connection has nothing to read; if it is readable the server sent EOF
        (or junk). Reconnecting now is cheap, whereas finding out after streaming a request body
        would leave nothing to replay.
        """
        sock = self.sock
        if sock is None:
            return
        try:
            readable, _, _ = select.select([sock], [], [], 0)
        except (OSError, ValueError):
            readable = [sock]
        if readable:
            self.close()


class _ProxyServer(ThreadingHTTPServer):
    """A threading HTTP server on 127.0.0.1 that knows its :class:`S3Proxy`."""

    daemon_threads = True
    # A benchmark opens many connections at once; the default backlog of 5 would drop SYNs and
    # cost the client a second per retransmission.
    request_queue_size = 128

    def __init__(self, proxy: S3Proxy) -> None:
        self.proxy = proxy
        self.registry = _SocketRegistry()
        # Never 0.0.0.0: the proxy relays unauthenticated traffic to a test server.
        super().__init__(("127.0.0.1", 0), _ProxyHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind() resolves a fully qualified host name, which can stall on DNS;
        # the name is only used for CGI variables.
        socketserver.TCPServer.server_bind(self)
        host, port = self.socket.getsockname()[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        # Registered here, in the accept loop, so that close() sees every connection accepted
        # before shutdown(), even one whose handler thread has not started yet.
        if isinstance(request, socket.socket):
            self.registry.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: socket.socket | tuple[bytes, socket.socket]) -> None:
        if isinstance(request, socket.socket):
            self.registry.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr; a dropped test connection is not news.
        logger.debug("S3 proxy: unexpected error for %s", client_address, exc_info=True)


class _ProxyHandler(BaseHTTPRequestHandler):
    """Serves one client connection (one thread): forwards its requests or injects faults."""

    server: _ProxyServer
    # HTTP/1.1 gives keep-alive towards the client, as a real S3 endpoint does.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; with Nagle's algorithm the second one would
    # wait for the client's delayed ACK (40 ms) on every keep-alive request.
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self._reset = False
        proxy = self.server.proxy
        self._upstream = _UpstreamConnection(
            proxy.upstream_host, proxy.upstream_port, proxy.timeout, self.server.registry
        )

    def finish(self) -> None:
        try:
            super().finish()
            if self._reset:
                # The socket really closes (and, lingering 0, resets) once its file objects are
                # closed, which super().finish() just did. Left to socketserver, it would get a
                # shutdown(SHUT_WR) first, i.e. a FIN before the RST.
                self.connection.close()
        finally:
            self._upstream.close()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("S3 proxy %s: " + format, self.address_string(), *args)

    def _handle(self) -> None:
        proxy = self.server.proxy
        # The target as received: self.path may have been normalised (leading "//" collapsed).
        target = self.requestline.split()[1]
        operation = s3_operation(
            self.command, target, copy_source="x-amz-copy-source" in self.headers
        )
        proxy.stats.record(self.command, operation)
        latency = proxy.latency
        if latency > 0:
            time.sleep(latency)
        fault = proxy.draw_fault(self.command, operation)
        try:
            framing = self._request_framing()
            if framing is None:
                self._reply_error(400, "BadRequest", "Unsupported request body framing.", True)
                return
            if fault is None:
                self._forward(target, framing)
                return
            proxy.stats.record_fault(fault)
            logger.debug("S3 proxy: injecting %s into %s %s", fault, self.command, target)
            if fault == "truncate":
                self._forward(target, framing, truncate=True)
            elif fault == "lose":
                self._lose_answer(target, framing)
            else:
                self._inject(fault, framing)
        except _Abort as exc:
            logger.debug("S3 proxy: dropping connection (%s %s): %s", self.command, target, exc)
            self.close_connection = True

    # http.server dispatches on do_<METHOD>; every method gets the same treatment.
    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_OPTIONS = do_PATCH = _handle

    def _request_framing(self) -> int | None:
        """The request body length, -1 for a chunked body, or None when it cannot be delimited."""
        encodings = self.headers.get_all("Transfer-Encoding")
        if encodings:
            # Chunked must be the final coding (RFC 9112 6.3); it then delimits the body,
            # whatever Content-Length says.
            last = ",".join(encodings).rsplit(",", 1)[-1].strip().lower()
            return -1 if last == "chunked" else None
        lengths = {value.strip() for value in self.headers.get_all("Content-Length") or ()}
        if not lengths:
            return 0
        if len(lengths) > 1 or not next(iter(lengths)).isdigit():
            return None
        return int(next(iter(lengths)))

    def _request_body(self, framing: int) -> Iterator[bytes]:
        """The raw request body in pieces, chunked framing included (relayed as received)."""
        try:
            if framing < 0:
                yield from self._chunked_body()
            else:
                yield from self._read_exactly(framing)
        except OSError as exc:
            raise _Abort(f"client failed while sending the body: {exc}") from exc

    def _read_exactly(self, size: int) -> Iterator[bytes]:
        while size > 0:
            data = self.rfile.read(min(_CHUNK, size))
            if not data:
                raise _Abort("client closed the connection in the middle of the body")
            size -= len(data)
            yield data

    def _read_line(self) -> bytes:
        line = self.rfile.readline(_MAX_LINE + 1)
        if len(line) > _MAX_LINE or not line.endswith(b"\n"):
            raise _Abort("truncated or overlong line in a chunked body")
        return line

    def _chunked_body(self) -> Iterator[bytes]:
        # Relaying the framing as-is (rather than decoding it) keeps aws-chunked payloads, their
        # chunk signatures and trailers exactly as the client signed them.
        while True:
            line = self._read_line()
            yield line
            size_text = line.split(b";", 1)[0].strip()
            if not _CHUNK_SIZE_RE.fullmatch(size_text):
                raise _Abort(f"malformed chunk size {size_text[:20]!r}")
            size = int(size_text, 16)
            if size == 0:
                break
            yield from self._read_exactly(size + 2)  # the data and its CRLF
        while True:  # trailer fields, up to the empty line
            line = self._read_line()
            yield line
            if line in (b"\r\n", b"\n"):
                return

    def _forward(self, target: str, framing: int, *, truncate: bool = False) -> None:
        try:
            response = self._exchange(target, framing)
        except _Abort:
            self._upstream.close()
            raise
        except (OSError, http.client.HTTPException) as exc:
            self._upstream.close()
            logger.debug("S3 proxy: upstream failed for %s %s: %r", self.command, target, exc)
            # Closing as well: the client may still be sending a body nobody will read.
            self._reply_error(502, "BadGateway", f"The upstream S3 server failed: {exc!r}", True)
            return
        try:
            self._relay_response(response, truncate)
        except _Abort:
            self._upstream.close()  # the rest of the body is still on that connection
            raise
        except (OSError, http.client.HTTPException) as exc:
            # Mid-body there is no way to tell the client; a short response plus a closed
            # connection is what it can detect.
            self._upstream.close()
            raise _Abort(f"relaying the response failed: {exc!r}") from exc
        finally:
            response.close()

    def _exchange(self, target: str, framing: int) -> http.client.HTTPResponse:
        """Send the request upstream, streaming its body, and return the upstream response."""
        upstream = self._upstream
        upstream.drop_if_stale()
        drop = _HOP_BY_HOP | _connection_tokens(self.headers.get_all("Connection"))
        headers = [
            (name, value) for name, value in self.headers.items() if name.lower() not in drop
        ]
        # Without a body nothing is lost by trying again on a fresh connection, which covers the
        # race between drop_if_stale() and the server closing an idle connection.
        attempts = 1 if framing else 2
        for attempt in range(1, attempts + 1):
            try:
                # skip_host: the client's own Host header is forwarded, since SigV4 signs it.
                upstream.putrequest(self.command, target, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    upstream.putheader(name, value)
                upstream.endheaders()
            except ConnectionError:
                upstream.close()
                if attempt == attempts:
                    raise
                continue
            try:
                for data in self._request_body(framing):
                    upstream.send(data)
            except ConnectionError:
                # The server may have answered early (e.g. an error) and stopped reading; that
                # answer is worth relaying. The client's unread body forces a close afterwards.
                self.close_connection = True
            try:
                return upstream.getresponse()
            except ConnectionError:
                upstream.close()
                if attempt == attempts or self.close_connection:
                    raise
        raise AssertionError("unreachable")

    def _relay_response(self, response: http.client.HTTPResponse, truncate: bool = False) -> None:
        status = response.status
        bodyless = self.command == "HEAD" or status < 200 or status in (204, 304)
        drop = _RESPONSE_DROP | _connection_tokens(response.msg.get_all("Connection"))
        # A chunked or close-delimited body is re-framed, so its Content-Length (if any) is void.
        delimited = bodyless or (not response.chunked and response.length is not None)
        if not delimited:
            drop |= {"content-length"}
        chunked = not delimited and self.request_version == "HTTP/1.1"
        if not delimited and not chunked:
            # An HTTP/1.0 client only understands a body that ends with the connection.
            self.close_connection = True
        expected = response.length if not bodyless else 0
        self.send_response_only(status, response.reason or None)
        for name, value in response.getheaders():
            if name.lower() not in drop:
                self.send_header(name, value)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if bodyless:
            response.read()  # marks the response complete, so the connection can be reused
            return
        self._relay_body(response, chunked, expected, truncate)

    def _relay_body(
        self,
        response: http.client.HTTPResponse,
        chunked: bool,
        expected: int | None,
        truncate: bool = False,
    ) -> None:
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        sent = 0
        # A truncated body ends halfway (a byte at least, so that some data arrives first).
        limit = max(1, (expected or 0) // 2) if truncate else None
        while True:
            if limit is not None and sent >= limit:
                self.wfile.flush()
                raise _Abort("truncating the response body (injected fault)")
            room = _CHUNK if limit is None else min(_CHUNK, limit - sent)
            count = response.readinto(view[:room])
            if not count:
                break
            if chunked:
                self.wfile.write(b"%x\r\n" % count + view[:count] + b"\r\n")
            else:
                self.wfile.write(view[:count])
            sent += count
        if expected is not None and sent != expected:
            # http.client reports a short Content-Length body as a plain end of data.
            raise http.client.IncompleteRead(b"", expected - sent)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def _lose_answer(self, target: str, framing: int) -> None:
        try:
            with contextlib.closing(self._exchange(target, framing)) as response:
                response.read()
        except _Abort:
            self._upstream.close()
            raise
        except (OSError, http.client.HTTPException) as exc:
            self._upstream.close()
            logger.debug("S3 proxy: upstream failed for %s %s: %r", self.command, target, exc)
        self._reset_client()

    def _inject(self, fault: str, framing: int) -> None:
        # Read the body first, as a server would before answering: the client then sees the
        # fault as a response (or a reset), not as a failure to send.
        for _ in self._request_body(framing):
            pass
        if fault == "reset":
            self._reset_client()
        elif fault == "stall":
            self.server.proxy.closing.wait(self.server.proxy.stall_seconds)
            self._reset_client()
        elif fault == "slowdown":
            self._reply_error(503, "SlowDown", "Please reduce your request rate.")
        else:
            self._reply_error(
                500, "InternalError", "We encountered an internal error. Please try again."
            )

    def _reset_client(self) -> None:
        self.close_connection = True
        self._reset = True
        with contextlib.suppress(OSError):
            # SO_LINGER with a zero timeout turns close() into a TCP RST: the client sees
            # "connection reset by peer" rather than a polite end of stream.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _reply_error(self, status: int, code: str, message: str, close: bool = False) -> None:
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{_xml_escape(message)}</Message></Error>"
        ).encode()
        if close:
            self.close_connection = True
        try:
            self.send_response_only(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Date", self.date_time_string())
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError as exc:
            raise _Abort(f"client went away before the {status} answer: {exc}") from exc


def _connection_tokens(values: Iterable[str] | None) -> frozenset[str]:
    """The header names a peer listed in ``Connection``: hop-by-hop for this message only."""
    return frozenset(
        token.strip().lower() for value in values or () for token in value.split(",")
    ) - {""}


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
