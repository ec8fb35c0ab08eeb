"""Benchmark: `abacus roster import` of a generated N-student district, in both input formats.

    .venv/bin/python benchmarks/roster_import.py --students 100000 [--format both]

Starts its own Tansu broker on a free port and a worker subprocess with a throwaway home,
then, per format (the upload document's three files; a OneRoster 1.1 zip), measures: the
`abacus roster import` command (a subprocess, as an operator runs it) until it returns and
until the worker has stored every record in ClickHouse; the same command again with the
same files, which must publish nothing (checked on the topics' end offsets); and the pure
validation alone. Baselines in the same run: Python's `csv` parsing the same files (the
ratio the issue asks for), and bare kafka-python and aiokafka producers sending as many
records of the same size (what publishing costs at best; the importer publishes with
aiokafka). The machine may be shared: the CPU seconds of the import command and of the
worker, and the load average, are printed beside the wall times.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaProducer
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from abacus.embedded.broker import EmbeddedBroker, free_port
from abacus.kafka_clients import aiokafka_config, kafka_python_config
from abacus.roster.oneroster.manifest import parse_manifest
from abacus.roster.oneroster.package import read_package
from abacus.roster.oneroster.state import empty_state
from abacus.roster.oneroster.upload import build_upload
from abacus.roster.validation import read_roster_dir, validate_roster
from abacus.settings import AbacusSettings

STUDENTS_HEADER = (
    "StudentID,Date_of_Birth,Last,First,Grade,Building_Name,Gender,SPED,Ethnicity,Race,ELL,"
    "District_Data_1,District_Data_2\n"
)
CONFIG = 'name = "Bench District"\ntimezone = "America/Chicago"\nschool_year_start = "08-15"\n'
SCHOOLS = 20
GRADES = ["PK", "K", *(str(g) for g in range(1, 13))]
CEDS = {"PK": "PK", "K": "KG", **{str(g): f"{g:02d}" for g in range(1, 13)}}


def letters(n: int) -> str:
    """A number written in letters (0 -> "a", 27 -> "bb"): names are type A, no digits."""
    out = ""
    while True:
        n, digit = divmod(n, 26)
        out = "abcdefghijklmnopqrstuvwxyz"[digit] + out
        if n == 0:
            return out


@dataclass(frozen=True)
class District:
    """One generated district, the same in both formats."""

    students: int
    seed: int = 7

    @property
    def teachers(self) -> int:
        return max(1, self.students // 25)

    def rows(self) -> tuple[list[tuple[int, int]], list[tuple[int, str, str, str, str]]]:
        """Links (teacher, student) and students (n, dob, grade, sped, ell): one teacher per
        25 students, a third of them with a second teacher of the same school."""
        rng = random.Random(self.seed)  # noqa: S311 - test data, not crypto
        links, students = [], []
        for s in range(self.students):
            teacher = s % self.teachers
            dob = f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/{rng.randint(2008, 2021)}"
            students.append((s, dob, rng.choice(GRADES), rng.choice("YN"), rng.choice("YN")))
            links.append((teacher, s))
            other = (teacher + SCHOOLS) % self.teachers
            if s % 3 == 0 and other != teacher and other % SCHOOLS == teacher % SCHOOLS:
                links.append((other, s))
        return links, students


def write_upload(folder: Path, district: District) -> int:
    """The upload document's three files; returns how many records an import publishes."""
    folder.mkdir(parents=True, exist_ok=True)
    links, students = district.rows()
    with (folder / "1_users.csv").open("w") as fh:
        fh.write(
            "Employee_ID,Username,Email,Password,First_Name,Last_Name,Building_Names,User_Type\n"
        )
        for t in range(district.teachers):
            school = f"School {t % SCHOOLS:02d}"
            name = letters(t)
            fh.write(f"E{t:06d},teacher{t},t{t}@bench.example,,Tea{name},Cher{name},{school},1\n")
    with (folder / "2_students.csv").open("w") as fh:
        fh.write(STUDENTS_HEADER)
        for s, dob, grade, sped, ell in students:
            school = f"School {s % district.teachers % SCHOOLS:02d}"
            name = letters(s)
            fh.write(
                f"S{s:07d},{dob},Last{name},First{name},{grade},{school},F,{sped},"
                f"Hispanic/Latino,White,{ell},user{s},ALT{s}\n"
            )
    with (folder / "3_teacher_students.csv").open("w") as fh:
        fh.write("EmployeeID,StudentID\n")
        fh.writelines(f"E{t:06d},S{s:07d}\n" for t, s in links)
    (folder / "district.toml").write_text(CONFIG)
    return district.teachers + district.students + len(links) + 1


