"""Audit: an AuditEvent for every access, on a tamper-evident hash chain.

- `audit_event(action, ...)` builds an AuditEvent in the IHE BALP shape (ihs/audit/events.py);
- `record(uow, event)` appends it to the hash chain and stores it in the caller's write unit of work
  (ihs/audit/chain.py), so it commits with the change it records;
- `verify(store)` walks the chain and names the first modified, deleted or re-ordered event
  (ihs/audit/verify.py, the `ihs audit verify` command).
"""
from ihs.audit.chain import create_audit_schema, record
from ihs.audit.events import audit_event, from_principal, outcome_of
from ihs.audit.verify import VerificationResult, verify

__all__ = ["audit_event", "create_audit_schema", "from_principal", "outcome_of", "record", "verify",
           "VerificationResult"]
