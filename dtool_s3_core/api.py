"""A small Python API over dtoolcore and the S3 broker, shared by the integrations and scripts.

Every function that reaches a bucket takes ``config_path`` (the dtool JSON config file) and
honours :func:`dtool_s3_core.config.override`, so callers pass settings without touching
``os.environ``. The integrations use this module (through ``dtool_s3_core``) and nothing below it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import dtoolcore

from . import errors
from ._dataset.beside import ObjectBeside, ObjectStat
from ._dataset.dataset import S3Dataset
from ._dataset.localfiles import Problem, list_tree, problems_of, refusal
from ._dataset.publish import http_enable
from ._format import validate
from ._format.keys import UUID_RE, identifier
from ._format.uri import parse_base_uri, parse_uri
from ._format.validate import check_dataset_name
from ._ops.delete import DeletionPlan, delete, plan_deletion
from ._ops.finding import (
    DatasetInfo,
    deterministic_uuid,
    find_dataset,
    find_or_create_dataset,
    list_datasets,
    uuid_endpoint,
)
from ._ops.results import CopyResult, Progress, copy_result
from ._ops.sources import LocalSource, S3Source, Source
from ._ops.to_disk import copy_to_disk, is_disk_base
from ._ops.to_s3 import copy_to_s3
from ._ops.verify import verify_local, verify_s3
from ._s3.client import S3Client
from ._s3.roles import TemporaryCredentials, assume_role
from .config import S3Config, override, resolve_config, settings_of

__all__ = [
    "DatasetInfo",
    "DeletionPlan",
    "ObjectBeside",
    "ObjectStat",
    "TemporaryCredentials",
    "assume_role",
    "bucket_of",
    "check_bucket",
    "check_dataset_name",
    "copy",
    "copy_dataset",
    "create_dataset",
    "delete_dataset",
    "deterministic_uuid",
    "find_dataset",
    "find_or_create_dataset",
    "freeze_dataset",
    "is_dataset_uuid",
    "item_identifier",
    "iter_files",
    "list_buckets",
    "list_datasets",
    "open_frozen",
    "open_s3",
    "open_source",
    "plan_dataset_deletion",
    "publish_dataset",
    "readme_text",
    "uuid_endpoint",
    "verify_dataset",
]


def bucket_of(uri: str) -> str:
    """Return the bucket of an ``s3://<bucket>[/...]`` URI.

    :raises ConfigurationError: if it is not an S3 URI or names no valid bucket
    """
    return parse_uri(uri).bucket


def is_dataset_uuid(text: str) -> bool:
    """Return whether ``text`` is a dataset UUID as dtool writes it (lowercase, with hyphens)."""
    return UUID_RE.fullmatch(text) is not None


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
    """Return {relpath: path} for every file below ``source_dir`` (symlinks to files followed).

    Nothing is left out without a word: every file must be a readable regular file.

    :raises ObjectNotFound: if ``source_dir`` is no directory
    :raises LocalFileError: naming the first few of the FIFOs, devices, sockets, unreadable
                            files or directories, dangling or looping symbolic links and
                            symbolic links to directories below it
    """
    files, problems = _tree(source_dir)
    problems += problems_of(files.values())
    if problems:
        raise refusal(problems)
    return files


def _tree(source_dir: str | os.PathLike[str]) -> tuple[dict[str, Path], list[Problem]]:
    root = Path(source_dir)
    if not root.is_dir():
        raise errors.ObjectNotFound(f"source directory not found: {root}")
    return list_tree(root)


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

    Every file is checked before the dataset is created, so a mistake leaves nothing behind.

    :param freeze: freeze it once every item is stored (else it stays a proto dataset)
    :raises ConfigurationError: for an invalid dataset name or relpath
    :raises ObjectNotFound: for a missing file or ``source_dir``
    :raises LocalFileError: for anything else that is no readable regular file (see
                            :func:`iter_files`), naming the first few
    """
    check_dataset_name(name)
    items, problems = _tree(source_dir) if source_dir is not None else ({}, [])
    items.update({relpath: Path(path) for relpath, path in (files or {}).items()})
    validate.check_relpaths(items)
    problems += problems_of(items.values())
    if problems:
        raise refusal(problems)
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
    dataset = S3Dataset(resolve_config(parse_base_uri(base_uri).bucket, config_path), admin["uuid"])
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
    resume_with: str = "resume=True",
) -> CopyResult:
    """Copy a frozen dataset (local or S3) to a base URI, keeping its UUID; say what moved.

    From S3 to a local directory each item downloads straight into the new dataset (nothing goes
    through the download cache).

    :param source_config: settings of the source bucket (default: resolved from its name)
    :param dest_config: settings of the destination bucket (default: resolved from its name)
    :param resume: finish an interrupted copy, keeping items already present and intact
    :param progress: told the bytes and items as they are copied (see :class:`Progress`)
    :param resume_with: how the caller's user asks for a resume, named in the messages of an
                        existing destination or a full disk (a command line passes its own)
    """
    source = open_source(src_uri, config_path, source_config)
    admin = source.admin
    if dest_base_uri.startswith("s3://"):
        config = dest_config or resolve_config(parse_base_uri(dest_base_uri).bucket, config_path)
        return copy_to_s3(
            source, S3Dataset(config, str(admin["uuid"])), resume, progress, resume_with
        )
    if isinstance(source, S3Source) and is_disk_base(dest_base_uri):
        return copy_to_disk(source, dest_base_uri, resume, config_path, progress, resume_with)
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


def plan_dataset_deletion(uri: str, config_path: str | None = None) -> DeletionPlan:
    """Say what :func:`delete_dataset` would delete at ``uri`` (to confirm it); nothing changes.

    :raises ConfigurationError: if ``uri`` is a bucket or names no dataset UUID
    :raises ObjectNotFound: if there is no dataset, nor anything left of one, at ``uri``
    :raises DatasetStateError: if an object of the dataset is locked (S3 Object Lock retention
                               or legal hold)
    """
    return plan_deletion(open_s3(uri, config_path))


def delete_dataset(
    uri: str, config_path: str | None = None, plan: DeletionPlan | None = None
) -> DeletionPlan:
    """Delete the S3 dataset at ``uri``, frozen or proto, with every object it has; return what
    was there.

    Its admin metadata go first, so an interrupted deletion never leaves a dataset that is
    listed; calling this again on what is left finishes the job. Multipart uploads in progress
    under its prefix are aborted. In a versioned bucket the objects get delete markers (older
    versions stay, as the bucket's lifecycle rules decide).

    :param plan: what :func:`plan_dataset_deletion` found (default: look now)
    :raises: as :func:`plan_dataset_deletion`
    """
    dataset = open_s3(uri, config_path)
    if plan is None:
        plan = plan_deletion(dataset)
    delete(dataset, plan)
    return plan


# -- the bucket around the datasets ------------------------------------------------------------


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
