"""One demo account per role over the demo region (demo mode only: the passwords are documented).

The accounts point at the region's own resources: a family doctor, a nurse and an organization
administrator at the Aishan Community Health Centre, a pharmacist at Huzhou South Taihu
Hospital, a resident registered with that doctor, and the Health Commission, the CDC and the
Healthcare Security Administration for the regulator, the CDC officer and the insurer. The device
(a home blood-pressure monitor bound to the demo patient) and a hospital information system are
backend clients: `ihs token --client demo-device` prints a token for them.
"""
from __future__ import annotations

from ihs.auth.admin import add_client, add_user, generate_client_key
from ihs.auth.schema import create_auth_schema
from ihs.fhir.errors import Conflict, FhirError
from ihs.fhir.validation import validate
from ihs.store.search import find

ORGANIZATION_CODE = "https://ihs.example.org/fhir/sid/organization"
PRACTITIONER_ROLE = "http://terminology.hl7.org/CodeSystem/practitioner-role"
DEVICE_ID = "https://ihs.example.org/fhir/sid/device"


def _organization(uow, code: str) -> str:
    found = find(uow, "Organization", [("identifier", f"{ORGANIZATION_CODE}|{code}")], limit=1)
    if not found:
        raise FhirError(f"the demo region has no Organization {code}; run `ihs demo` first", 404, code="not-found")
    return f"Organization/{found[0].id}"


def _staff(uow, organization: str, role: str) -> str:
    found = find(uow, "PractitionerRole", [("organization", organization), ("role", f"{PRACTITIONER_ROLE}|{role}")],
                 limit=1)
    if not found:
        raise FhirError(f"no {role} at {organization} in the demo region", 404, code="not-found")
    return found[0].resource()["practitioner"]["reference"]


def _patient_of(uow, practitioner: str) -> str:
    found = find(uow, "Patient", [("general-practitioner", practitioner)], limit=1) or find(uow, "Patient", [], limit=1)
    if not found:
        raise FhirError("the demo region has no residents", 404, code="not-found")
    return found[0].id


def _device(store, patient: str) -> str:
    """The demo blood-pressure monitor bound to `patient` (created once)."""
    with store.session(write=True) as uow:
        found = find(uow, "Device", [("identifier", f"{DEVICE_ID}|demo-bp-monitor")], limit=1)
        if found:
            return f"Device/{found[0].id}"
        device = {"resourceType": "Device", "identifier": [{"system": DEVICE_ID, "value": "demo-bp-monitor"}],
                  "status": "active", "manufacturer": "IHS demo",
                  "deviceName": [{"name": "家用血压计 / Home blood pressure monitor", "type": "user-friendly-name"}],
                  "type": {"coding": [{"system": "http://snomed.info/sct", "code": "990201000087109",
                                       "display": "Blood pressure cuff"}]},
                  "patient": {"reference": f"Patient/{patient}"}}
        validate(device)
        return f"Device/{uow.create(device).id}"


def create_demo_accounts(store) -> list[tuple[str, str, str, str]]:
    """Create (or keep) the demo accounts; returns (username, password, role, description) of each."""
    create_auth_schema(store.engine)
    with store.session() as uow:
        centre = _organization(uow, "WX-ASCHC")
        hospital = _organization(uow, "HZ-NTH")
        authority, cdc, payer = (_organization(uow, c) for c in ("HZ-WJW", "HZ-CDC", "HZ-YBJ"))
        doctor = _staff(uow, centre, "doctor")
        nurse = _staff(uow, centre, "nurse")
        pharmacist = _staff(uow, hospital, "pharmacist")
        patient = _patient_of(uow, doctor)
    people = [
        ("doctor", "practitioner", doctor, (), f"family doctor at the Aishan Community Health Centre ({doctor})"),
        ("nurse", "nurse", nurse, (), f"nurse at the Aishan Community Health Centre ({nurse})"),
        ("pharmacist", "pharmacist", pharmacist, (), f"pharmacist at Huzhou South Taihu Hospital ({pharmacist})"),
        ("patient", "patient", f"Patient/{patient}", (), f"a resident registered with the doctor (Patient/{patient})"),
        ("admin", "org-admin", None, (centre,), f"administrator of the Aishan Community Health Centre ({centre})"),
        ("regulator", "regulator", None, (authority,), "Huzhou Municipal Health Commission: aggregates only"),
        ("cdc", "cdc-officer", None, (cdc,), "Huzhou CDC: surveillance data and notifiable-disease reports"),
        ("insurer", "insurer", None, (payer,), "Huzhou Healthcare Security Administration: claims of its members"),
    ]
    made = []
    for username, role, fhir_user, organizations, description in people:
        password = f"demo-{username}"
        try:
            add_user(store, username, password, roles=(role,), fhir_user=fhir_user, organizations=organizations,
                     display=description)
        except Conflict:
            pass  # created on an earlier start
        made.append((username, password, role, description))
    device = _device(store, patient)
    backends = [
        ("demo-device", "device", "system/Observation.cu", device, None, patient,
         f"home blood-pressure monitor {device} bound to Patient/{patient}"),
        ("demo-his", "system", "system/*.cruds", None, hospital, None,
         f"hospital information system of Huzhou South Taihu Hospital ({hospital})"),
    ]
    for client_id, role, scopes, fhir_user, organization, bound, description in backends:
        _private, public = generate_client_key()
        try:
            add_client(store, client_id, name=description, kind="backend", scopes=scopes, jwks=public, roles=(role,),
                       organizations=(organization,) if organization else (), fhir_user=fhir_user, patient=bound)
        except Conflict:
            pass
        made.append((client_id, f"(backend client: ihs token --client {client_id})", role, description))
    return made
