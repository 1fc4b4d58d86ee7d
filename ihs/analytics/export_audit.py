"""The AuditEvents of a finished bulk export: whose records left the platform, and for whom.

The kick-off is audited by the API before the job starts (an `export` event with the query), when
the patients are not known yet. When the job completes, `completion_events` describes it: `export`
events by the job's caller (its stored claims), each naming up to PATIENTS_PER_EVENT patients as
entities (role Patient), so every patient finds the export of their record in their own AuditEvent
list (`AuditEvent?patient=`), however large the export. The events share the job id and say which
part of how many they are, and how many patients and resources the export carried, in `outcomeDesc`.
Purpose of use BTG, on the parts naming them, when the policy showed some of these patients only by an
open break-the-glass grant of the caller.
"""
from __future__ import annotations

from ihs.analytics.bulk import ExportRequest, ExportResult, caller_of
from ihs.audit import audit_event, from_principal

# bounds each event's size (a Patient entity is about 200 bytes, plus its index rows)
PATIENTS_PER_EVENT = 1000


def completion_events(request: ExportRequest, result: ExportResult, job_id: str) -> list[dict]:
    """The AuditEvents recording what a completed export carried (none without a caller: the CLI)."""
    if request.caller is None:
        return []
    caller = caller_of(request.caller)
    patients = sorted(result.patients)
    resources = sum(f.count for f in result.files)
    parts = [patients[i:i + PATIENTS_PER_EVENT] for i in range(0, len(patients), PATIENTS_PER_EVENT)] or [[]]
    form = "de-identified " if request.deidentify else ""
    events = []
    for number, part in enumerate(parts, 1):
        description = (f"bulk export {job_id} complete: {resources} {form}resources of {len(patients)} patients; "
                       f"part {number} of {len(parts)} names {len(part)} of them")
        events.append(audit_event("export", outcome_desc=description, operation="$export", patients=part,
                                  **from_principal(caller, break_glass=bool(result.break_glass.intersection(part)))))
    return events
