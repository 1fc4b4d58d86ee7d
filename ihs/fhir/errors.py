"""FHIR errors as values: every failure the platform reports is an OperationOutcome.

Code anywhere below the API raises `FhirError` (or a subclass); the API turns it into an
OperationOutcome response with the error's HTTP status. Nothing else is needed to report
a problem to a client.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Issue:
    """One OperationOutcome.issue: what is wrong, where (a FHIRPath to the element), how bad."""

    diagnostics: str
    expression: str | None = None
    code: str = "invalid"  # http://hl7.org/fhir/ValueSet/issue-type
    severity: str = "error"  # fatal | error | warning | information

    def to_fhir(self) -> dict:
        issue = {"severity": self.severity, "code": self.code, "diagnostics": self.diagnostics}
        if self.expression:
            issue["expression"] = [self.expression]
        return issue


@dataclass
class FhirError(Exception):
    """An error a client can act on; `status` is the HTTP status the API answers with."""

    issues: list[Issue] = field(default_factory=list)
    status: int = 400

    def __init__(self, message: str | list[Issue], status: int = 400, *, code: str = "invalid",
                 expression: str | None = None):
        if isinstance(message, str):
            message = [Issue(message, expression, code)]
        self.issues = list(message)
        self.status = status
        super().__init__("; ".join(i.diagnostics for i in self.issues))

    def outcome(self) -> dict:
        return operation_outcome(self.issues)


def operation_outcome(issues: list[Issue]) -> dict:
    return {"resourceType": "OperationOutcome", "issue": [i.to_fhir() for i in issues]}


class InvalidResource(FhirError):
    """The resource does not conform to its R4 StructureDefinition (400)."""

    def __init__(self, issues: list[Issue]):
        super().__init__(issues, 400)


class NotFound(FhirError):
    def __init__(self, message: str):
        super().__init__(message, 404, code="not-found")


class Gone(FhirError):
    def __init__(self, message: str):
        super().__init__(message, 410, code="deleted")


class Conflict(FhirError):
    def __init__(self, message: str):
        super().__init__(message, 409, code="conflict")


class PreconditionFailed(FhirError):
    def __init__(self, message: str):
        super().__init__(message, 412, code="conflict")


class BusinessRule(FhirError):
    def __init__(self, message: str, expression: str | None = None):
        super().__init__(message, 422, code="business-rule", expression=expression)
