"""A small Python API over dtoolcore and the S3 broker, shared by the integrations and scripts.

Every function that reaches a bucket takes ``config_path`` (the dtool JSON config file) and
honours :func:`dtool_s3_core.config.override`, so callers pass settings without touching
``os.environ``. The integrations use this module (through ``dtool_s3_core``) and nothing below it.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterable, Mapping
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import dtoolcore

from . import errors
from ._dataset import registry
from ._dataset.dataset import S3Dataset
from ._dataset.publish import http_enable
from ._format import validate
from ._format.keys import REGISTRATION_PREFIX, UUID_RE, identifier, normalise_prefix
from ._format.uri import parse_uri
from ._ops.results import CopyResult, Progress, copy_result
from ._ops.sources import LocalSource, S3Source, Source
from ._ops.to_disk import copy_to_disk, is_disk_base
from ._ops.to_s3 import copy_to_s3
from ._ops.verify import verify_local, verify_s3
from ._s3.client import S3Client
from ._s3.flow import memory_budget
from ._s3.transfer import download, upload_stream
from .config import S3Config, override, resolve_config, settings_of


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset of a listing (small enough for XCom)."""

    uri: str
    uuid: str
    name: str
    frozen: bool
    created_at: float | None
    frozen_at: float | None
    creator_username: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Namespace of the UUIDs :func:`find_or_create_dataset` gives new datasets. Fixed forever:
#: with another value, no dataset made so far would be found by its name again.
NAMESPACE = uuid.UUID("0c8f3b96-159c-4e48-9033-f76811e36434")


def deterministic_uuid(bucket: str, prefix: str, name: str) -> str:
    """Return the UUID of the dataset ``name`` created by :func:`find_or_create_dataset` in
    ``bucket`` with the dataset prefix ``prefix`` (normalised: empty, or ending in '/')."""
    return str(uuid.uuid5(NAMESPACE, f"s3://{bucket}/{prefix}{name}"))


def bucket_of(uri: str) -> str:
    """Return the bucket of an ``s3://<bucket>[/...]`` URI.

    :raises ConfigurationError: if it is not an S3 URI or names no valid bucket
    """
    return parse_uri(uri).bucket


def is_dataset_uuid(text: str) -> bool:
    """Return whether ``text`` is a dataset UUID as dtool writes it (lowercase, with hyphens)."""
    return UUID_RE.fullmatch(text) is not None


def check_dataset_name(name: str) -> None:
    """Refuse a dataset name that dtool would not accept.

    :raises ConfigurationError: unless ``name`` is 1-80 letters, digits, '-', '_' and '.'
    """
    if validate.name_problem(name) is not None:
        raise errors.ConfigurationError(
            f"invalid dataset name {name!r}: use letters, digits, '-', '_' and '.' (max 80)"
        )


def item_identifier(relpath: str) -> str:
    """Return the identifier dtool gives the item ``relpath`` (the SHA-1 of its UTF-8 bytes)."""
    return identifier(relpath)


def readme_text(readme: str | Mapping[str, Any] | None) -> str:
    """Return README content: a string as is, a mapping as YAML (JSON flow values are YAML)."""
    if readme is None:
        return ""
    if isinstance(readme, str):
        return readme
    lines = ["---"]
    for key, value in readme.items():
        lines.append(f"{json.dumps(str(key))}: {json.dumps(value, default=str)}")
    return "\n".join(lines) + "\n"


