"""Security errors: 401 and 403 as OperationOutcomes for the FHIR API, OAuth errors for /auth/*."""
from __future__ import annotations

from ihs.fhir.errors import FhirError


class Unauthorized(FhirError):
    """No valid credentials (401). `www_authenticate` is the WWW-Authenticate header to send (RFC 6750)."""

    def __init__(self, message: str, error: str = "invalid_token"):
        super().__init__(message, 401, code="login")
        self.error = error
        description = message.replace('"', "'")
        if error:
            self.www_authenticate = f'Bearer realm="ihs", error="{error}", error_description="{description}"'
        else:
            self.www_authenticate = 'Bearer realm="ihs"'

    @property
    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": self.www_authenticate}


class Forbidden(FhirError):
    """The caller is known but may not do this (403), or the interaction never is allowed (405)."""

    def __init__(self, message: str, status: int = 403):
        super().__init__(message, status, code="forbidden" if status == 403 else "not-supported")


class OAuthError(Exception):
    """An OAuth 2.0 error response (RFC 6749 section 5.2): `{"error": ..., "error_description": ...}`."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status

    def body(self) -> dict:
        return {"error": self.error, "error_description": self.description}


class TooManyAttempts(OAuthError):
    """Login refused by rate limiting; `retry_after` is in seconds."""

    def __init__(self, retry_after: int):
        super().__init__("temporarily_unavailable",
                         f"too many failed logins; try again in {retry_after} seconds", 429)
        self.retry_after = retry_after
