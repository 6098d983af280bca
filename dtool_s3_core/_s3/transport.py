"""The body transport: one contract for moving item bodies, with a botocore and an awscrt side.

:class:`Bodies` is what transfers ask of a transport: store a body (PutObject), store a part
(UploadPart), and receive an object into a file while hashing it (GetObject). Both sides send the
same headers (``Content-MD5``, ``x-amz-meta-*``) and fail with the same one-line errors: botocore's
are translated in :meth:`.client.S3Client.call`, awscrt's in
:meth:`.crt_transport.CrtEngine.send`, so nothing above this seam knows which library moved a
byte. :func:`bodies` picks the side for one body.

Two promises hold on both sides: a body is cancelled only when nothing moves (awscrt cannot
show a single request's bytes until it ends, so a request it has not finished within the read
timeout moves to botocore, which sees every byte: :class:`CrtBodies`), and a download never
takes more than the size it was told to expect plus one byte, so a body that lies about its
size costs neither disk nor memory.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from typing import Any, BinaryIO, Protocol

from .._format.uri import object_url
from .cancel import Cancel
from .checksums import CHUNK, b64, md5_of_stream, size_differs
from .client import S3Client
from .crt_transport import CrtEngine, SlowLink
from .flow import HighWater
from .pace import PacedBody

_CONTENT_RANGE = re.compile(r"^bytes \d+-\d+/(\d+)$")


class Bodies(Protocol):
    """Moves item bodies for one bucket."""

    def put(
        self, key: str, body: bytes | BinaryIO, size: int, md5: bytes, meta: dict[str, str]
    ) -> None:
        """Store ``body`` (``size`` bytes, MD5 ``md5``) at ``key`` with user metadata ``meta``."""

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        """Store part ``number`` of a multipart upload; return its ETag."""

    def receive(
        self, key: str, out: BinaryIO, progress: HighWater, limit: int | None = None
    ) -> tuple[str, int]:
        """Write the object at ``key`` to ``out``; return (MD5 hex, size) of what was written.

        :param limit: the size the object should have: a larger one fails without being read
        :raises IntegrityError: if the object is larger than ``limit``
        """


class BotocoreBodies:
    """Bodies through botocore: streams a file in constant memory, any size, any server."""

    def __init__(self, client: S3Client) -> None:
        self._client = client

    def put(
        self, key: str, body: bytes | BinaryIO, size: int, md5: bytes, meta: dict[str, str]
    ) -> None:
        self._client.call(
            "put_object",
            key,
            Body=_Stoppable(_in_blocks(body), self._client.cancel),
            ContentLength=size,
            ContentMD5=b64(md5),
            Metadata=meta,
        )

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        md5 = b64(hashlib.md5(data).digest())
        response = self._client.call(
            "upload_part",
            key,
            UploadId=upload_id,
            PartNumber=number,
            Body=_in_blocks(data),
            ContentMD5=md5,
        )
        return str(response["ETag"])

    def receive(
        self, key: str, out: BinaryIO, progress: HighWater, limit: int | None = None
    ) -> tuple[str, int]:
        response = self._client.call("get_object", key)
        announced = response.get("ContentLength")
        where = object_url(self._client.bucket, key)
        if limit is not None and isinstance(announced, int) and announced > limit:
            response["Body"].close()
            raise size_differs(where, str(announced), limit)
        md5, size = hashlib.md5(), 0
        with paced(self._client, response["Body"], where) as body:
            while chunk := body.read(CHUNK if limit is None else min(CHUNK, limit + 1 - size)):
                self._client.cancel.check()
                md5.update(chunk)
                size += len(chunk)
                if limit is not None and size > limit:
                    # A body longer than it said it was: stop at the first byte too many.
                    body.close()
                    raise size_differs(where, f"more than {limit}", limit)
                out.write(chunk)
                progress.reached(size)
        return md5.hexdigest(), size


class CrtBodies:
    """Bodies through awscrt: about 0.5 ms of C per request instead of 3 ms of Python.

    awscrt holds a whole single-request body in memory, so :func:`bodies` gives it bodies that
    are in memory already or small. It reports none of a request's bytes before the request
    ends, so a request it has not finished within the read timeout may still be moving: it is
    cancelled and sent again through ``fallback``, which sees every byte (and the engine sends
    its bodies that way for a while, see :attr:`.crt_transport.CrtEngine.slow`).
    """

    def __init__(
        self, engine: CrtEngine, fallback: BotocoreBodies, cancel: Cancel | None = None
    ) -> None:
        self._engine = engine
        self._fallback = fallback
        self._cancel = cancel

    def put(
        self, key: str, body: bytes | BinaryIO, size: int, md5: bytes, meta: dict[str, str]
    ) -> None:
        if not isinstance(body, bytes):
            raise TypeError("the awscrt transport sends bodies held in memory only")
        headers = {"Content-MD5": b64(md5)}
        headers.update((f"x-amz-meta-{name}", value) for name, value in meta.items())
        try:
            self._engine.send(
                "PutObject", "PUT", key, headers=headers, body=body, cancel=self._cancel
            )
        except SlowLink:
            self._fallback.put(key, body, size, md5, meta)

    def upload_part(self, key: str, upload_id: str, number: int, data: bytes) -> str:
        try:
            headers = self._engine.send(
                "UploadPart",
                "PUT",
                key,
                headers={"Content-MD5": b64(hashlib.md5(data).digest())},
                query={"partNumber": str(number), "uploadId": upload_id},
                body=data,
                cancel=self._cancel,
            )
        except SlowLink:
            return self._fallback.upload_part(key, upload_id, number, data)
        return str(headers["etag"])

    def receive(
        self, key: str, out: BinaryIO, progress: HighWater, limit: int | None = None
    ) -> tuple[str, int]:
        try:
            return self._receive(key, out, progress, limit)
        except SlowLink:
            out.seek(0)
            out.truncate()
            return self._fallback.receive(key, out, progress, limit)

    def _receive(
        self, key: str, out: BinaryIO, progress: HighWater, limit: int | None
    ) -> tuple[str, int]:
        md5 = hashlib.md5()
        fd = out.fileno()
        received = 0
        hashed = 0

        def sink(chunk: memoryview, offset: int) -> None:
            nonlocal md5, received, hashed
            _write_at(fd, chunk, offset)
            if offset == 0 and hashed:
                # A retried request starts again and overwrites the file: hash its bytes, not a
                # mix of two answers (which a changing or hostile server could make differ).
                md5, hashed = hashlib.md5(), 0
            if offset == hashed:
                md5.update(chunk)
                hashed += len(chunk)
            # Never lowered: a shorter retry leaves a stale tail in the file, and the mismatch
            # below then sends the check to what is on disk.
            received = max(received, offset + len(chunk))
            progress.reached(offset + len(chunk))

        # awscrt holds a whole answer in memory before it hands over a byte: a range of one byte
        # more than expected keeps a body that lies about its size from costing more.
        ranged = {"Range": f"bytes=0-{limit}"} if limit else None
        answer = self._engine.send(
            "GetObject", "GET", key, headers=ranged, on_body=sink, cancel=self._cancel
        )
        total = _CONTENT_RANGE.match(answer.get("content-range", ""))
        if limit is not None and (received > limit or (total and int(total[1]) > limit)):
            where = object_url(self._engine.bucket, key)
            raise size_differs(where, total[1] if total else f"more than {limit}", limit)
        if hashed != received:
            # Out-of-order or uneven delivery: hash what is on disk rather than a partial digest.
            out.flush()
            with open(out.fileno(), "rb", closefd=False) as again:
                again.seek(0)
                return md5_of_stream(again)
        return md5.hexdigest(), received


def bodies(client: S3Client, stream: bool = False) -> Bodies:
    """The transport for one body: awscrt where the client has it, unless the body is streamed.

    A streamed body goes through botocore in constant memory, since awscrt holds a whole
    single-request body in memory: a file that is not read into memory first, and a download
    larger than one part (on this project's servers awscrt's parallel ranged GETs came out slower
    than one botocore stream, the in-order MD5 being the bottleneck, at several times the
    memory: docs/benchmarks.md). awscrt carries the rest, where its low cost per request counts.
    """
    engine = client.engine
    if engine is None or stream or engine.slow:
        return BotocoreBodies(client)
    return CrtBodies(engine, BotocoreBodies(client), client.cancel)


def paced(client: S3Client, body: Any, where: str) -> PacedBody:
    """A botocore response body of this client's bucket, read under its rate floor."""
    config = client.config
    setting = config.where_set("min_rate")
    return PacedBody(body, config.min_rate, config.read_timeout, where, setting)


