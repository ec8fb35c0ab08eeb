"""Reading OneRoster packages from disk: zip or folder, detection, bad archives."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from abacus.errors import RosterInputError
from abacus.roster.oneroster.package import PackageError, is_oneroster_package, read_package
from abacus.roster.oneroster.reader import read_csv
from tests.support.oneroster import Package, from_upload

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def example() -> Package:
    return from_upload(EXAMPLES / "district")


def test_a_zip_and_a_folder_read_the_same(example: Package, tmp_path: Path) -> None:
    folder = example.write(tmp_path / "pkg")
    archive = example.write_zip(tmp_path / "pkg.zip")
    from_folder, from_zip = read_package(folder), read_package(archive)
    assert from_folder.files == from_zip.files == example.files()
    assert from_zip.is_zip
    assert not from_folder.is_zip
    assert from_zip.folder == tmp_path
    assert from_folder.folder == folder
    assert "manifest.csv" in from_zip.present
    assert "users.csv" in from_zip.present


def test_a_zip_of_a_folder_is_read_from_that_folder(example: Package, tmp_path: Path) -> None:
    path = tmp_path / "nested.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for name, payload in example.files().items():
            archive.writestr(f"export-2026/{name}", payload)
        archive.writestr("readme.txt", b"not a roster file")
    assert read_package(path).files == example.files()


def test_detection_keeps_upload_document_folders_on_their_path(tmp_path: Path) -> None:
    assert not is_oneroster_package(EXAMPLES / "district")
    (tmp_path / "manifest.csv").write_text("propertyName,value\n")
    assert is_oneroster_package(tmp_path)
    (tmp_path / "notes.txt").write_text("hello")
    assert not is_oneroster_package(tmp_path / "notes.txt")
    with pytest.raises(PackageError, match="not a zip file or a folder"):
        read_package(tmp_path / "notes.txt")
    with pytest.raises(PackageError, match="no such file or folder"):
        read_package(tmp_path / "missing")


def test_a_zip_without_a_manifest_has_none(example: Package, tmp_path: Path) -> None:
    path = tmp_path / "bare.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("users.csv", example.file_bytes("users.csv"))
    package = read_package(path)
    assert "manifest.csv" not in package.files
    assert package.present == {"users.csv"}


def test_an_oversized_file_is_refused_before_it_is_read(example: Package, tmp_path: Path) -> None:
    size, name = max((len(payload), name) for name, payload in example.files().items())
    archive = example.write_zip(tmp_path / "big.zip")
    assert len(read_package(archive, max_bytes=size).files[name]) == size
    with pytest.raises(RosterInputError) as info:
        read_package(archive, max_bytes=size - 1)
    assert str(info.value) == (
        f"big.zip: {name}: {size:,} bytes, over the limit of {size - 1:,}"
        " (ABACUS_ROSTER__MAX_FILE_BYTES); nothing imported"
    )
    folder = example.write(tmp_path / "folder")
    with pytest.raises(RosterInputError, match=rf"^{name}: .* over the limit"):
        read_package(folder, max_bytes=size - 1)


def test_a_file_over_the_row_cap_is_refused() -> None:
    payload = b"sourcedId,status\n" + b"".join(b"r%d,\n" % n for n in range(3))
    assert len(read_csv("orgs.csv", payload, max_rows=3)[0]) == 4
    with pytest.raises(RosterInputError) as info:
        read_csv("orgs.csv", payload, max_rows=2)
    assert (
        str(info.value) == "orgs.csv: more than 2 rows (ABACUS_ROSTER__MAX_ROWS); nothing imported"
    )


def test_a_package_without_a_usable_manifest_imports_nothing(
    example: Package, tmp_path: Path
) -> None:
    """Refused before the broker is asked anything (the settings point nowhere)."""
    from abacus.roster.oneroster.importer import import_oneroster
    from abacus.settings import AbacusSettings

    config = EXAMPLES / "district" / "district.toml"
    pkg = example.copy()
    pkg.raw["manifest.csv"] = pkg.manifest().replace(
        b"oneroster.version,1.1", b"oneroster.version,1.0"
    )
    with pytest.raises(PackageError) as info:
        import_oneroster(
            AbacusSettings(), pkg.write_zip(tmp_path / "old.zip"), "d1", config_path=config
        )
    assert str(info.value) == (
        "old.zip: manifest.csv line 3 oneroster.version: must be 1.1 (only OneRoster 1.1 is"
        " read); nothing imported"
    )
    bare = tmp_path / "bare.zip"
    with zipfile.ZipFile(bare, "w") as archive:
        archive.writestr("users.csv", example.file_bytes("users.csv"))
    with pytest.raises(PackageError, match=r"manifest\.csv: file is missing"):
        import_oneroster(AbacusSettings(), bare, "d1", config_path=config)
