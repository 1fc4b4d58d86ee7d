"""Resource indicators for the health authority's dashboard: SQL over SQL-on-FHIR views.

The views below flatten Organization, Location, Patient, Encounter, Appointment, Condition,
MedicationRequest, ServiceRequest and DetectedIssue; a `Warehouse` keeps them current and each
indicator is one SQL query over them, answered as JSON rows by month (`from`/`to` as YYYY-MM):

- visits: encounters per facility, month and class (ambulatory, emergency, inpatient);
- bed-occupancy: inpatient encounters in progress over the beds (Location of physical type `bd`);
- appointments: booked, fulfilled, no-show and cancelled, the no-show rate, the mean wait in days;
- referrals: referral flows between facilities and whether each goes up, down or across the tiers;
- diseases: diagnoses by ICD-10 category and the patient's district;
- prescriptions: prescriptions per facility and month, per visit, and the distinct drugs;
- cds-alerts: clinical decision support alerts (DetectedIssue) by severity and code.

A facility's tier (primary or community, secondary, tertiary) is its Organization.type coding in the
facility-level code system; a department counts for the facility it is part of.
"""
from __future__ import annotations

from dataclasses import dataclass

from ihs.fhir.errors import FhirError, NotFound

FACILITY_LEVEL = "https://ihs.example.org/fhir/CodeSystem/facility-level"
REFERRAL = "3457005"  # SNOMED CT: patient referral
ICD10 = "http://hl7.org/fhir/sid/icd-10"


def _view(name: str, resource: str, *columns: tuple[str, str], where: str | None = None, **types) -> dict:
    view = {"resourceType": "ViewDefinition", "name": name, "resource": resource, "status": "active",
            "select": [{"column": [dict({"name": n, "path": p}, **({"type": types[n]} if n in types else {}))
                                   for n, p in columns]}]}
    if where:
        view["where"] = [{"path": where}]
    return view


VIEWS = [
    _view("organizations", "Organization", ("name", "name"), ("part_of", "partOf.getReferenceKey(Organization)"),
          ("tier", f"type.coding.where(system = '{FACILITY_LEVEL}').code.first()")),
    _view("locations", "Location", ("organization", "managingOrganization.getReferenceKey(Organization)"),
          ("physical_type", "physicalType.coding.code.first()"), ("status", "status"),
          ("operational", "operationalStatus.code")),
    _view("patients", "Patient", ("gender", "gender"), ("birth_date", "birthDate"),
          ("district", "address.district.first()"), ("city", "address.city.first()")),
    _view("encounters", "Encounter", ("patient", "subject.getReferenceKey(Patient)"),
          ("organization", "serviceProvider.getReferenceKey(Organization)"), ("class", "class.code"),
          ("status", "status"), ("start", "period.start"), ("end", "period.end")),
    _view("appointments", "Appointment", ("status", "status"), ("start", "start"), ("created", "created"),
          ("location", "participant.actor.getReferenceKey(Location).first()"),
          ("patient", "participant.actor.getReferenceKey(Patient).first()")),
    _view("conditions", "Condition", ("patient", "subject.getReferenceKey(Patient)"),
          ("code", f"code.coding.where(system = '{ICD10}').code.first()"),
          ("display", f"code.coding.where(system = '{ICD10}').display.first()"),
          ("recorded", "recordedDate"), ("onset", "onset.ofType(dateTime)"),
          ("encounter", "encounter.getReferenceKey(Encounter)"),
          where="(verificationStatus.coding.code contains 'entered-in-error').not()"),
    _view("medication_requests", "MedicationRequest", ("patient", "subject.getReferenceKey(Patient)"),
          ("encounter", "encounter.getReferenceKey(Encounter)"), ("authored", "authoredOn"),
          ("status", "status"), ("code", "medication.ofType(CodeableConcept).coding.code.first()"),
          ("drug", "medication.ofType(CodeableConcept).coding.display.first()")),
    _view("referrals", "ServiceRequest", ("status", "status"), ("authored", "authoredOn"),
          ("from_org", "requester.getReferenceKey(Organization)"),
          ("to_org", "performer.getReferenceKey(Organization).first()"),
          ("encounter", "encounter.getReferenceKey(Encounter)"),
          where=f"category.coding.where(code = '{REFERRAL}').exists() or code.coding.where(code = '{REFERRAL}')"
                ".exists()"),
    _view("cds_alerts", "DetectedIssue", ("status", "status"), ("severity", "severity"),
          ("code", "code.coding.code.first()"), ("identified", "identified.ofType(dateTime)"),
          ("patient", "patient.getReferenceKey(Patient)")),
]

