"""Frozen datasets as copy sources: an S3 dataset, or a local one through dtoolcore's public API.

Both present the same checked view (admin metadata, manifest entries, README, tags, overlays,
annotations, item files), so the copy engine never sees an unchecked relpath or name, whatever
wrote the source.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import dtoolcore
from dtoolcore.utils import generous_parse_uri

from .. import errors
from .._dataset.dataset import S3Dataset
from .._dataset.localfiles import check_local_files
from .._format import manifest, validate
from .._format.keys import UUID_RE
from .._format.manifest import Entry


class Source(ABC):
    """A frozen dataset to copy from; ``s3`` is set when it is an S3 dataset."""

    s3: S3Dataset | None = None
    uri: str

    @property
    @abstractmethod
    def admin(self) -> dict[str, Any]: ...

    @abstractmethod
    def entries(self) -> dict[str, Entry]: ...

    @abstractmethod
    def readme(self) -> str: ...

    @abstractmethod
    def tags(self) -> list[str]: ...

    @abstractmethod
    def overlays(self) -> dict[str, dict[str, Any]]: ...

    @abstractmethod
    def annotations(self) -> dict[str, Any]: ...

    @abstractmethod
    def local_file(self, entry: Entry, staging: Path) -> tuple[Path, bool]:
        """Return a local file with the item's content, and whether it is a temporary copy."""

    @abstractmethod
    def check_items(self) -> None:
        """Refuse, before anything is written, item files that could not be uploaded."""

    def check_local_names(self, dest: str, limit: int = validate.NAME_MAX) -> None:
        """Refuse to copy a dataset whose items no local disk can hold together.

        Names over ``limit`` bytes, or an item that is also a directory of others, get into a
        bucket only through other writers; such a dataset is read item by item or not at all.

        :raises DatasetStateError: naming the first such item
        """
        problem = validate.local_names_problem((e.relpath for e in self.entries().values()), limit)
        if problem is not None:
            raise errors.DatasetStateError(
                f"cannot copy {self.uri} to {dest}: it {problem}; 'dtool item fetch' still reads "
                "its items one by one"
            )


class S3Source(Source):
    """A frozen dataset in S3."""

    def __init__(self, dataset: S3Dataset) -> None:
        admin = dataset.admin_metadata(fresh=True)
        if admin is None or admin.get("type") != "dataset":
            raise errors.DatasetStateError(
                f"no frozen dataset at {dataset.uri}: check the URI ('dtool ls <base URI>' lists "
                "them), or freeze the proto dataset first"
            )
        self.s3 = dataset
        self.uri = dataset.uri
        self._admin = admin

    @property
    def admin(self) -> dict[str, Any]:
        return dict(self._admin)

    def entries(self) -> dict[str, Entry]:
        assert self.s3 is not None
        return self.s3.entries()

    def readme(self) -> str:
        assert self.s3 is not None
        return self.s3.readme()

    def tags(self) -> list[str]:
        assert self.s3 is not None
        return self.s3.tags()

    def overlays(self) -> dict[str, dict[str, Any]]:
        assert self.s3 is not None
        return {name: self.s3.overlay(name) for name in self.s3.overlay_names()}

    def annotations(self) -> dict[str, Any]:
        assert self.s3 is not None
        return {name: self.s3.annotation(name) for name in self.s3.annotation_names()}

    def local_file(self, entry: Entry, staging: Path) -> tuple[Path, bool]:
        assert self.s3 is not None
        target = staging / entry.identifier
        return self.s3.download_to(entry.identifier, target), True

    def check_items(self) -> None:
        """Nothing to check: each item is downloaded into a file of this process's own."""


class LocalSource(Source):
    """A frozen dataset on a local disk (or any non-S3 dtool broker), read with dtoolcore."""

    def __init__(self, uri: str, config_path: str | None = None) -> None:
        try:
            self._dataset = dtoolcore.DataSet.from_uri(uri, config_path)
        except dtoolcore.DtoolCoreTypeError as exc:
            raise errors.DatasetStateError(
                f"no frozen dataset at {uri}: check the URI, or freeze the proto dataset first"
            ) from exc
        self.uri = uri
        self._entries: dict[str, Entry] | None = None
        self._paths: dict[str, Path] = {}

    def _check(self, read: Any) -> Any:
        try:
            return read()
        except validate.Invalid as exc:
            raise errors.damaged(self.uri, str(exc)) from exc

    @property
    def admin(self) -> dict[str, Any]:
        admin = dict(self._dataset.admin_metadata)
        uuid = str(admin.get("uuid"))
        if not UUID_RE.match(uuid):
            raise errors.damaged(self.uri, f"has a UUID {validate.shown(uuid)} that is no UUID")
        self._check(lambda: manifest.check_admin(admin, uuid))
        return admin

    def entries(self) -> dict[str, Entry]:
        if self._entries is None:
            items = {i: self._dataset.item_properties(i) for i in self._dataset.identifiers}
            self._entries = self._check(lambda: manifest.parse_manifest({"items": items}))
        return self._entries

    def readme(self) -> str:
        return str(self._dataset.get_readme_content())

    def tags(self) -> list[str]:
        tags = list(self._dataset.list_tags())
        return list(self._check(lambda: validate.check_names("a tag", tags)))

    def overlays(self) -> dict[str, dict[str, Any]]:
        names = self._check(
            lambda: validate.check_names("an overlay", list(self._dataset.list_overlay_names()))
        )
        idents = set(self.entries())
        return {
            name: self._check(
                lambda name=name: validate.check_overlay(self._dataset.get_overlay(name), idents)
            )
            for name in names
        }

    def annotations(self) -> dict[str, Any]:
        names = self._check(
            lambda: validate.check_names(
                "an annotation", list(self._dataset.list_annotation_names())
            )
        )
        return {name: self._dataset.get_annotation(name) for name in names}

    def local_file(self, entry: Entry, staging: Path) -> tuple[Path, bool]:
        path = self._paths.get(entry.identifier)
        if path is None:
            path = Path(self._dataset.item_content_abspath(entry.identifier))
        return path, False

    def check_items(self) -> None:
        """Refuse FIFOs, devices, unreadable files and broken links among the items.

        Only on a local disk: another broker's ``item_content_abspath`` downloads the item, which
        is a regular file it wrote, and the upload checks it all the same.
        """
        if generous_parse_uri(self._dataset.uri).scheme != "file":
            return
        self._paths = {
            ident: Path(self._dataset.item_content_abspath(ident)) for ident in self.entries()
        }
        check_local_files(self._paths.values())
