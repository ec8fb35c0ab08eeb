"""The signed-link route's pure checks: what a link's query may hold, and which file a
download URL may name (both parts strict, the resolved path inside the export directory)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from abacus.export.files import ExportPathError, export_file, export_paths
from abacus.export.links import LinkError, sign_link, verify_link

KEY = b"k" * 32
NOW = 1_800_000_000


def query_of(link: str) -> dict[str, str]:
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(link).query))


@pytest.mark.parametrize(
    "sig", ["é" * 64, "é", "\u0661" * 64, "A" * 64, "0" * 63, "0" * 64 + "\n", ""]
)
def test_a_signature_that_is_not_64_lowercase_hex_digits_is_malformed(sig: str) -> None:
    link = sign_link("http://h", "/exports/d/r.csv", key=KEY, expires=NOW + 60, requester="01")
    query = {**query_of(link), "sig": sig}
    with pytest.raises(LinkError, match="malformed link"):
        verify_link("/exports/d/r.csv", query, key=KEY, now=NOW)


@pytest.mark.parametrize("expires", ["\u0661\u0662", "+5", " 5", "5\n", "-1", "1e9", ""])
def test_expires_must_be_ascii_digits(expires: str) -> None:
    link = sign_link("http://h", "/exports/d/r.csv", key=KEY, expires=NOW + 60, requester="01")
    query = {**query_of(link), "expires": expires}
    with pytest.raises(LinkError, match="malformed link"):
        verify_link("/exports/d/r.csv", query, key=KEY, now=NOW)


def test_a_good_link_still_verifies() -> None:
    link = sign_link("http://h", "/exports/d/r.csv", key=KEY, expires=NOW + 60, requester="01")
    assert verify_link("/exports/d/r.csv", query_of(link), key=KEY, now=NOW) == "01"


def test_a_download_names_a_csv_of_a_district_inside_the_export_dir(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    path = export_file(root, "maple-valley", "exp-0a1b.csv")
    assert path == (root / "maple-valley" / "exp-0a1b.csv").resolve()


@pytest.mark.parametrize(
    ("district", "name"),
    [
        ("/etc", "f.csv"),  # %2F decoded: an absolute path would replace the export dir
        ("/tmp/x", "f.csv"),
        ("..", "f.csv"),
        ("a/../..", "f.csv"),
        ("maple", "../../f.csv"),
        ("maple", "a/b.csv"),
        ("maple", ".csv"),
        ("maple", "r1.CSV"),
        ("maple", "r1.manifest.json"),
        ("maple", "r1.csv.partial"),
        ("maple", "r1.csv\x00"),
        ("", "r1.csv"),
        ("maple\n", "r1.csv"),
        ("m" * 65, "r1.csv"),
        ("maple", "r" * 65 + ".csv"),
        ("mäple", "r1.csv"),
    ],
)
def test_anything_else_is_an_invalid_path(tmp_path: Path, district: str, name: str) -> None:
    with pytest.raises(ExportPathError, match="invalid path"):
        export_file(tmp_path / "exports", district, name)


def test_a_symlink_out_of_the_export_dir_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    root.mkdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "r1.csv").write_text("x")
    os.symlink(tmp_path / "elsewhere", root / "maple")
    with pytest.raises(ExportPathError, match="invalid path"):
        export_file(root, "maple", "r1.csv")


def test_the_writer_uses_the_same_names(tmp_path: Path) -> None:
    paths = export_paths(tmp_path, "maple", "r1")
    assert (paths.csv.name, paths.manifest.name, paths.partial.name) == (
        "r1.csv", "r1.manifest.json", "r1.csv.partial",
    )  # fmt: skip
    assert export_file(tmp_path, "maple", paths.csv.name) == paths.csv.resolve()
    with pytest.raises(ExportPathError):
        export_paths(tmp_path, "../x", "r1")
