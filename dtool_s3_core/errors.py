"""Exceptions raised by dtool_s3_core (the S3 layer turns botocore's exceptions into these).

The tree::

    DtoolS3Error(Exception)
    ├── ConfigurationError(DtoolS3Error, ValueError)     bad or partial settings, malformed URIs
    ├── BucketNotFound(DtoolS3Error, FileNotFoundError)
    ├── ObjectNotFound(DtoolS3Error, FileNotFoundError)  a dataset, item or metadata key is missing
    ├── AccessDenied(DtoolS3Error, PermissionError)      wrong credentials or no permission
    ├── EndpointUnreachable(DtoolS3Error, ConnectionError)
    ├── IntegrityError(DtoolS3Error, ValueError)         content does not match its MD5
    ├── DatasetStateError(DtoolS3Error, RuntimeError)    e.g. writing to a frozen dataset
    ├── PublishError(DtoolS3Error, RuntimeError)         the server refuses public ACLs
    ├── LocalFileError(DtoolS3Error, OSError)            a full local disk, an unwritable directory,
    │                                                    a source that is no readable regular file
    └── TransferFailed(DtoolS3Error, OSError)            anything else S3 answered with

Each subclass also inherits the matching built-in so that dtoolcore's and the dtool CLI's generic
handling keeps working. Messages are one line that names the bucket/key and the fix; they never
contain credentials.
"""

from __future__ import annotations

from collections.abc import Mapping


class DtoolS3Error(Exception):
    """Base class of every error raised by dtool_s3_core."""


class ConfigurationError(DtoolS3Error, ValueError):
    """Settings or a URI are malformed or incomplete."""


class BucketNotFound(DtoolS3Error, FileNotFoundError):
    """The bucket does not exist on the endpoint."""


class ObjectNotFound(DtoolS3Error, FileNotFoundError):
    """A key that should exist is missing."""


class AccessDenied(DtoolS3Error, PermissionError):
    """The server refused the credentials or the operation."""


class EndpointUnreachable(DtoolS3Error, ConnectionError):
    """No connection could be made to the endpoint."""


class IntegrityError(DtoolS3Error, ValueError):
    """Content does not match the checksum it was stored or listed with."""


class DatasetStateError(DtoolS3Error, RuntimeError):
    """The dataset is in the wrong state for the operation (frozen, proto, existing)."""


class PublishError(DtoolS3Error, RuntimeError):
    """A dataset could not be published."""


class LocalFileError(DtoolS3Error, OSError):
    """A local file could not be written (full disk, quota, file size limit, permissions), or
    cannot be uploaded (a FIFO, device, socket or directory, unreadable, a broken symbolic link)."""


class TransferFailed(DtoolS3Error, OSError):
    """S3 answered with an error that is none of the above."""


def redact_url(url: str | None) -> str | None:
    """Return ``url`` without user:password (an endpoint may carry them; messages must not).

    This never raises and never parses the authority: everything up to the last ``@`` after the
    scheme is userinfo as far as it is concerned (a host never holds an ``@``, a typed password
    may hold ``/``, ``#`` or ``@``), so a malformed port or host cannot let any part of a password
    through. A URL without an ``@`` carries no credentials and is returned as it is.
    """
    if not url:
        return url
    scheme, separator, rest = url.partition("://")
    if not separator:
        # "user:secret@host" without a scheme still carries a secret.
        scheme, rest = "", url
    if "@" not in rest:
        return url
    shown = "***@" + rest.rpartition("@")[2]
    return f"{scheme}://{shown}" if separator else shown


def damaged(where: str, problem: str, dataset_uri: str | None = None) -> DatasetStateError:
    """Return the error for a dataset object that exists but cannot be read (e.g. broken JSON).

    :param where: the ``s3://`` URL of the object
    :param problem: what is wrong with it, e.g. ``"is not valid JSON (...)"``
    :param dataset_uri: the URI of the S3 dataset, where ``dtool s3 rm`` can delete it (not for
                        a damaged registration, whose prefix is lost)
    """
    how = f" with 'dtool s3 rm {dataset_uri}'" if dataset_uri else ""
    return DatasetStateError(
        f"{where} {problem}: the dataset is damaged; restore that object from a copy of the "
        f"dataset, or delete the dataset{how}"
    )


def error_code(exc: BaseException) -> str:
    """Return the S3 error code of a botocore ``ClientError`` (else the HTTP status, else
    ``"Unknown"``).

    The code is read from ``exc.response`` without importing botocore, so that code outside the
    S3 layer (the Airflow integration, for one) can name it.
    """
    response = getattr(exc, "response", None)
    if not isinstance(response, Mapping):
        return "Unknown"
    code = response.get("Error", {}).get("Code")
    if code:
        return str(code)
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return str(status) if status else "Unknown"
