"""Authorization: the SMART on FHIR authorization server, scopes, accounts and the access policy.

- `Authority(store, base_url)` issues and checks tokens; `authenticate(headers, authority) -> Principal`
  validates a request's bearer token (Unauthorized, 401, otherwise);
- `ihs.auth.policy.decide(...)` and `ihs.auth.policy.search_restriction(...)` decide every access;
- `scope_permits(...)` and `scope_criteria(...)` read SMART v1/v2 scopes;
- ihs/auth/admin.py holds the functions behind `ihs user add`, `ihs client add` and `ihs token`.
docs/security.md explains the whole.
"""
from ihs.auth.authority import Authority, authenticate, principal_from_claims
from ihs.auth.errors import Forbidden, OAuthError, Unauthorized
from ihs.auth.principal import BreakGlass, Principal
from ihs.auth.scopes import parse_scopes, scope_criteria, scope_permits

__all__ = ["Authority", "BreakGlass", "Forbidden", "OAuthError", "Principal", "Unauthorized", "authenticate",
           "parse_scopes", "principal_from_claims", "scope_criteria", "scope_permits"]
