"""`ihs load`: Bundles, resources, NDJSON and archives, straight into the database."""
from __future__ import annotations

import io
import tarfile
import zipfile

import orjson
from click.testing import CliRunner

from ihs.cli import main
from ihs.load import load

PATIENT = {"resourceType": "Patient", "gender": "male"}
OBSERVATION = {"resourceType": "Observation", "status": "final", "code": {"text": "体温"}}


def _write(path, payload: bytes):
    path.write_bytes(payload)
    return path


def test_loads_ndjson_resources_and_bundles(store, tmp_path):
    ndjson = _write(tmp_path / "obs.ndjson", b"\n".join(orjson.dumps(OBSERVATION) for _ in range(3)) + b"\n")
    single = _write(tmp_path / "p.json", orjson.dumps({**PATIENT, "id": "p1"}))
    bundle = _write(tmp_path / "b.json", orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": PATIENT, "request": {"method": "POST", "url": "Patient"}}]}))
    report = load(store, [ndjson, single, bundle], progress=False)
    assert report.errors == []
    assert report.counts == {"Observation": 3, "Patient": 2}
    with store.session() as uow:
        assert uow.current("Patient", "p1") is not None


def test_loads_tar_gz_and_zip_archives(store, tmp_path):
    data = orjson.dumps(PATIENT)
    with tarfile.open(tmp_path / "a.tar.gz", "w:gz") as archive:
        info = tarfile.TarInfo("dir/p.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(tmp_path / "b.zip", "w") as archive:
        archive.writestr("q.ndjson", data + b"\n" + data)
    report = load(store, [tmp_path / "a.tar.gz", tmp_path / "b.zip"], progress=False)
    assert report.counts == {"Patient": 3} and report.errors == []


def test_errors_name_file_entry_and_element(store, tmp_path):
    bad = _write(tmp_path / "bad.ndjson", orjson.dumps(PATIENT) + b"\n" + orjson.dumps({**PATIENT, "gender": "x"}))
    bundle = _write(tmp_path / "bundle.json", orjson.dumps({"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": PATIENT, "request": {"method": "POST", "url": "Patient"}},
        {"resource": {**PATIENT, "birthDate": "1990-13-01"}, "request": {"method": "POST", "url": "Patient"}}]}))
    report = load(store, [bad, bundle], progress=False)
    assert report.counts == {"Patient": 1}
    assert any("bad.ndjson line 2" in e and "Patient.gender" in e for e in report.errors)
    assert any("bundle.json" in e and "Bundle.entry[1]" in e and "birthDate" in e for e in report.errors)


def test_cli_prints_counts_by_type_and_fails_on_errors(tmp_path):
    path = _write(tmp_path / "p.ndjson", orjson.dumps(PATIENT) + b"\n" + orjson.dumps(OBSERVATION) + b"\n")
    result = CliRunner().invoke(main, ["load", str(path), "--database", f"sqlite:///{tmp_path}/db.sqlite"])
    assert result.exit_code == 0, result.output
    assert "Patient" in result.output and "Observation" in result.output and "total" in result.output
    bad = _write(tmp_path / "bad.json", b"{not json")
    result = CliRunner().invoke(main, ["load", str(bad), "--database", f"sqlite:///{tmp_path}/db.sqlite"])
    assert result.exit_code == 1