def write_oneroster(path: Path, district: District) -> int:
    """The same district as a OneRoster 1.1 zip (one class per teacher); returns the number of
    roster records an import publishes (the importer's own state records come on top)."""
    links, students = district.rows()
    files: dict[str, list[str]] = {
        "orgs.csv": ["sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId"],
        "users.csv": [
            "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,"
            "givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,"
            "password,metadata.ell,metadata.iep"
        ],
        "classes.csv": [
            "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,"
            "location,schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods"
        ],
        "enrollments.csv": [
            "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,"
            "primary,beginDate,endDate"
        ],
    }
    files["orgs.csv"].append("dist,,,Bench District,district,,")
    files["orgs.csv"] += [f"sch{n},,,School {n:02d},school,,dist" for n in range(SCHOOLS)]
    for t in range(district.teachers):
        school = f"sch{t % SCHOOLS}"
        files["users.csv"].append(
            f"tch{t},,,true,{school},teacher,teacher{t},,Tea{letters(t)},Cher{letters(t)},,E{t:06d},"
            f"t{t}@bench.example,,,,,,,"
        )
        files["classes.csv"].append(f"cls{t},,,Math {t},,crs,,homeroom,,{school},term,,,")
        files["enrollments.csv"].append(f"et{t},,,cls{t},{school},tch{t},teacher,true,,")
    for s, _dob, grade, sped, ell in students:
        school = f"sch{s % district.teachers % SCHOOLS}"
        files["users.csv"].append(
            f"stu{s},,,true,{school},student,user{s},,First{letters(s)},Last{letters(s)},,S{s:07d},,,,,"
            f"{CEDS[grade]},,{ell},{sped}"
        )
    for t, s in links:
        files["enrollments.csv"].append(f"e{t}-{s},,,cls{t},sch{t % SCHOOLS},stu{s},student,,,")
    modes = {"orgs": "bulk", "users": "bulk", "classes": "bulk", "enrollments": "bulk"}
    manifest = ["propertyName,value", "manifest.version,1.0", "oneroster.version,1.1"]
    for stem in ("academicSessions", "categories", "classes", "classResources", "courses",
                 "courseResources", "demographics", "enrollments", "lineItems", "orgs",
                 "resources", "results", "users"):  # fmt: skip
        manifest.append(f"file.{stem},{modes.get(stem, 'absent')}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.csv", "\n".join(manifest) + "\n")
        for name, lines in files.items():
            archive.writestr(name, "\n".join(lines) + "\n")
    (path.parent / "district.toml").write_text(CONFIG)
    return district.teachers + district.students + len(links) + 1


# --- measurements --------------------------------------------------------------------------------


def csv_parse_seconds(payloads: list[bytes]) -> float:
    """The baseline: decode and split every file with Python's csv module, nothing else."""
    started = time.perf_counter()
    rows = 0
    for payload in payloads:
        rows += sum(1 for _ in csv.reader(io.StringIO(payload.decode("utf-8-sig"), newline="")))
    return time.perf_counter() - started


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


