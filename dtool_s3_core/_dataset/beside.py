"""Objects beside datasets: a tool's own files under the dataset prefix, invisible to dtool."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .. import errors
from .._format import validate
from .._format.keys import REGISTRATION_PREFIX, UUID_RE, normalise_prefix
from .._format.uri import object_url, parse_uri
from .._s3.client import S3Client
from .._s3.flow import memory_budget
from .._s3.transfer import download, upload_stream
from ..config import S3Config, resolve_config


@dataclass(frozen=True)
class ObjectStat:
    """What a HEAD request says of an object."""

    size: int
    #: The object's ``Last-Modified``, in seconds since the epoch.
    modified: float


class ObjectBeside:
    """A plain S3 object under a bucket's dataset prefix that belongs to no dataset.

    For a tool's own bookkeeping next to the datasets it writes (the Snakemake plugin keeps
    Snakemake's workflow-source archives there). dtool reads only ``dtool-<uuid>`` registrations
    and the keys of the datasets they name, so such an object is invisible to dtool, never enters
    a manifest, and can be deleted at any time.

    :param base_uri: ``s3://<bucket>``
    :param path: its key below the dataset prefix: a clean relative path whose first component
                 is neither a UUID nor ``dtool-...`` (where datasets and registrations live)
    :param config: the bucket's settings (default: resolved from its name)
    :raises ConfigurationError: for such a path, or a malformed URI
    """

    def __init__(
        self,
        base_uri: str,
        path: str,
        config_path: str | None = None,
        config: S3Config | None = None,
    ) -> None:
        problem = _beside_problem(path)
        if problem is not None:
            raise errors.ConfigurationError(f"object path {validate.shown(path)} {problem}")
        self._client = S3Client(config or resolve_config(parse_uri(base_uri).bucket, config_path))
        self.key = normalise_prefix(self._client.config.dataset_prefix) + path

    def __repr__(self) -> str:
        return f"ObjectBeside('{self.uri}')"

    @property
    def uri(self) -> str:
        return object_url(self._client.bucket, self.key)

    def stat(self) -> ObjectStat | None:
        """Return its size and modification time, None if it does not exist (one HEAD)."""
        head = self._client.exists(self.key)
        if head is None:
            return None
        modified: datetime = head["LastModified"]
        return ObjectStat(size=int(head["ContentLength"]), modified=modified.timestamp())

    def upload(self, source: str | os.PathLike[str]) -> None:
        """Store a local file as the object (server-verified MD5; multipart when large)."""
        with open(source, "rb") as stream:
            upload_stream(
                self._client,
                self.key,
                stream,
                lambda md5: {},
                memory_budget(self._client.config),
            )

    def download(self, target: str | os.PathLike[str]) -> None:
        """Download the object to ``target``, which appears only once it is complete.

        :raises ObjectNotFound: if it does not exist
        """
        download(self._client, self.key, Path(target))

    def delete(self) -> None:
        """Delete the object (deleting a missing one is no error)."""
        self._client.delete_many([self.key])


def _beside_problem(path: str) -> str | None:
    problem = validate.relpath_problem(path)
    if problem is None:
        first = path.split("/", 1)[0]
        if UUID_RE.fullmatch(first) or first.startswith(REGISTRATION_PREFIX):
            return "starts where datasets live (a UUID or 'dtool-'): start it with a name of yours"
    return problem
