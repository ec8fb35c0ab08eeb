"""Attempts at one batch survive a crash (a file), reset on progress, and can be forgiven."""

from __future__ import annotations

from pathlib import Path

from streams.attempts import AttemptLog


def _run(path: Path, epoch: str = "e1") -> AttemptLog:
    """A new worker process reading what the runs before it left."""
    return AttemptLog(path, group="g", epoch=epoch)


def test_each_run_that_dies_on_the_same_offset_adds_one(tmp_path: Path) -> None:
    path = tmp_path / "attempts.json"
    assert _run(path).attempt(0, 100) == 1
    assert _run(path).attempt(0, 100) == 2
    third = _run(path)
    assert third.attempt(0, 100) == 3
    assert third.attempt(0, 100) == 3, "counted once per run"
    assert third.attempt(1, 7) == 1, "partitions count on their own"


def test_progress_past_the_offset_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "attempts.json"
    _run(path).attempt(0, 100)
    run = _run(path)
    assert run.attempt(0, 100) == 2
    assert run.attempt(0, 250) == 1  # the batch at 100 was stored; the next one began
    assert _run(path).attempt(0, 250) == 2
    assert _run(path).attempt(0, 100) == 1


def test_a_forgiven_run_leaves_the_count_as_it_was(tmp_path: Path) -> None:
    path = tmp_path / "attempts.json"
    _run(path).attempt(0, 100)
    outage = _run(path)
    assert outage.attempt(0, 100) == 2
    outage.forgive()  # the store was unreachable: not this batch's fault
    assert _run(path).attempt(0, 100) == 2


def test_a_new_broker_epoch_or_a_broken_file_starts_from_zero(tmp_path: Path) -> None:
    path = tmp_path / "attempts.json"
    _run(path).attempt(0, 100)
    assert _run(path, epoch="e2").attempt(0, 100) == 1
    path.write_text("{not json")
    assert _run(path).attempt(0, 100) == 1


def test_a_released_partition_keeps_only_the_counts_of_earlier_runs(tmp_path: Path) -> None:
    path = tmp_path / "attempts.json"
    _run(path).attempt(0, 100)  # a run that crashed on it
    revoked = _run(path)
    assert revoked.attempt(0, 100) == 2
    assert revoked.attempt(1, 50) == 1
    revoked.release(0)  # partition 0 was revoked mid-batch: that was no crash
    revoked.release(1)
    assert _run(path).attempt(0, 100) == 2, "the earlier crash still counts, this run not"
    assert _run(path).attempt(1, 50) == 1, "as if the revoked run never tried it"


def test_a_partition_released_and_assigned_again_counts_again_in_the_same_run(
    tmp_path: Path,
) -> None:
    path = tmp_path / "attempts.json"
    run = _run(path)
    assert run.attempt(0, 100) == 1
    run.release(0)
    assert run.attempt(0, 100) == 1  # read again after the reassignment: counted anew
    assert _run(path).attempt(0, 100) == 2  # ...and that run then died


def test_done_forgets_every_count_of_a_record(tmp_path: Path) -> None:
    path = tmp_path / "attempts.json"
    _run(path).attempt(0, 7)
    run = _run(path)
    assert run.attempt(0, 7) == 2
    run.done(0)  # handled to its end (an export request with its final status out)
    assert _run(path).attempt(0, 7) == 1
