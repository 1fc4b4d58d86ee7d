"""The prescription-safety CDS Hooks services: what discovery lists, and answering a hook call.

`run()` is the whole of one call, for the HTTP endpoints and for IHS's own prescribing and
dispensing workflows alike: gather the patient's data (prefetch, else the prefetch templates run
against the FHIR server), review the orders with the hook's checks, turn findings into cards and
store each card shown as a DetectedIssue.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ihs.cds import cards as cardlib
from ihs.cds import issues
from ihs.cds.attribution import facility_of, prescriber_of
from ihs.cds.checks import allergy, dosing, indication, interactions, prescription
from ihs.cds.findings import Finding
from ihs.cds.hooks import check_request, draft_orders, verified_order
from ihs.cds.kb import KnowledgeBase, knowledge_base
from ihs.cds.medication import LOCAL
from ihs.cds.record import RemoteFetcher, StoreFetcher, gather
from ihs.cds.review import review_current, review_orders
from ihs.fhir.errors import FhirError, NotFound

PATIENT_DATA = {
    "patient": "Patient/{{context.patientId}}",
    "medications": "MedicationRequest?patient={{context.patientId}}&status=active",
    "allergies": "AllergyIntolerance?patient={{context.patientId}}&clinical-status=active",
    "conditions": "Condition?patient={{context.patientId}}&clinical-status=active",
    "egfr": "Observation?patient={{context.patientId}}"
            "&code=http://loinc.org|33914-3,http://loinc.org|62238-1,http://loinc.org|98979-8&_sort=-date&_count=1",
}
CLINICAL = [interactions.check, interactions.duplicates, allergy.check, dosing.check, indication.check]
SIGNING = CLINICAL + [prescription.completeness, prescription.prescriber, prescription.supply]
VERIFYING = SIGNING + [prescription.dispensable]
CURRENT = [interactions.check, interactions.duplicates, allergy.check, dosing.check]


@dataclass(frozen=True)
class Service:
    id: str
    hook: str
    title: str
    description: str
    checks: list = field(compare=False)
    prefetch: dict = field(default_factory=lambda: dict(PATIENT_DATA), compare=False)

    def describe(self) -> dict:
        return {"hook": self.hook, "title": self.title, "description": self.description, "id": self.id,
                "prefetch": self.prefetch, "version": "STU2"}


SERVICES = [
    Service("medication-review", "patient-view", "Medication safety review",
            "Reviews the patient's current medicines: drug-drug interactions, duplicate therapy, drug allergy, "
            "dose and renal limits.", CURRENT),
    Service("prescription-safety", "order-select", "Prescription safety (drug selected)",
            "Checks a drug as it is selected: interactions (ONC high- and low-priority lists), allergy with class "
            "cross-reactivity, dose and renal limits, duplicate therapy, indication (药不对症).", CLINICAL),
    Service("prescription-safety", "order-sign", "Prescription safety (before signing)",
            "Checks a prescription before it is signed: every clinical check, plus completeness, the prescriber's "
            "licence and the supply length; a critical card blocks signing unless overridden with a reason.",
            SIGNING, {**PATIENT_DATA, "user": "{{context.userId}}"}),
    Service("pharmacist-verification", "medication-verify", "Pre-dispensing prescription audit (处方前置审核)",
            "Audits a signed prescription before it is dispensed: every check of signing, plus that it is active "
            "and still valid.", VERIFYING),
]


def discovery() -> dict:
    return {"services": [s.describe() for s in SERVICES]}


def service(service_id: str, hook: str | None = None) -> Service:
    """The service with this id (for this hook, when one id serves several)."""
    matches = [s for s in SERVICES if s.id == service_id]
    if not matches:
        raise NotFound(f"no CDS service '{service_id}'; GET /cds-services lists them")
    if hook is None:
        return matches[0]
    for candidate in matches:
        if candidate.hook == hook:
            return candidate
    if len(matches) == 1:
        return matches[0]
    raise FhirError(f"service '{service_id}' answers the hooks {', '.join(s.hook for s in matches)}, not {hook!r}",
                    expression="hook")


@dataclass
class Result:
    cards: list[dict]
    findings: list[Finding]

    def response(self) -> dict:
        return {"cards": self.cards}

    def blocking(self, overridden: set[str]) -> list[tuple[dict, Finding]]:
        """Critical cards that no override covers."""
        return [(c, f) for c, f in zip(self.cards, self.findings)
                if c["indicator"] == "critical" and c["uuid"] not in overridden]


def run(uow, svc: Service, body: dict, *, fetcher, scope: str, now: datetime | None = None,
        kb: KnowledgeBase | None = None, record: bool = True) -> Result:
    """Answer one hook call; `scope` makes card uuids (the same scope and finding: the same card)."""
    check_request(body, svc.hook)
    now = now or datetime.now(LOCAL)
    kb = kb or knowledge_base()
    context = body["context"]
    patient = gather(svc.prefetch, context, body.get("prefetch"), fetcher)
    if svc.hook == "patient-view":
        findings = review_current(svc.checks, kb, patient, now=now)
    else:
        orders = [verified_order(context)] if svc.hook == "medication-verify" else draft_orders(context)
        targets = set(context["selections"]) if svc.hook == "order-select" else None
        findings = review_orders(svc.checks, kb, patient, orders, hook=svc.hook, now=now, targets=targets)
    pharmacist = svc.hook == "medication-verify"
    shown = [cardlib.card(f, cardlib.card_uuid(scope, f"{svc.hook}|{f.key}|{(f.order or {}).get('id')}"),
                          pharmacist=pharmacist) for f in findings]
    if record and shown:
        issues.record_shown(uow, [issues.detected_issue(
            c, f, patient=f"Patient/{context['patientId']}", service=svc.id, hook=svc.hook,
            prescriber=prescriber_of(f.order or {}, patient.resolve), facility=facility_of(f.order or {}, patient.resolve),
            now=now) for c, f in zip(shown, findings)])
    return Result(shown, findings)


def fetcher_for(uow, body: dict, base: str):
    """Where missing data comes from: IHS's store when the client's FHIR server is IHS itself."""
    server = body.get("fhirServer") if isinstance(body, dict) else None
    if not server:
        return None
    if server.rstrip("/") == base.rstrip("/"):
        return StoreFetcher(uow)
    return RemoteFetcher(server, ((body.get("fhirAuthorization") or {}).get("access_token")))


def call(uow, service_id: str, body: dict, *, base: str) -> dict:
    """A CDS Hooks call over HTTP: the response object with its cards."""
    svc = service(service_id, body.get("hook") if isinstance(body, dict) else None)
    scope = str(body.get("hookInstance")) if isinstance(body, dict) else ""
    return run(uow, svc, body, fetcher=fetcher_for(uow, body, base), scope=scope).response()
