"""A small Python API over dtoolcore and the S3 broker, shared by the integrations and scripts.

Every function takes ``config_path`` (the dtool JSON config file) and honours
:func:`dtool_s3_core.config.override`, so callers pass settings without touching ``os.environ``.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import dtoolcore
import dtoolcore.utils

from . import errors, registry, s3copy
from .client import S3Client
from .config import override, resolve_config
from .keys import normalise_prefix
from .uri import parse_uri


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
    :raises DtoolCoreInvalidNameError: for an invalid dataset name
    """
    if not dtoolcore.utils.name_is_valid(name):
        raise errors.ConfigurationError(
            f"invalid dataset name {name!r}: use letters, digits, '-', '_' and '.' (max 80)"
        )
    items: dict[str, Path] = iter_files(source_dir) if source_dir is not None else {}
    items.update({relpath: Path(path) for relpath, path in (files or {}).items()})
    # Checked before anything is created, so a typo leaves no proto dataset behind.
    for path in items.values():
        if not path.is_file():
            raise errors.ObjectNotFound(f"local file not found: {path}")
    admin = dtoolcore.generate_admin_metadata(name, creator_username)
    proto = dtoolcore.generate_proto_dataset(admin, base_uri, config_path)
    proto.create()
    proto.put_readme(readme_text(readme))
    for relpath, path in items.items():
        proto.put_item(str(path), relpath)
    if freeze:
        proto.freeze()
    else:
        _drain(proto)
    return str(proto.uri)


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


def _drain(dataset: dtoolcore.ProtoDataSet) -> None:
    drain = getattr(dataset._storage_broker, "_drain", None)
    if drain is not None:
        drain()


def freeze_dataset(uri: str, config_path: str | None = None) -> str:
    """Freeze a proto dataset (a frozen one is left as it is); return its URI."""
    admin = dtoolcore._admin_metadata_from_uri(uri, config_path)
    if admin.get("type") == "dataset":
        return uri
    proto = dtoolcore.ProtoDataSet.from_uri(uri, config_path)
    proto.freeze()
    return uri


def copy_dataset(
    src_uri: str, dest_base_uri: str, resume: bool = False, config_path: str | None = None
) -> str:
    """Copy a frozen dataset (local or S3) to a base URI; return the new URI.

    Between two buckets reached with one endpoint and one set of credentials, the server copies
    the items itself (no bytes pass through this process).

    :param resume: finish an interrupted copy, skipping items already present with the right size
    """
    dataset = open_frozen(src_uri, config_path)
    if s3copy.same_service(src_uri, dest_base_uri, config_path):
        return s3copy.copy_within_service(dataset, dest_base_uri, resume, config_path)
    if resume:
        return str(dtoolcore.copy_resume(src_uri, dest_base_uri, config_path))
    return str(dtoolcore.copy(src_uri, dest_base_uri, config_path))


def publish_dataset(uri: str, expiry: int | None = None, config_path: str | None = None) -> str:
    """Publish a frozen S3 dataset over HTTP; return the access URL.

    :param expiry: seconds the presigned URLs stay valid; None uses the configuration
                   (public-read ACLs when nothing is configured)
    """
    bucket = parse_uri(uri).bucket
    with override(bucket, publish_expiry=expiry):
        dataset = open_frozen(uri, config_path)
        return str(dataset._storage_broker.http_enable())


def list_datasets(
    base_uri: str, config_path: str | None = None, limit: int | None = None
) -> list[DatasetInfo]:
    """Return the datasets registered under a base URI, proto datasets included, by UUID.

    For S3 this is one listing per 1000 datasets plus one GET per dataset, fetched concurrently.
    """
    infos: list[DatasetInfo] = []
    if base_uri.startswith("s3://"):
        bucket = parse_uri(base_uri).bucket
        config = resolve_config(bucket, config_path)
        entries = registry.list_datasets(S3Client(config), normalise_prefix(config.dataset_prefix))
        for entry in entries:
            if entry.admin_metadata is not None:
                infos.append(_info(f"s3://{bucket}/{entry.uuid}", entry.admin_metadata))
    else:
        broker = dtoolcore._get_storage_broker(base_uri, config_path)
        for uri in broker.list_dataset_uris(base_uri, config_path):
            infos.append(_info(uri, dtoolcore._admin_metadata_from_uri(uri, config_path)))
    return infos[:limit] if limit is not None else infos


def find_dataset(base_uri: str, name: str, config_path: str | None = None) -> DatasetInfo | None:
    """Return the dataset called ``name``, None if there is none.

    :raises DatasetStateError: if several datasets have that name
    """
    matches = [info for info in list_datasets(base_uri, config_path) if info.name == name]
    if len(matches) > 1:
        raise errors.DatasetStateError(
            f"{len(matches)} datasets are named {name!r} in {base_uri}: use a UUID URI instead"
        )
    return matches[0] if matches else None


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


def verify_dataset(uri: str, deep: bool = False, config_path: str | None = None) -> list[str]:
    """Check a frozen dataset against its manifest; return a list of problems (empty = good).

    :param deep: also download every item and re-hash its content (``dtool verify -f`` compares
                 stored checksum metadata only)
    """
    if deep and uri.startswith("s3://"):
        # The download cache would hand back items read earlier, trusted by their size alone;
        # a deep check hashes what the bucket holds now.
        with (
            tempfile.TemporaryDirectory(prefix="dtool-s3-verify-") as fresh,
            override(parse_uri(uri).bucket, cache_directory=fresh),
        ):
            return _verify(uri, deep, config_path)
    return _verify(uri, deep, config_path)


def _verify(uri: str, deep: bool, config_path: str | None) -> list[str]:
    dataset = open_frozen(uri, config_path)
    broker = dataset._storage_broker
    try:
        return _problems(dataset, broker, deep)
    finally:
        # Waits for read-ahead downloads, which must not outlive a temporary cache directory.
        close = getattr(broker, "close", None)
        if close is not None:
            close()


def _problems(dataset: dtoolcore.DataSet, broker: Any, deep: bool) -> list[str]:
    manifest = dataset.generate_manifest() if not deep else None
    problems: list[str] = []
    stored = {dtoolcore.utils.generate_identifier(h): h for h in broker.iter_item_handles()}
    for ident in sorted(set(dataset.identifiers) - set(stored)):
        problems.append(f"missing item: {dataset.item_properties(ident)['relpath']}")
    for ident in sorted(set(stored) - set(dataset.identifiers)):
        problems.append(f"unexpected item: {stored[ident]}")
    for ident in sorted(set(stored) & set(dataset.identifiers)):
        expected = dataset.item_properties(ident)
        if manifest is not None:
            actual = manifest["items"][ident]
            if actual["size_in_bytes"] != expected["size_in_bytes"]:
                problems.append(f"size differs: {expected['relpath']}")
            elif actual["hash"] != expected["hash"]:
                problems.append(f"checksum differs: {expected['relpath']}")
            continue
        try:
            dataset.item_content_abspath(ident)
        except errors.IntegrityError as exc:
            problems.append(str(exc))
    return problems