def iter_files(source_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """Return {relpath: path} for every file below ``source_dir`` (symlinks followed)."""
    root = Path(source_dir)
    if not root.is_dir():
        raise errors.ObjectNotFound(f"source directory not found: {root}")
    return {
        path.relative_to(root).as_posix(): path
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def create_dataset(
    name: str,
    base_uri: str,
    source_dir: str | os.PathLike[str] | None = None,
    files: Mapping[str, str | os.PathLike[str]] | None = None,
    readme: str | Mapping[str, Any] | None = None,
    freeze: bool = True,
    creator_username: str | None = None,
    config_path: str | None = None,
) -> str:
    """Create a dataset from a directory and/or a {relpath: path} mapping; return its URI.

    :param freeze: freeze it once every item is stored (else it stays a proto dataset)
    :raises ConfigurationError: for an invalid dataset name or relpath
    """
    check_dataset_name(name)
    items: dict[str, Path] = iter_files(source_dir) if source_dir is not None else {}
    items.update({relpath: Path(path) for relpath, path in (files or {}).items()})
    # Checked before anything is created, so a typo leaves no proto dataset behind.
    for relpath, path in items.items():
        validate.check_relpath(relpath)
        if not path.is_file():
            raise errors.ObjectNotFound(f"local file not found: {path}")
    admin = dtoolcore.generate_admin_metadata(name, creator_username)
    if not base_uri.startswith("s3://"):
        proto = dtoolcore.generate_proto_dataset(admin, base_uri, config_path)
        proto.create()
        proto.put_readme(readme_text(readme))
        for relpath, path in items.items():
            proto.put_item(str(path), relpath)
        if freeze:
            proto.freeze()
        return str(proto.uri)
    dataset = S3Dataset(resolve_config(parse_uri(base_uri).bucket, config_path), admin["uuid"])
    dataset.create_proto(admin)
    dataset.put_readme(readme_text(readme))
    dataset.upload_many(items)
    if freeze:
        dataset.freeze()
    return dataset.uri


def open_frozen(uri: str, config_path: str | None = None) -> dtoolcore.DataSet:
    """Open a frozen dataset.

    :raises DatasetStateError: if there is none at ``uri`` (missing, or still a proto dataset)
    """
    try:
        return dtoolcore.DataSet.from_uri(uri, config_path)
    except dtoolcore.DtoolCoreTypeError as exc:
        raise errors.DatasetStateError(
            f"no frozen dataset at {uri}: check the URI ('dtool ls <base URI>' lists them), "
            "or freeze the proto dataset first"
        ) from exc


def open_s3(uri: str, config_path: str | None = None, config: S3Config | None = None) -> S3Dataset:
    """Return the S3 dataset at ``uri`` with ``config`` (default: the resolved configuration)."""
    parsed = parse_uri(uri)
    return S3Dataset(config or resolve_config(parsed.bucket, config_path), parsed.uuid)


def freeze_dataset(uri: str, config_path: str | None = None) -> str:
    """Freeze a proto dataset (a frozen one is left as it is); return its URI."""
    if uri.startswith("s3://"):
        open_s3(uri, config_path).freeze()
        return uri
    try:
        proto = dtoolcore.ProtoDataSet.from_uri(uri, config_path)
    except dtoolcore.DtoolCoreTypeError:
        return uri
    proto.freeze()
    return uri


def open_source(uri: str, config_path: str | None = None, config: S3Config | None = None) -> Source:
    """Return a frozen dataset (S3 or local) as a checked copy source."""
    if uri.startswith("s3://"):
        return S3Source(open_s3(uri, config_path, config))
    return LocalSource(uri, config_path)


def copy(
    src_uri: str,
    dest_base_uri: str,
    resume: bool = False,
    config_path: str | None = None,
    source_config: S3Config | None = None,
    dest_config: S3Config | None = None,
    progress: Progress | None = None,
) -> CopyResult:
    """Copy a frozen dataset (local or S3) to a base URI, keeping its UUID; say what moved.

    From S3 to a local directory each item downloads straight into the new dataset (nothing goes
    through the download cache).

    :param source_config: settings of the source bucket (default: resolved from its name)
    :param dest_config: settings of the destination bucket (default: resolved from its name)
    :param resume: finish an interrupted copy, keeping items already present and intact
    :param progress: told the bytes and items as they are copied (see :class:`Progress`)
    """
    source = open_source(src_uri, config_path, source_config)
    admin = source.admin
    if dest_base_uri.startswith("s3://"):
        config = dest_config or resolve_config(parse_uri(dest_base_uri).bucket, config_path)
        return copy_to_s3(source, S3Dataset(config, str(admin["uuid"])), resume, progress)
    if isinstance(source, S3Source) and is_disk_base(dest_base_uri):
        return copy_to_disk(source, dest_base_uri, resume, config_path, progress)
    scope = (
        override(source_config.bucket, **settings_of(source_config))
        if source_config is not None
        else nullcontext()
    )
    with scope:
        if resume:
            uri = dtoolcore.copy_resume(src_uri, dest_base_uri, config_path)
        else:
            uri = dtoolcore.copy(src_uri, dest_base_uri, config_path)
    entries = source.entries()
    return copy_result(str(uri), admin, entries, list(entries.values()), resumed=resume)


def copy_dataset(
    src_uri: str, dest_base_uri: str, resume: bool = False, config_path: str | None = None
) -> str:
    """Copy a frozen dataset (local or S3) to a base URI; return the new URI.

    Between two buckets reached with one endpoint and one set of credentials, the server copies
    the items itself (no bytes pass through this process). Every item copied is checked against
    the source manifest.

    :param resume: finish an interrupted copy, skipping items already present and intact
    """
    return copy(src_uri, dest_base_uri, resume, config_path).uri


def publish_dataset(uri: str, expiry: int | None = None, config_path: str | None = None) -> str:
    """Publish a frozen S3 dataset over HTTP; return the access URL.

    :param expiry: seconds the presigned URLs stay valid; None uses the configuration
                   (public-read ACLs when nothing is configured)
    """
    bucket = parse_uri(uri).bucket
    with override(bucket, publish_expiry=expiry):
        return http_enable(open_s3(uri, config_path))


def list_datasets(
    base_uri: str, config_path: str | None = None, limit: int | None = None
) -> list[DatasetInfo]:
    """Return the datasets registered under a base URI, proto datasets included, by UUID.

    For S3 this is one listing per 1000 datasets plus one GET per dataset, fetched concurrently;
    a damaged dataset is skipped with a warning.
    """
    if base_uri.startswith("s3://"):
        bucket = parse_uri(base_uri).bucket
        entries = registry.list_datasets(resolve_config(bucket, config_path))
        infos = [_info(f"s3://{bucket}/{entry.uuid}", entry.admin_metadata) for entry in entries]
    else:
        found = [
            *dtoolcore.iter_datasets_in_base_uri(base_uri),
            *dtoolcore.iter_proto_datasets_in_base_uri(base_uri),
        ]
        infos = sorted(
            (_info(str(ds.uri), ds.admin_metadata) for ds in found), key=lambda i: i.uuid
        )
    return infos[:limit] if limit is not None else infos


def find_dataset(
    base_uri: str,
    name: str,
    config_path: str | None = None,
    *,
    listing: Callable[[], Iterable[DatasetInfo]] | None = None,
) -> DatasetInfo | None:
    """Return the dataset called ``name`` under ``base_uri``, None if there is none.

    The rule, the same for every caller: in a bucket, the dataset that
    :func:`find_or_create_dataset` made for the name (its UUID is derived from bucket, dataset
    prefix and name: two GETs, no listing) wins while it bears the name; else the one dataset of
    that name among all the datasets of the base URI.

    :param listing: returns the datasets of ``base_uri`` as :func:`list_datasets` does, for a
                    caller that keeps them; called only when the rule needs them (default: list
                    them now)
    :raises DatasetStateError: if several datasets have that name and none was made for it by
                               :func:`find_or_create_dataset`
    """
    where = base_uri
    if base_uri.startswith("s3://"):
        config = resolve_config(parse_uri(base_uri).bucket, config_path)
        own = _named(S3Dataset(config, _own_uuid(config, name)), name)
        if own is not None:
            return own
        where = f"s3://{config.bucket}"
    infos = listing() if listing is not None else list_datasets(base_uri, config_path)
    matches = [info for info in infos if info.name == name]
    if len(matches) > 1:
        shown = ", ".join(info.uri for info in matches[:3])
        more = f" and {len(matches) - 3} more" if len(matches) > 3 else ""
        raise errors.DatasetStateError(
            f"{len(matches)} datasets are named {name!r} in {where} ({shown}{more}): "
            "use a UUID URI instead"
        )
    return matches[0] if matches else None


def find_or_create_dataset(
    base_uri: str,
    name: str,
    config_path: str | None = None,
    *,
    creator_username: str | None = None,
    listing: Callable[[], Iterable[DatasetInfo]] | None = None,
) -> tuple[DatasetInfo, bool]:
    """Return the dataset called ``name`` in an S3 bucket, and whether this call created it.

    The dataset is found as :func:`find_dataset` finds it (a frozen one is returned as it is);
    if there is none, an empty proto dataset of that name is created.

    A new dataset's UUID is derived from the bucket, the configured dataset prefix and the name
    (:func:`deterministic_uuid`), so every process that asks for the name (parallel or cluster
    jobs, separate runs) finds or creates the same dataset: creation is idempotent and race-free
    without locks, and later lookups need no listing of the bucket.

    :param listing: as for :func:`find_dataset`
    :raises ConfigurationError: for an invalid name, or a base URI that is not ``s3://``
    :raises DatasetStateError: if several datasets have that name, or the dataset made for the
                               name has been renamed
    """
    check_dataset_name(name)
    if not base_uri.startswith("s3://"):
        raise errors.ConfigurationError(
            f"find_or_create_dataset needs an s3:// base URI, got {base_uri!r}"
        )
    found = find_dataset(base_uri, name, config_path, listing=listing)
    if found is not None:
        return found, False
    config = resolve_config(parse_uri(base_uri).bucket, config_path)
    dataset = S3Dataset(config, _own_uuid(config, name))
    admin = dtoolcore.generate_admin_metadata(name, creator_username)
    admin["uuid"] = dataset.uuid
    try:
        dataset.create_proto(admin)
        created = True
    except errors.DatasetStateError:
        # Another process created it since the lookup: the same UUID, so the same dataset.
        created = False
    info = _named(dataset, name)
    if info is None:
        raise errors.DatasetStateError(
            f"the dataset made for the name {name!r} ({dataset.uri}) has another name now or "
            "is gone: choose another name"
        )
    return info, created


def _own_uuid(config: S3Config, name: str) -> str:
    return deterministic_uuid(config.bucket, normalise_prefix(config.dataset_prefix), name)


def _named(dataset: S3Dataset, name: str) -> DatasetInfo | None:
    """The dataset as listed, if it exists and is called ``name`` now."""
    admin = dataset.admin_metadata(fresh=True)
    if admin is None or admin.get("name") != name:
        return None
    return _info(dataset.uri, admin)


def _info(uri: str, admin: Mapping[str, Any]) -> DatasetInfo:
    def number(key: str) -> float | None:
        value = admin.get(key)
        return float(value) if value is not None else None

    return DatasetInfo(
        uri=uri,
        uuid=str(admin.get("uuid", "")),
        name=str(admin.get("name", "")),
        frozen=admin.get("type") == "dataset",
        created_at=number("created_at"),
        frozen_at=number("frozen_at"),
        creator_username=admin.get("creator_username"),
    )


def verify_dataset(
    uri: str,
    deep: bool = False,
    config_path: str | None = None,
    etags: bool = False,
    progress: Progress | None = None,
) -> list[str]:
    """Check a frozen dataset against its manifest; return a list of problems (empty = good).

    Each problem starts with its kind and the item's relpath: ``missing item``, ``unexpected
    item``, ``size differs``, ``checksum differs`` (the stored checksum metadata), ``ETag
    differs`` (``etags`` only), ``content differs`` (``deep`` only, with the object and hashes).

    :param deep: also re-hash every item from the bytes the server sends now, concurrently and
                 1 MiB at a time per item (``dtool verify -f`` compares stored metadata only);
                 nothing is written to disk
    :param progress: told the items and bytes re-hashed as they go (``deep`` only)
    :param etags: also compare each object's ETag, where it is a plain MD5 (not a multipart
                  ``-N`` ETag), with the manifest's MD5: one listing, and it catches an object
                  rewritten with its metadata kept
    """
    if not uri.startswith("s3://"):
        return verify_local(open_frozen(uri, config_path))
    return verify_s3(open_s3(uri, config_path), deep, etags, progress)


# -- the bucket around the datasets ------------------------------------------------------------


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
        self._client = S3Client(config or resolve_config(bucket_of(base_uri), config_path))
        self.key = normalise_prefix(self._client.config.dataset_prefix) + path

    def __repr__(self) -> str:
        return f"ObjectBeside('{self.uri}')"

    @property
    def uri(self) -> str:
        return f"s3://{self._client.bucket}/{self.key}"

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
        if is_dataset_uuid(first) or first.startswith(REGISTRATION_PREFIX):
            return "starts where datasets live (a UUID or 'dtool-'): start it with a name of yours"
    return problem


def check_bucket(
    base_uri: str, config_path: str | None = None, config: S3Config | None = None
) -> None:
    """Check that the bucket of ``base_uri`` exists and the credentials reach it (one HeadBucket).

    :param config: the bucket's settings (default: resolved from its name)
    :raises BucketNotFound: if the endpoint has no such bucket
    :raises AccessDenied: if the credentials may not use it, or there are none
    :raises EndpointUnreachable: if the endpoint does not answer
    """
    config = config or resolve_config(bucket_of(base_uri), config_path)
    if not S3Client(config).bucket_exists():
        where = errors.redact_url(config.endpoint_url) or "the default AWS endpoint"
        raise errors.BucketNotFound(
            f"bucket '{config.bucket}' does not exist at {where}: check the bucket name and the "
            "endpoint"
        )


def list_buckets(config: S3Config) -> list[str]:
    """Return the buckets the credentials of ``config`` own (one ListBuckets request).

    Settings are per bucket: ``config`` may be that of any bucket name that resolves to the
    endpoint and credentials in question (e.g. ``resolve_config("any")`` inside :func:`override`).

    :raises AccessDenied: if the credentials may not list buckets, or there are none
    :raises EndpointUnreachable: if the endpoint does not answer
    """
    return S3Client(config).list_bucket_names()
