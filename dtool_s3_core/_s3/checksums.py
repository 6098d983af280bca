"""MD5s as S3 and dtool use them: one streaming routine, Content-MD5, multipart ETags."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable
from functools import partial
from typing import BinaryIO

from .. import errors
from .._format.validate import MD5_RE

#: How much of a body is read, hashed and written at a time.
CHUNK = 1024 * 1024


def md5_of_chunks(
    chunks: Iterable[bytes], each: Callable[[bytes, int], None] | None = None
) -> tuple[str, int]:
    """Return (MD5 hex, size) of a body given in order, chunk by chunk.

    :param each: called with every chunk and the position it reaches, after it is hashed
    """
    md5 = hashlib.md5()
    size = 0
    for chunk in chunks:
        md5.update(chunk)
        size += len(chunk)
        if each is not None:
            each(chunk, size)
    return md5.hexdigest(), size


def md5_of_stream(stream: BinaryIO) -> tuple[str, int]:
    """Return (MD5 hex, size) of a stream read to its end, one chunk at a time."""
    return md5_of_chunks(iter(partial(stream.read, CHUNK), b""))


def size_differs(where: str, size: str, expected: int) -> errors.IntegrityError:
    """The error for an object whose size is not the manifest's; ``size`` as it is known."""
    return errors.IntegrityError(
        f"{where} has {size} bytes but the manifest says {expected}: "
        "the item was changed after the dataset was frozen"
    )


def content_md5(data: bytes) -> str:
    """The ``Content-MD5`` header of a body: its MD5, base64."""
    return b64(hashlib.md5(data).digest())


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def multipart_etag(part_etags: list[str]) -> str | None:
    """The ETag S3 gives an object completed from parts with these ETags (None: not MD5s)."""
    digests = bytearray()
    for quoted in part_etags:
        etag = quoted.strip('"').lower()
        if not MD5_RE.match(etag):
            return None
        digests += bytes.fromhex(etag)
    return f"{hashlib.md5(digests).hexdigest()}-{len(part_etags)}"
