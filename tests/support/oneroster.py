"""OneRoster 1.1 CSV packages for tests, generated from the specification's tables.

The headers below are written out from the OneRoster 1.1 CSV binding, independently of the
product's own tables (so a wrong column there cannot agree with the tests). `from_upload`
turns an upload-document roster folder into the equivalent OneRoster package: one class
per teacher at the teacher's school, each student enrolled in the class of every teacher
3_teacher_students.csv links them to.
"""

from __future__ import annotations

import copy
import csv
import io
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

HEADERS = {
    "orgs.csv": "sourcedId,status,dateLastModified,name,type,identifier,parentSourcedId",
    "academicSessions.csv": (
        "sourcedId,status,dateLastModified,title,type,startDate,endDate,parentSourcedId,schoolYear"
    ),
    "courses.csv": (
        "sourcedId,status,dateLastModified,schoolYearSourcedId,title,courseCode,grades,"
        "orgSourcedId,subjects,subjectCodes"
    ),
    "classes.csv": (
        "sourcedId,status,dateLastModified,title,grades,courseSourcedId,classCode,classType,"
        "location,schoolSourcedId,termSourcedIds,subjects,subjectCodes,periods"
    ),
    "users.csv": (
        "sourcedId,status,dateLastModified,enabledUser,orgSourcedIds,role,username,userIds,"
        "givenName,familyName,middleName,identifier,email,sms,phone,agentSourcedIds,grades,"
        "password"
    ),
    "enrollments.csv": (
        "sourcedId,status,dateLastModified,classSourcedId,schoolSourcedId,userSourcedId,role,"
        "primary,beginDate,endDate"
    ),
    "demographics.csv": (
        "sourcedId,status,dateLastModified,birthDate,sex,americanIndianOrAlaskaNative,asian,"
        "blackOrAfricanAmerican,nativeHawaiianOrOtherPacificIslander,white,"
        "demographicRaceTwoOrMoreRaces,hispanicOrLatinoEthnicity,countryOfBirthCode,"
        "stateOfBirthAbbreviation,cityOfBirth,publicSchoolResidenceStatus"
    ),
}
MANIFEST_FILES = (
    "academicSessions",
    "categories",
    "classes",
    "classResources",
    "courses",
    "courseResources",
    "demographics",
    "enrollments",
    "lineItems",
    "orgs",
    "resources",
    "results",
    "users",
)
DELTA_TIME = "2026-01-15T08:30:00.000Z"
_NS = uuid.UUID("6f0c3b1e-2d4a-4f5b-9c8d-7e6f5a4b3c2d")


def guid(*parts: str) -> str:
    """A stable, GUID-looking sourcedId."""
    return str(uuid.uuid5(_NS, "/".join(parts)))


