"""The retention sweep: an export's CSV and manifest go once its link has expired, and
nothing else in the export directory is touched."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from consumers.retention import SweepResult, sweep_exports

NOW = 1_800_000_000.0
DAY = 24 * 3600


def touch(path: Path, age_s: float, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, (NOW - age_s, NOW - age_s))
    return path


def test_expired_exports_are_deleted_whole_and_fresh_ones_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = [touch(tmp_path / "maple" / "r1.csv", 8 * DAY, "abc"),
           touch(tmp_path / "maple" / "r1.manifest.json", 8 * DAY, "{}")]  # fmt: skip
    # A crash left a partial file an old time ago: it goes too.
    stale = touch(tmp_path / "oak" / "r9.csv.partial", 9 * DAY)
    fresh = [touch(tmp_path / "maple" / "r2.csv", 1 * DAY),
             touch(tmp_path / "maple" / "r2.manifest.json", 1 * DAY)]  # fmt: skip
    # The manifest is written after the link is signed: the newest file decides.
    mixed = [touch(tmp_path / "oak" / "r3.csv", 7 * DAY + 5),
             touch(tmp_path / "oak" / "r3.manifest.json", 7 * DAY - 5)]  # fmt: skip
    foreign = [touch(tmp_path / "maple" / "notes.txt", 30 * DAY),
               touch(tmp_path / "README", 30 * DAY)]  # fmt: skip

    with caplog.at_level(logging.INFO, logger="consumers.retention"):
        result = sweep_exports(tmp_path, retention_s=7 * DAY, now=NOW)

    assert result == SweepResult(exports=2, files=3, bytes=3 + 2 + 1)
    assert not any(p.exists() for p in [*old, stale])
    assert all(p.exists() for p in [*fresh, *mixed, *foreign])
    [record] = caplog.records
    assert record.getMessage() == "deleted 2 expired export(s): 3 file(s), 6 byte(s)"


def test_exactly_at_expiry_the_files_go(tmp_path: Path) -> None:
    touch(tmp_path / "maple" / "r1.csv", 100)
    assert sweep_exports(tmp_path, retention_s=100, now=NOW).exports == 1
    assert not (tmp_path / "maple" / "r1.csv").exists()


def test_nothing_to_do_is_silent(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="consumers.retention"):
        assert sweep_exports(tmp_path / "absent", retention_s=1, now=NOW) == SweepResult(0, 0, 0)
        touch(tmp_path / "maple" / "r1.csv", 0)
        assert sweep_exports(tmp_path, retention_s=60, now=NOW) == SweepResult(0, 0, 0)
    assert caplog.records == []


def test_only_regular_files_named_like_an_export_are_considered(tmp_path: Path) -> None:
    (tmp_path / "maple" / "r1.csv").mkdir(parents=True)  # a directory, not an export
    touch(tmp_path / "elsewhere" / "r2.csv", 10 * DAY)
    (tmp_path / "linked").symlink_to(tmp_path / "elsewhere")  # not a district folder
    (tmp_path / "maple" / "r3.csv").symlink_to(tmp_path / "elsewhere" / "r2.csv")
    os.utime(tmp_path / "maple" / "r3.csv", (NOW - 10 * DAY,) * 2, follow_symlinks=False)
    result = sweep_exports(tmp_path, retention_s=DAY, now=NOW)
    # Only the regular file in a real folder goes (once); symlinks are left alone.
    assert result == SweepResult(exports=1, files=1, bytes=1)
    assert not (tmp_path / "elsewhere" / "r2.csv").exists()
    assert (tmp_path / "maple" / "r1.csv").is_dir()
    assert (tmp_path / "maple" / "r3.csv").is_symlink()
    assert (tmp_path / "linked").is_symlink()
