"""Reading a OneRoster package from disk: a zip or a folder holding manifest.csv (file I/O only)."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from abacus.errors import AbacusError, RosterInputError
from abacus.roster.oneroster.files import MANIFEST, MANIFEST_FILES, READ_FILES
from abacus.roster.validation.readers import MAX_BYTES_SETTING

__all__ = ["Package", "PackageError", "is_oneroster_package", "read_package"]
_KNOWN = frozenset({MANIFEST, *(f"{stem}.csv" for stem in MANIFEST_FILES)})


class PackageError(AbacusError):
    """The path is not a readable OneRoster package (the message says why)."""


@dataclass(frozen=True, slots=True)
class Package:
    path: Path
    is_zip: bool
    files: dict[str, bytes]  # manifest.csv and the files the importer reads, when present
    present: frozenset[str]  # every OneRoster file name in the package

    @property
    def folder(self) -> Path:
        """Where reports and the default district.toml go: the folder, or the zip's folder."""
        return self.path.parent if self.is_zip else self.path


def is_oneroster_package(path: Path) -> bool:
    """A zip file, or a folder with manifest.csv (the upload document's folder has neither)."""
    if path.is_dir():
        return (path / MANIFEST).is_file()
    return path.is_file() and zipfile.is_zipfile(path)


def _zip_members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """OneRoster files at the zip's root, or in its one folder when the root has no manifest."""
    members = [i for i in archive.infolist() if not i.is_dir()]
    root = {i.filename: i for i in members if i.filename in _KNOWN}
    folders = {
        str(PurePosixPath(i.filename).parent)
        for i in members
        if PurePosixPath(i.filename).name == MANIFEST
    }
    if MANIFEST in root or len(folders) != 1:
        return root
    (folder,) = folders
    return {
        PurePosixPath(i.filename).name: i
        for i in members
        if str(PurePosixPath(i.filename).parent) == folder
        and PurePosixPath(i.filename).name in _KNOWN
    }


def _check_size(where: str, size: int, max_bytes: int | None) -> None:
    """RosterInputError for a file over the cap (in a zip: uncompressed, so a zip bomb is
    refused before it is inflated)."""
    if max_bytes is not None and size > max_bytes:
        raise RosterInputError(
            f"{where}: {size:,} bytes, over the limit of {max_bytes:,}"
            f" ({MAX_BYTES_SETTING}); nothing imported"
        )


def _read_zip(path: Path, max_bytes: int | None) -> Package:
    try:
        with zipfile.ZipFile(path) as archive:
            members = _zip_members(archive)
            files = {}
            for name, info in members.items():
                if name != MANIFEST and name not in READ_FILES:
                    continue
                _check_size(f"{path.name}: {name}", info.file_size, max_bytes)
                files[name] = archive.read(info)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError) as exc:
        raise PackageError(f"{path.name}: not a readable zip file ({exc})") from exc
    return Package(path, True, files, frozenset(members))


def read_package(path: Path, *, max_bytes: int | None = None) -> Package:
    """The package's files; raises PackageError when `path` is neither a zip nor a folder,
    RosterInputError for a file larger than `max_bytes` (before it is read)."""
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise PackageError(f"{path.name}: not a zip file or a folder")
        return _read_zip(path, max_bytes)
    if not path.is_dir():
        raise PackageError(f"{path}: no such file or folder")
    present = frozenset(n for n in _KNOWN if (path / n).is_file())
    wanted = [n for n in (MANIFEST, *READ_FILES) if n in present]
    for name in wanted:
        _check_size(name, (path / name).stat().st_size, max_bytes)
    files = {n: (path / n).read_bytes() for n in wanted}
    return Package(path, False, files, present)