def baseline_aiokafka(settings: AbacusSettings, n: int, size: int) -> float:
    """The same records through aiokafka: what switching the importer's publisher would buy."""

    async def run() -> float:
        producer = AIOKafkaProducer(
            **aiokafka_config(settings.broker),
            acks="all",
            linger_ms=20,
            max_batch_size=512 * 1024,
        )
        await producer.start()
        try:
            topic, value = settings.topics.name("baseline-aio"), b"x" * size
            started = time.perf_counter()
            futures = [
                await producer.send(topic, key=f"bench|S{i:07d}".encode(), value=value)
                for i in range(n)
            ]
            await asyncio.gather(*futures)
            return time.perf_counter() - started
        finally:
            await producer.stop()

    return asyncio.run(run())


def end_offsets(settings: AbacusSettings) -> dict[str, int]:
    t = settings.topics
    names = [t.roster_users, t.roster_students, t.roster_links, t.district_config]
    consumer = KafkaConsumer(**kafka_python_config(settings.broker))
    try:
        parts = [TopicPartition(t.name(n), 0) for n in (*names, t.roster_oneroster)]
        return {tp.topic: offset for tp, offset in consumer.end_offsets(parts).items()}
    finally:
        consumer.close()


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:  # noqa: S310 - loopback http only
            return r.status, r.read().decode()
    except OSError:
        return 0, ""


