"""Finding datasets: listing a base URI, a dataset by name, and the one name -> UUID rule.

A dataset a tool creates for a name (:func:`find_or_create_dataset`) gets a UUID derived from
the S3 endpoint, the bucket, the dataset prefix, the name and an optional salt, so every process
that asks for the name finds or creates the same one, and the same name on another server (or
with another salt) gets another UUID; :func:`find_dataset` applies the same rule for every
caller.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

import dtoolcore

from .. import errors
from .._dataset import registry
from .._dataset.dataset import S3Dataset
from .._format import validate
from .._format.keys import normalise_prefix
from .._format.uri import object_url, parse_base_uri, parse_uri
from ..config import S3Config, resolve_config


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


#: The endpoint that stands for AWS in UUIDs: no endpoint configured, or any ``*.amazonaws.com``
#: host (bucket names are global there, whatever the region).
AWS_ENDPOINT = "https://s3.amazonaws.com"

_DEFAULT_PORTS = {"http": 80, "https": 443}


def uuid_endpoint(endpoint_url: str | None) -> str:
    """Return the endpoint as it enters dataset UUIDs: ``scheme://host[:port]``.

    Scheme and host in lower case, the port only when it is not the scheme's default, no user
    name or password, no path; :data:`AWS_ENDPOINT` for None and for AWS hosts.
    """
    if not endpoint_url:
        return AWS_ENDPOINT
    parts = urlsplit(endpoint_url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if host == "amazonaws.com" or host.endswith(".amazonaws.com"):
        return AWS_ENDPOINT
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    shown = f":{port}" if port is not None and port != _DEFAULT_PORTS.get(scheme) else ""
    return f"{scheme}://{host}{shown}"


def deterministic_uuid(
    bucket: str, prefix: str, name: str, *, endpoint_url: str | None, salt: str = ""
) -> str:
    """Return the UUID of the dataset ``name`` created by :func:`find_or_create_dataset`.

    ``uuid5(NAMESPACE, "<endpoint>/<bucket>/<prefix><name>")``, with ``"#<salt>"`` appended
    when a salt is given; ``<endpoint>`` is :func:`uuid_endpoint` of ``endpoint_url`` and
    ``prefix`` the dataset prefix (normalised: empty, or ending in '/').

    :raises ConfigurationError: if the salt is not 1-80 letters, digits, '-', '_' or '.'
    """
    text = f"{uuid_endpoint(endpoint_url)}/{bucket}/{prefix}{name}"
    if salt:
        if validate.name_problem(salt) is not None:
            raise errors.ConfigurationError(
                f"the dataset UUID salt {salt!r} is not 1-80 letters, digits, '-', '_' or '.': "
                "choose one such as 'site-a'"
            )
        text = f"{text}#{salt}"
    return str(uuid.uuid5(NAMESPACE, text))


def legacy_uuid(bucket: str, prefix: str, name: str) -> str:
    """Return the UUID that release 0.1.0 gave the dataset (no endpoint, no salt).

    Datasets made that way are still found by their name (see :func:`find_dataset`), so a
    workflow that was interrupted before an upgrade continues the dataset it began.
    """
    return str(uuid.uuid5(NAMESPACE, f"s3://{bucket}/{prefix}{name}"))


def list_datasets(
    base_uri: str, config_path: str | None = None, limit: int | None = None
) -> list[DatasetInfo]:
    """Return the datasets registered under a base URI, proto datasets included, by UUID.

    For S3 this is one listing per 1000 datasets plus one GET per dataset, fetched concurrently;
    a damaged dataset is skipped with a warning.
    """
    if base_uri.startswith("s3://"):
        bucket = parse_base_uri(base_uri, listing=True).bucket
        entries = registry.list_datasets(resolve_config(bucket, config_path))
        infos = [_info(object_url(bucket, entry.uuid), entry.admin_metadata) for entry in entries]
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
    salt: str = "",
) -> DatasetInfo | None:
    """Return the dataset called ``name`` under ``base_uri``, None if there is none.

    The rule, the same for every caller: in a bucket, the dataset that
    :func:`find_or_create_dataset` made for the name (its UUID is :func:`deterministic_uuid`
    of endpoint, bucket, dataset prefix, name and salt: one GET, no listing) wins while it bears
    the name; then the one release 0.1.0 made for it (:func:`legacy_uuid`, one more GET); else
    the one dataset of that name among all the datasets of the base URI.

    :param listing: returns the datasets of ``base_uri`` as :func:`list_datasets` does, for a
                    caller that keeps them; called only when the rule needs them (default: list
                    them now)
    :param salt: as given to :func:`find_or_create_dataset`
    :raises DatasetStateError: if several datasets have that name and none was made for it by
                               :func:`find_or_create_dataset`
    """
    where = base_uri
    if base_uri.startswith("s3://"):
        config = resolve_config(parse_uri(base_uri).bucket, config_path)
        prefix = normalise_prefix(config.dataset_prefix)
        for ds_uuid in (_own_uuid(config, name, salt), legacy_uuid(config.bucket, prefix, name)):
            own = _named(S3Dataset(config, ds_uuid), name)
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
    salt: str = "",
) -> tuple[DatasetInfo, bool]:
    """Return the dataset called ``name`` in an S3 bucket, and whether this call created it.

    The dataset is found as :func:`find_dataset` finds it (a frozen one is returned as it is);
    if there is none, an empty proto dataset of that name is created.

    A new dataset's UUID is derived from the bucket's endpoint, the bucket, the configured
    dataset prefix, the name and ``salt`` (:func:`deterministic_uuid`), so every process that
    asks for the name (parallel or cluster jobs, separate runs) finds or creates the same
    dataset: creation is idempotent and race-free without locks, and later lookups need no
    listing of the bucket. The same name on another endpoint, or with another salt, gets
    another UUID, so datasets of several sites stay distinct when copied into one archive.

    :param listing: as for :func:`find_dataset`
    :param salt: a workflow's own addition to the UUID rule (1-80 letters, digits, '-', '_',
                 '.'); every process that writes the dataset must give the same one
    :raises ConfigurationError: for an invalid name, or a base URI that is not ``s3://``
    :raises DatasetStateError: if several datasets have that name, or the dataset made for the
                               name has been renamed
    """
    validate.check_dataset_name(name)
    if not base_uri.startswith("s3://"):
        raise errors.ConfigurationError(
            f"find_or_create_dataset needs an s3:// base URI, got {base_uri!r}"
        )
    found = find_dataset(base_uri, name, config_path, listing=listing, salt=salt)
    if found is not None:
        return found, False
    config = resolve_config(parse_uri(base_uri).bucket, config_path)
    dataset = S3Dataset(config, _own_uuid(config, name, salt))
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


def _own_uuid(config: S3Config, name: str, salt: str) -> str:
    return deterministic_uuid(
        config.bucket,
        normalise_prefix(config.dataset_prefix),
        name,
        endpoint_url=config.endpoint_url,
        salt=salt,
    )


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
