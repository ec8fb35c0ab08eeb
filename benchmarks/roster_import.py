"""Benchmark: `abacus roster import` of a generated N-student roster on the embedded stack.

    .venv/bin/python benchmarks/roster_import.py --students 100000

Starts its own Tansu broker on a free port and a worker subprocess with a throwaway home,
then measures: the first import (validate + read topics + diff + publish, all new), a
re-import of the same files (all unchanged: nothing published), and the time until the
worker has stored every record in ClickHouse. Baseline in the same run: a bare kafka-python
producer sending the same number of JSON records of the same size (ratio printed).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from kafka import KafkaProducer

from abacus.embedded.broker import EmbeddedBroker, free_port
from abacus.kafka_clients import kafka_python_config
from abacus.roster.importer import import_roster
from abacus.roster.validation import read_roster_dir, validate_roster
from abacus.settings import AbacusSettings

STUDENTS_HEADER = (
    "StudentID,Date_of_Birth,Last,First,Grade,Building_Name,Gender,SPED,Ethnicity,Race,ELL,"
    "District_Data_1,District_Data_2\n"
)
CONFIG = 'name = "Bench District"\ntimezone = "America/Chicago"\nschool_year_start = "08-15"\n'


def write_roster(folder: Path, students: int, seed: int = 7) -> tuple[int, int, int]:
    """A valid roster: one teacher per 25 students, 1-2 teachers each, 20 buildings."""
    rng = random.Random(seed)  # noqa: S311 - test data, not crypto
    folder.mkdir(parents=True, exist_ok=True)
    teachers = max(1, students // 25)
    buildings = [f"School {n:02d}" for n in range(20)]
    with (folder / "1_users.csv").open("w") as fh:
        fh.write(
            "Employee_ID,Username,Email,Password,First_Name,Last_Name,Building_Names,User_Type\n"
        )
        for t in range(teachers):
            b = buildings[t % len(buildings)]
            fh.write(f"E{t:06d},teacher{t},t{t}@bench.example,,Tea{t},Cher{t},{b},1\n")
    grades = ["PK", "K", *(str(g) for g in range(1, 13))]
    links = 0
    with (
        (folder / "2_students.csv").open("w") as st,
        (folder / "3_teacher_students.csv").open("w") as ln,
    ):
        st.write(STUDENTS_HEADER)
        ln.write("EmployeeID,StudentID\n")
        for s in range(students):
            teacher = s % teachers
            b = buildings[teacher % len(buildings)]
            dob = f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{rng.randint(2008, 2021)}"
            st.write(
                f"S{s:07d},{dob},Last{s},First{s},{rng.choice(grades)},{b},"
                f"{rng.choice('FM')},{rng.choice('YN')},Hispanic/Latino,White,{rng.choice('YN')},"
                f"user{s},ALT{s}\n"
            )
            ln.write(f"E{teacher:06d},S{s:07d}\n")
            links += 1
            if s % 3 == 0 and teachers > 1:
                # Another teacher of the same building (teachers t and t+20 share one).
                other = (teacher + len(buildings)) % teachers
                if other != teacher and other % len(buildings) == teacher % len(buildings):
                    ln.write(f"E{other:06d},S{s:07d}\n")
                    links += 1
    (folder / "district.toml").write_text(CONFIG)
    return teachers, students, links


def baseline_produce(settings: AbacusSettings, n: int, size: int) -> float:
    producer = KafkaProducer(
        **kafka_python_config(settings.broker), acks="all", linger_ms=20, batch_size=512 * 1024
    )
    topic = settings.topics.name("baseline")
    value = b"x" * size
    started = time.perf_counter()
    for i in range(n):
        producer.send(topic, key=f"bench|S{i:07d}".encode(), value=value)
    producer.flush()
    elapsed = time.perf_counter() - started
    producer.close()
    return elapsed


def ready(web_port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/readyz", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def stored(web_port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/metrics", timeout=2) as r:
            body = r.read().decode()
    except OSError:
        return 0.0
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith("abacus_roster_records_total{") and 'outcome="stored"' in line
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--no-worker", action="store_true", help="skip the ClickHouse part")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="abacus-bench-") as tmp:
        root = Path(tmp)
        folder = root / "roster"
        users, students, links = write_roster(folder, args.students)
        total = users + students + links + 1
        print(f"roster: {users} users, {students} students, {links} links (generated)")

        started = time.perf_counter()
        validation = validate_roster(read_roster_dir(folder))
        validate_s = time.perf_counter() - started
        assert validation.ok, validation.errors[:3]

        port, web_port = free_port(), free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ABACUS_")},
            "ABACUS_HOME": str(root / "home"),
            "ABACUS_BROKER__BOOTSTRAP": f"127.0.0.1:{port}",
            "ABACUS_WEB__PORT": str(web_port),
        }
        os.environ.update(env)
        settings = AbacusSettings()
        with EmbeddedBroker(port=port, log_path=root / "broker.log"):
            worker = None
            if not args.no_worker:
                log = (root / "worker.log").open("ab")
                worker = subprocess.Popen(
                    [sys.executable, "-m", "abacus", "worker"], env=env, stdout=log, stderr=log
                )
            try:
                while worker is not None and not ready(web_port):
                    if worker.poll() is not None:
                        raise SystemExit(f"worker exited; see {root / 'worker.log'}")
                    time.sleep(0.2)
                started = time.perf_counter()
                first = import_roster(settings, folder, "bench")
                first_s = time.perf_counter() - started
                assert first.published == total, (first.published, total)
                if worker is not None:
                    while stored(web_port) < total:
                        if worker.poll() is not None:
                            raise SystemExit(f"worker exited; see {root / 'worker.log'}")
                        time.sleep(0.2)
                    stored_s = time.perf_counter() - started
                started = time.perf_counter()
                again = import_roster(settings, folder, "bench")
                again_s = time.perf_counter() - started
                assert again.published == 0
                base_s = baseline_produce(settings, total, 230)
            finally:
                if worker is not None:
                    worker.terminate()
                    worker.wait(timeout=60)

    print(f"validate only:           {validate_s:6.2f} s")
    print(
        f"first import (all new):  {first_s:6.2f} s  {total / first_s:9,.0f} records/s"
        f"  ({total} records published)"
    )
    if not args.no_worker:
        print(f"  ... all stored in ClickHouse: {stored_s:6.2f} s after the import started")
    print(f"re-import (unchanged):   {again_s:6.2f} s  (reads {total} records back, publishes 0)")
    print(
        f"baseline bare produce:   {base_s:6.2f} s  {total / base_s:9,.0f} records/s"
        f"  -> first import / baseline = {first_s / base_s:.1f}x"
    )


if __name__ == "__main__":
    main()