def stored(web_port: int) -> float:
    """Roster records the worker has stored (the OneRoster importer's state not counted)."""
    body = get(f"http://127.0.0.1:{web_port}/metrics")[1]
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line.startswith("abacus_roster_records_total{")
        and 'outcome="stored"' in line
        and 'kind="oneroster_state"' not in line
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a running process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_import(env: dict[str, str], path: Path, district: str) -> tuple[float, float]:
    """The command as an operator runs it: (wall seconds, CPU seconds it used)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "abacus", "roster", "import", str(path), "--district", district],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"import failed:\n{proc.stdout[-2000:]}\n{proc.stderr}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, cpu


def measure(name: str, path: Path, total: int, payloads: list[bytes], ctx: dict) -> dict:
    env, settings, worker, web_port = ctx["env"], ctx["settings"], ctx["worker"], ctx["web_port"]
    district = f"bench-{name}"
    parse_s = csv_parse_seconds(payloads)
    started = time.perf_counter()
    if name == "oneroster":
        package = read_package(path)
        upload = build_upload(
            district, parse_manifest(package.files["manifest.csv"]), package.files,
            package.present, empty_state(), today=datetime.now(UTC).date(),
        )  # fmt: skip
        assert not upload.errors, upload.errors[:3]
    else:
        checked = validate_roster(read_roster_dir(path))
        assert checked.ok, checked.errors[:3]
        assert not checked.warnings, checked.warnings[:3]
    validate_s = time.perf_counter() - started
    before = stored(web_port) if worker else 0.0
    worker_cpu = cpu_seconds(worker.pid) if worker else 0.0
    load = os.getloadavg()[0]
    started = time.perf_counter()
    first_s, first_cpu = run_import(env, path, district)
    stored_s = None
    while worker is not None and stored(web_port) - before < total:
        if worker.poll() is not None:
            raise SystemExit("worker exited; see its log")
        time.sleep(0.05)
    if worker is not None:
        stored_s = time.perf_counter() - started
        worker_cpu = cpu_seconds(worker.pid) - worker_cpu
    offsets = end_offsets(settings)
    again_s, again_cpu = run_import(env, path, district)
    assert end_offsets(settings) == offsets, "the second import published something"
    return {"parse": parse_s, "validate": validate_s, "first": first_s, "stored": stored_s,
            "again": again_s, "records": total, "first_cpu": first_cpu,
            "worker_cpu": worker_cpu, "again_cpu": again_cpu,
            "load": (load, os.getloadavg()[0]),
            # Children waited for so far: the import commands (not the running worker).
            "rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}  # fmt: skip


def report(name: str, m: dict) -> None:
    p = m["parse"]
    print(f"[{name}] {m['records']} roster records")
    print(f"  csv parsing alone (baseline): {p:6.2f} s")
    print(f"  validate + map (pure):        {m['validate']:6.2f} s  ({m['validate'] / p:.1f}x csv)")
    print(
        f"  import command, first:        {m['first']:6.2f} s  ({m['first'] / p:.1f}x csv;"
        f" {m['first_cpu']:.2f} s CPU)"
    )
    if m["stored"] is not None:
        print(
            f"  ... all stored in ClickHouse: {m['stored']:6.2f} s  ({m['stored'] / p:.1f}x csv;"
            f" worker {m['worker_cpu']:.2f} s CPU meanwhile)"
        )
    print(
        f"  import command, same files:   {m['again']:6.2f} s  (published nothing: checked;"
        f" {m['again_cpu']:.2f} s CPU)"
    )
    print(f"  load average (1 min) at start / end: {m['load'][0]:.1f} / {m['load'][1]:.1f}")
    print(f"  peak RSS of an import command so far: {m['rss_mb']:,.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100_000)
    parser.add_argument("--format", choices=("easycbm", "oneroster", "both"), default="both")
    parser.add_argument("--no-worker", action="store_true", help="skip the ClickHouse part")
    args = parser.parse_args()
    district = District(args.students)
    with tempfile.TemporaryDirectory(prefix="abacus-bench-") as tmp:
        root = Path(tmp)
        inputs = {}
        if args.format in ("easycbm", "both"):
            folder = root / "easycbm"
            total = write_upload(folder, district)
            payloads = [p.read_bytes() for p in sorted(folder.glob("*.csv"))]
            inputs["easycbm"] = (folder, total, payloads)
        if args.format in ("oneroster", "both"):
            path = root / "oneroster" / "district.zip"
            total = write_oneroster(path, district)
            with zipfile.ZipFile(path) as archive:
                payloads = [archive.read(n) for n in archive.namelist()]
            inputs["oneroster"] = (path, total, payloads)
        print(f"district: {district.teachers} teachers, {district.students} students (generated)")

        port, web_port = free_port(), free_port()
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ABACUS_")},
            "ABACUS_HOME": str(root / "home"),
            "ABACUS_BROKER__BOOTSTRAP": f"127.0.0.1:{port}",
            "ABACUS_WEB__PORT": str(web_port),
        }
        os.environ.update(env)
        settings = AbacusSettings()
        results = {}
        with EmbeddedBroker(port=port, log_path=root / "broker.log"):
            worker = None
            if not args.no_worker:
                log = (root / "worker.log").open("ab")
                worker = subprocess.Popen(
                    [sys.executable, "-m", "abacus", "worker"], env=env, stdout=log, stderr=log
                )
            try:
                while worker is not None and get(f"http://127.0.0.1:{web_port}/readyz")[0] != 200:
                    if worker.poll() is not None:
                        raise SystemExit(f"worker exited; see {root / 'worker.log'}")
                    time.sleep(0.2)
                ctx = {"env": env, "settings": settings, "worker": worker, "web_port": web_port}
                for name, (path, total, payloads) in inputs.items():
                    results[name] = measure(name, path, total, payloads, ctx)
                produce_n = max(m["records"] for m in results.values())
                base_s = baseline_produce(settings, produce_n, 230)
                aio_s = baseline_aiokafka(settings, produce_n, 230)
            finally:
                if worker is not None:
                    worker.terminate()
                    worker.wait(timeout=60)
    for name, m in results.items():
        report(name, m)
    for client, seconds in (("kafka-python", base_s), ("aiokafka", aio_s)):
        print(
            f"bare {client} produce of {produce_n} records: {seconds:6.2f} s"
            f"  ({produce_n / seconds:,.0f} records/s)"
        )


if __name__ == "__main__":
    main()