def _in_blocks(body: bytes | BinaryIO) -> BinaryIO:
    """A body botocore sends block by block.

    Python gives one ``sendall`` the read timeout for all of its bytes, so a part held as one
    ``bytes`` object would fail on any link too slow to send it within that time; each block
    of a stream gets the whole timeout.
    """
    return io.BytesIO(body) if isinstance(body, bytes) else body


def _write_at(fd: int, chunk: memoryview, offset: int) -> None:
    """Write all of ``chunk`` at ``offset``: pwrite may write less (e.g. at a file size limit,
    where the next call raises EFBIG)."""
    view = memoryview(chunk)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


class _Stoppable:
    """A file botocore streams from, that stops the upload at the next read once cancelled.

    The request is sent through ``read``. Before that, botocore may hash the body for its
    signature with awscrt, which reads through ``readinto`` and would print an exception there
    (and fail with an unknown error): that pass is left alone.
    """

    def __init__(self, stream: BinaryIO, cancel: Cancel) -> None:
        self._stream = stream
        self._cancel = cancel

    def read(self, size: int = -1) -> bytes:
        self._cancel.check()
        return self._stream.read(size)

    def readinto(self, buffer: memoryview) -> int:
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._stream.seek(offset, whence)

    def tell(self) -> int:
        return self._stream.tell()
