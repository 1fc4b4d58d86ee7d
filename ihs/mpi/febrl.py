"""The FEBRL record-linkage benchmark as FHIR Patients, with its truth.

FEBRL (Peter Christen, ANU) ships synthetic records with typos, phonetic and OCR errors, swapped
and missing fields; `rec-<N>-org` and `rec-<N>-dup-<k>` are the same person N. Each record becomes
a Patient: names, birth date (dropped when it is no valid calendar date, as a registration system
would refuse it), home address, and optionally the social security number as an `SS` identifier.
The archive is read in place.
"""
from __future__ import annotations

import csv
import io
import tarfile
from datetime import date
from pathlib import Path

FILES = {"FEBRL3": ["dataset3.csv"], "FEBRL4": ["dataset4a.csv", "dataset4b.csv"]}
SSN_SYSTEM = "urn:ihs:febrl:soc-sec-id"


def entity_of(record_id: str) -> str:
    """The person a FEBRL record belongs to: rec-12-dup-0 -> 12."""
    return record_id.split("-")[1]


def _date(text: str) -> str | None:
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8])).isoformat()
    except ValueError:
        return None


def patient(row: dict, source: str | None, *, ssn: bool) -> dict:
    """One FEBRL row as a FHIR Patient."""
    resource: dict = {"resourceType": "Patient", "id": row["rec_id"]}
    if ssn and row["soc_sec_id"]:
        resource["identifier"] = [{"type": {"coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "SS"}]},
            "system": SSN_SYSTEM, "value": row["soc_sec_id"]}]
    name = {}
    if row["surname"]:
        name["family"] = row["surname"]
    if row["given_name"]:
        name["given"] = [row["given_name"]]
    if name:
        resource["name"] = [name]
    born = _date(row["date_of_birth"]) if len(row["date_of_birth"]) == 8 else None
    if born:
        resource["birthDate"] = born
    line = [" ".join(x for x in (row["street_number"], row["address_1"]) if x), row["address_2"]]
    address = {"use": "home", "line": [x for x in line if x], "city": row["suburb"],
               "postalCode": row["postcode"], "state": row["state"]}
    address = {k: v for k, v in address.items() if v}
    if len(address) > 1:
        resource["address"] = [address]
    if source:
        resource["managingOrganization"] = {"reference": source}
    return resource


def load(archive: Path, dataset: str, *, ssn: bool = False) -> list[dict]:
    """The Patients of FEBRL3 (one file to deduplicate) or FEBRL4 (two files to link)."""
    patients = []
    with tarfile.open(archive) as tar:
        members = {m.name.rsplit("/", 1)[-1]: m for m in tar.getmembers()}
        for n, name in enumerate(FILES[dataset]):
            text = tar.extractfile(members[name]).read().decode()
            source = f"Organization/febrl-{'ab'[n]}" if dataset == "FEBRL4" else None
            for row in csv.DictReader(io.StringIO(text), skipinitialspace=True):
                row = {k.strip(): (v or "").strip() for k, v in row.items()}
                patients.append(patient(row, source, ssn=ssn))
    return patients