# facility = the organization itself, or the facility a department is part of
_FACILITY = """
facilities AS (
  SELECT o.resource_key AS org, coalesce(p.resource_key, o.resource_key) AS facility,
         coalesce(p.name, o.name) AS facility_name,
         coalesce(p.tier, o.tier) AS tier
  FROM organizations o LEFT JOIN organizations p ON p.resource_key = o.part_of)"""
_MONTH = "(CAST(? AS VARCHAR) IS NULL OR {m} >= ?) AND (CAST(? AS VARCHAR) IS NULL OR {m} <= ?)"


@dataclass(frozen=True)
class Indicator:
    name: str
    description: str
    sql: str
    month: str | None  # the SQL month expression that `from`/`to` filter on (None: a snapshot)


INDICATORS = {i.name: i for i in [
    Indicator("visits", "Encounters per facility, month and class (AMB ambulatory, EMER emergency, IMP inpatient).",
              f"""WITH {_FACILITY}
              SELECT substr(e.start, 1, 7) AS month, f.facility, f.facility_name, f.tier, e.class,
                     count(*) AS encounters, count(DISTINCT e.patient) AS patients
              FROM encounters e LEFT JOIN facilities f ON f.org = e.organization
              WHERE e.start IS NOT NULL AND {_MONTH.format(m='substr(e.start, 1, 7)')}
              GROUP BY ALL ORDER BY month, facility_name, class""", "month"),
    Indicator("bed-occupancy", "Inpatient encounters in progress over the active beds, per facility (a snapshot).",
              f"""WITH {_FACILITY},
              beds AS (SELECT f.facility, count(*) AS beds FROM locations l JOIN facilities f ON f.org = l.organization
                       WHERE l.physical_type = 'bd' AND coalesce(l.status, 'active') = 'active' GROUP BY ALL),
              occupied AS (SELECT f.facility, count(*) AS occupied FROM encounters e
                           JOIN facilities f ON f.org = e.organization
                           WHERE e.class = 'IMP' AND e.status = 'in-progress' GROUP BY ALL)
              SELECT f.facility, any_value(f.facility_name) AS facility_name, any_value(f.tier) AS tier,
                     coalesce(any_value(b.beds), 0) AS beds, coalesce(any_value(o.occupied), 0) AS occupied,
                     CASE WHEN any_value(b.beds) > 0 THEN round(any_value(o.occupied) / any_value(b.beds), 3) END
                       AS occupancy
              FROM facilities f LEFT JOIN beds b ON b.facility = f.facility
                   LEFT JOIN occupied o ON o.facility = f.facility
              WHERE f.org = f.facility AND (b.beds IS NOT NULL OR o.occupied IS NOT NULL)
              GROUP BY f.facility ORDER BY facility_name""", None),
    Indicator("appointments", "Appointments per facility and month: booked, fulfilled, no-show, cancelled, "
              "the no-show rate (no-shows over fulfilled plus no-shows) and the mean wait from booking in days.",
              f"""WITH {_FACILITY}
              SELECT substr(a.start, 1, 7) AS month, f.facility, f.facility_name, f.tier, count(*) AS appointments,
                     count(*) FILTER (WHERE a.status = 'booked') AS booked,
                     count(*) FILTER (WHERE a.status = 'fulfilled') AS fulfilled,
                     count(*) FILTER (WHERE a.status = 'noshow') AS noshow,
                     count(*) FILTER (WHERE a.status = 'cancelled') AS cancelled,
                     round(count(*) FILTER (WHERE a.status = 'noshow')
                           / nullif(count(*) FILTER (WHERE a.status IN ('fulfilled', 'noshow')), 0), 3) AS noshow_rate,
                     round(avg((epoch(a.start::TIMESTAMPTZ) - epoch(a.created::TIMESTAMPTZ)) / 86400), 1)
                       AS mean_wait_days
              FROM appointments a LEFT JOIN locations l ON l.resource_key = a.location
                   LEFT JOIN facilities f ON f.org = l.organization
              WHERE a.start IS NOT NULL AND {_MONTH.format(m='substr(a.start, 1, 7)')}
              GROUP BY ALL ORDER BY month, facility_name""", "month"),
    Indicator("referrals", "Referrals between facilities per month, with their direction between tiers "
              "(up: to a higher tier, down: to a lower one, across).",
              f"""WITH {_FACILITY},
              ranked AS (SELECT *, CASE WHEN tier IN ('community', 'primary') THEN 1 WHEN tier = 'secondary' THEN 2
                                        WHEN tier = 'tertiary' THEN 3 END AS rank FROM facilities)
              SELECT substr(r.authored, 1, 7) AS month, a.facility_name AS from_facility, a.tier AS from_tier,
                     b.facility_name AS to_facility, b.tier AS to_tier,
                     CASE WHEN b.rank > a.rank THEN 'up' WHEN b.rank < a.rank THEN 'down' ELSE 'across' END
                       AS direction,
                     count(*) AS referrals, count(*) FILTER (WHERE r.status = 'completed') AS completed
              FROM referrals r LEFT JOIN ranked a ON a.org = r.from_org LEFT JOIN ranked b ON b.org = r.to_org
              WHERE {_MONTH.format(m='substr(r.authored, 1, 7)')}
              GROUP BY ALL ORDER BY month, referrals DESC""", "month"),
    Indicator("diseases", "Diagnoses per month by ICD-10 category (the first three characters) and the "
              "patient's district.",
              f"""SELECT substr(coalesce(c.onset, c.recorded), 1, 7) AS month, p.district,
                     substr(c.code, 1, 3) AS icd10_category, any_value(c.display) AS example,
                     count(*) AS diagnoses, count(DISTINCT c.patient) AS patients
              FROM conditions c LEFT JOIN patients p ON p.resource_key = c.patient
              WHERE c.code IS NOT NULL AND {_MONTH.format(m='substr(coalesce(c.onset, c.recorded), 1, 7)')}
              GROUP BY ALL ORDER BY month, diagnoses DESC""", "month"),
    Indicator("prescriptions", "Prescriptions per facility and month, prescriptions per visit with any, and "
              "the number of distinct drugs.",
              f"""WITH {_FACILITY}
              SELECT substr(m.authored, 1, 7) AS month, f.facility, f.facility_name, f.tier,
                     count(*) AS prescriptions, count(DISTINCT m.encounter) AS visits,
                     round(count(*) / nullif(count(DISTINCT m.encounter), 0), 2) AS per_visit,
                     count(DISTINCT m.code) AS drugs
              FROM medication_requests m LEFT JOIN encounters e ON e.resource_key = m.encounter
                   LEFT JOIN facilities f ON f.org = e.organization
              WHERE m.status != 'entered-in-error' AND {_MONTH.format(m='substr(m.authored, 1, 7)')}
              GROUP BY ALL ORDER BY month, facility_name""", "month"),
    Indicator("cds-alerts", "Clinical decision support alerts (DetectedIssue) per month by severity and code.",
              f"""SELECT substr(identified, 1, 7) AS month, severity, code, count(*) AS alerts,
                     count(DISTINCT patient) AS patients
              FROM cds_alerts WHERE {_MONTH.format(m='substr(identified, 1, 7)')}
              GROUP BY ALL ORDER BY month, alerts DESC""", "month"),
]}


def _month(value: str | None, name: str) -> str | None:
    if value is None:
        return None
    if len(value) != 7 or value[4] != "-" or not (value[:4] + value[5:]).isdigit():
        raise FhirError(f"'{name}' must be a month such as 2024-03, not '{value}'", expression=name)
    return value


def compute(warehouse, name: str, *, start: str | None = None, end: str | None = None) -> list[dict]:
    """The rows of indicator `name` from a refreshed warehouse, for months in [start, end]."""
    indicator = INDICATORS.get(name)
    if indicator is None:
        raise NotFound(f"no indicator '{name}'; the indicators are {', '.join(INDICATORS)}")
    start, end = _month(start, "from"), _month(end, "to")
    parameters = [start, start, end, end] if indicator.month else []
    return warehouse.query(indicator.sql, parameters)