@dataclass
class Package:
    """Rows per file (column -> value; missing columns are blank) and the manifest's modes."""

    rows: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    modes: dict[str, str] = field(default_factory=dict)  # "users.csv" -> "bulk"
    headers: dict[str, list[str]] = field(default_factory=dict)  # overrides (broken packages)
    metadata: dict[str, list[str]] = field(default_factory=dict)  # extension columns per file
    raw: dict[str, bytes] = field(default_factory=dict)  # a file's bytes as given

    def copy(self) -> Package:
        return copy.deepcopy(self)

    def header(self, name: str) -> list[str]:
        if name in self.headers:
            return self.headers[name]
        return HEADERS[name].split(",") + self.metadata.get(name, [])

    def manifest(self) -> bytes:
        lines = ["propertyName,value", "manifest.version,1.0", "oneroster.version,1.1"]
        for stem in MANIFEST_FILES:
            lines.append(f"file.{stem},{self.modes.get(f'{stem}.csv', 'absent')}")
        lines += ["source.systemName,Test SIS", "source.systemCode,TSIS"]
        return ("\r\n".join(lines) + "\r\n").encode()

    def file_bytes(self, name: str) -> bytes:
        if name in self.raw:
            return self.raw[name]
        out = io.StringIO()
        writer = csv.writer(out)
        header = self.header(name)
        writer.writerow(header)
        for row in self.rows.get(name, []):
            writer.writerow([row.get(column, "") for column in header])
        return out.getvalue().encode()

    def files(self) -> dict[str, bytes]:
        out = {"manifest.csv": self.raw.get("manifest.csv", self.manifest())}
        for name, mode in self.modes.items():
            if mode != "absent" and (name in self.rows or name in self.raw):
                out[name] = self.file_bytes(name)
        return out

    def write(self, folder: Path) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        for name, payload in self.files().items():
            (folder / name).write_bytes(payload)
        return folder

    def write_zip(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, payload in self.files().items():
                archive.writestr(name, payload)
        return path

    def find(self, file: str, /, **match: str) -> dict[str, str]:
        for row in self.rows[file]:
            if all(row.get(k) == v for k, v in match.items()):
                return row
        raise KeyError(match)

    def line_of(self, file: str, /, **match: str) -> int:
        """The physical line of the first matching row (header = line 1)."""
        row = self.find(file, **match)
        return self.rows[file].index(row) + 2


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def _ceds(grade: str) -> str:
    return {"PK": "PK", "K": "KG", "KG": "KG"}.get(grade) or f"{int(grade):02d}"


def _iso(mmddyyyy: str) -> str:
    month, day, year = mmddyyyy.split("/")
    return f"{year}-{month}-{day}"


RACE_COLUMNS = {
    "American Indian or Alaskan Native": "americanIndianOrAlaskaNative",
    "Asian": "asian",
    "Black or African American": "blackOrAfricanAmerican",
    "Native Hawaiian or Other Pacific Islander": "nativeHawaiianOrOtherPacificIslander",
    "White": "white",
    "Two or More Races": "demographicRaceTwoOrMoreRaces",
}


def from_upload(folder: Path, district_name: str = "Maple Valley Unified") -> Package:
    """The OneRoster equivalent of an upload-document roster folder (all files bulk)."""
    users, students = _read(folder / "1_users.csv"), _read(folder / "2_students.csv")
    links = _read(folder / "3_teacher_students.csv")
    district = guid("org", "district")
    schools: dict[str, str] = {}
    for row in users:
        for name in filter(None, row["Building_Names"].split(";")):
            schools.setdefault(name, guid("org", name))
    for row in students:
        schools.setdefault(row["Building_Name"], guid("org", row["Building_Name"]))
    orgs = [{"sourcedId": district, "name": district_name, "type": "district", "identifier": "D1"}]
    orgs += [
        {"sourcedId": sid, "name": name, "type": "school", "parentSourcedId": district}
        for name, sid in schools.items()
    ]
    term = guid("term", "2025-2026")
    sessions = [
        {
            "sourcedId": term,
            "title": "2025-2026",
            "type": "schoolYear",
            "startDate": "2025-08-15",
            "endDate": "2026-06-12",
            "schoolYear": "2026",
        }
    ]
    course = guid("course", "math")
    courses = [{"sourcedId": course, "title": "Math", "orgSourcedId": district}]
    pkg_users, classes, enrollments, demographics = [], [], [], []
    user_sid = {}
    for row in users:
        sid = user_sid[row["Employee_ID"]] = guid("staff", row["Employee_ID"])
        buildings = [schools[b] for b in filter(None, row["Building_Names"].split(";"))]
        user_type = row["User_Type"]
        orgs_of = [district, *buildings] if user_type in {"3", "4"} else buildings
        pkg_users.append(
            {
                "sourcedId": sid,
                "enabledUser": "true",
                "orgSourcedIds": ",".join(orgs_of),
                "role": "teacher" if user_type == "1" else "administrator",
                "username": row["Username"],
                "givenName": row["First_Name"],
                "familyName": row.get("Last_Name", ""),
                "identifier": row["Employee_ID"],
                "email": row["Email"],
            }
        )
        if user_type == "1":
            klass = guid("class", row["Employee_ID"])
            classes.append(
                {
                    "sourcedId": klass,
                    "title": f"Math {row['Employee_ID']}",
                    "courseSourcedId": course,
                    "classType": "homeroom",
                    "schoolSourcedId": buildings[0],
                    "termSourcedIds": term,
                }
            )
            enrollments.append(
                {
                    "sourcedId": guid("enr", row["Employee_ID"]),
                    "classSourcedId": klass,
                    "schoolSourcedId": buildings[0],
                    "userSourcedId": sid,
                    "role": "teacher",
                    "primary": "true",
                }
            )
    for row in students:
        sid = user_sid[row["StudentID"]] = guid("student", row["StudentID"])
        pkg_users.append(
            {
                "sourcedId": sid,
                "enabledUser": "true",
                "orgSourcedIds": schools[row["Building_Name"]],
                "role": "student",
                "username": row["District_Data_1"],
                "givenName": row["First"],
                "familyName": row["Last"],
                "identifier": row["StudentID"],
                "grades": _ceds(row["Grade"]),
                "metadata.ell": row["ELL"],
                "metadata.iep": "true" if row["SPED"] == "Y" else "false",
                "metadata.district_data_2": row["District_Data_2"],
            }
        )
        demographics.append(
            {
                "sourcedId": sid,
                "birthDate": _iso(row["Date_of_Birth"]),
                "sex": {"F": "female", "M": "male"}[row["Gender"]],
                **{c: "true" if row["Race"] == r else "false" for r, c in RACE_COLUMNS.items()},
                "hispanicOrLatinoEthnicity": str(row["Ethnicity"] == "Hispanic/Latino").lower(),
            }
        )
    classes_by_teacher = {c["title"].split()[-1]: c for c in classes}
    for link in links:
        klass = classes_by_teacher[link["EmployeeID"]]
        enrollments.append(
            {
                "sourcedId": guid("enr", link["EmployeeID"], link["StudentID"]),
                "classSourcedId": klass["sourcedId"],
                "schoolSourcedId": klass["schoolSourcedId"],
                "userSourcedId": user_sid[link["StudentID"]],
                "role": "student",
                "beginDate": "2025-08-15",
            }
        )
    rows = {
        "orgs.csv": orgs,
        "academicSessions.csv": sessions,
        "courses.csv": courses,
        "classes.csv": classes,
        "users.csv": pkg_users,
        "enrollments.csv": enrollments,
        "demographics.csv": demographics,
    }
    return Package(
        rows=rows,
        modes=dict.fromkeys(rows, "bulk"),
        metadata={"users.csv": ["metadata.ell", "metadata.iep", "metadata.district_data_2"]},
    )


def as_delta(pkg: Package, changes: dict[str, list[dict[str, str]]]) -> Package:
    """A delta package: only `changes` (rows with status set), every other file absent."""
    out = Package(modes={}, metadata=copy.deepcopy(pkg.metadata))
    for name, rows in changes.items():
        out.modes[name] = "delta"
        out.rows[name] = [{"dateLastModified": DELTA_TIME, **row} for row in rows]
    return out
