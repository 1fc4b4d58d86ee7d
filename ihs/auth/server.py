"""The OAuth 2.0 flows of the SMART authorization server, without HTTP (ihs/api/operations/smart.py serves them).

- authorization code with PKCE (S256 only) for apps used by patients and staff, with a login page;
- refresh tokens (offline_access / online_access), rotated on every use;
- client_credentials for backend systems authenticated by private_key_jwt (RS384/ES384);
- token introspection (RFC 7662) and revocation (RFC 7009).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlencode

from ihs.auth import ratelimit
from ihs.auth.accounts import Client, User, get_client, get_user
from ihs.auth.authority import Authority
from ihs.auth.client_assertion import ALGORITHMS, ASSERTION_TYPE, authenticate_client
from ihs.auth.errors import OAuthError, Unauthorized
from ihs.auth.passwords import verify_password
from ihs.auth.principal import CLINICAL_ROLES, Principal
from ihs.auth.relationships import affiliation, institution_units
from ihs.auth.schema import write_transaction
from ihs.auth.scopes import IDENTITY_SCOPES, Scopes, parse_scopes
from ihs.auth.tokens import (issue_code, issue_refresh_token, redeem_code, refresh_token_info, revoke_refresh_token,
                             use_refresh_token)
from ihs.fhir.errors import FhirError


class RedirectError(OAuthError):
    """An error reported to the client by redirecting the browser back to it (RFC 6749 section 4.1.2.1)."""

    def __init__(self, redirect_uri: str, state: str | None, error: str, description: str):
        super().__init__(error, description, 302)
        self.redirect_uri = redirect_uri
        self.state = state

    @property
    def location(self) -> str:
        return _with_query(self.redirect_uri, {"error": self.error, "error_description": self.description,
                                               "state": self.state})


def _with_query(url: str, params: dict) -> str:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"{url}{'&' if '?' in url else '?'}{query}"


@dataclass(frozen=True)
class AuthorizationRequest:
    """A checked authorization request, carried through the login page in hidden fields."""

    client: Client
    redirect_uri: str
    scope: str
    state: str | None
    code_challenge: str
    nonce: str | None
    break_glass: str | None

    def fields(self) -> dict[str, str]:
        """The request's parameters, as the login form re-posts them."""
        values = {"response_type": "code", "client_id": self.client.client_id, "redirect_uri": self.redirect_uri,
                  "scope": self.scope, "state": self.state, "code_challenge": self.code_challenge,
                  "code_challenge_method": "S256", "nonce": self.nonce, "break_glass": self.break_glass}
        return {k: v for k, v in values.items() if v is not None}


def authorization_request(authority: Authority, params) -> AuthorizationRequest:
    """Check an authorization request; OAuthError (shown, not redirected) until the redirect URI is trusted."""
    client_id = params.get("client_id")
    with authority.store.engine.connect() as conn:
        client = get_client(conn, client_id) if client_id else None
    if client is None or not client.active:
        raise OAuthError("invalid_request", f"unknown client_id {client_id!r}")
    if client.kind != "public":
        raise OAuthError("unauthorized_client", "backend clients use the client_credentials grant")
    redirect_uri = params.get("redirect_uri") or (client.redirect_uris[0] if len(client.redirect_uris) == 1 else "")
    if redirect_uri not in client.redirect_uris:
        raise OAuthError("invalid_request", f"redirect_uri {redirect_uri!r} is not registered for this client")
    state = params.get("state")

    def fail(error: str, description: str):
        return RedirectError(redirect_uri, state, error, description)

    if params.get("response_type") != "code":
        raise fail("unsupported_response_type", "response_type must be code")
    if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
        raise fail("invalid_request", "PKCE is required: code_challenge with code_challenge_method=S256")
    aud = params.get("aud")
    if aud is not None and aud.rstrip("/") != authority.base_url:
        raise fail("invalid_request", f"aud must be the FHIR server's base URL {authority.base_url}")
    try:
        requested = parse_scopes(params.get("scope"))
    except FhirError as exc:
        raise fail("invalid_scope", str(exc)) from None
    granted = grant_scopes(requested, client.scopes)
    if not granted.clinical:
        raise fail("invalid_scope", f"none of the requested scopes is allowed for this client ({client.scopes})")
    return AuthorizationRequest(client, redirect_uri, granted.text, state, params["code_challenge"],
                                params.get("nonce"), (params.get("break_glass") or "").strip()[:500] or None)


def grant_scopes(requested: Scopes, allowed_text: str) -> Scopes:
    """The requested scopes the client may have: each clinical scope within one the client is allowed
    (a broader request is dropped, not widened), plus the launch and identity scopes."""
    allowed = parse_scopes(allowed_text)
    clinical = tuple(s for s in requested.clinical if any(s.within(a) for a in allowed.clinical))
    return Scopes(clinical, frozenset(requested.other & IDENTITY_SCOPES))


@dataclass(frozen=True)
class LoginResult:
    """The outcome of a login attempt, for the redirect and the audit record."""

    location: str
    user: User


def login(authority: Authority, request: AuthorizationRequest, username: str, password: str,
          address: str | None, patient: str | None = None) -> LoginResult:
    """Check the password (rate-limited per account and address) and answer with the code's redirect.

    Raises OAuthError access_denied (wrong credentials; counted) or TooManyAttempts.
    """
    with write_transaction(authority.store.engine) as conn:
        ratelimit.check(conn, username, address, authority.limits)
        user = get_user(conn, username)
        ok = verify_password(user.password_hash if user else None, password) and user.active
        if ok:
            ratelimit.record_success(conn, username)
        else:
            ratelimit.record_failure(conn, username, address, authority.limits)
    if not ok:
        raise OAuthError("access_denied", "wrong username or password", 401)
    scopes = parse_scopes(request.scope)
    roles, _orgs, _fhir_user = identity(authority, user)
    context = _launch_patient(authority, user, roles, scopes, patient)
    break_glass = request.break_glass if roles & CLINICAL_ROLES else None
    with write_transaction(authority.store.engine) as conn:
        code = issue_code(conn, client_id=request.client.client_id, username=user.username,
                          redirect_uri=request.redirect_uri, scope=request.scope,
                          code_challenge=request.code_challenge, patient=context, nonce=request.nonce,
                          break_glass=break_glass, lifetime=authority.tokens.code_seconds)
    return LoginResult(_with_query(request.redirect_uri, {"code": code, "state": request.state}), user)


def identity(authority: Authority, user: User) -> tuple[frozenset[str], tuple[str, ...], str | None]:
    """(roles, organizations, fhirUser) of an account: its own, plus its PractitionerRoles' for a Practitioner."""
    roles = set(user.roles)
    with authority.store.session() as uow:
        organizations = _institutions(uow, user.organizations)
        if user.fhir_user and user.fhir_user.startswith("Practitioner/"):
            extra_roles, extra_orgs = affiliation(uow, user.fhir_user)
            roles |= extra_roles
            organizations += [o for o in extra_orgs if o not in organizations]
    return frozenset(roles), tuple(organizations), user.fhir_user


def _institutions(uow, organizations) -> list[str]:
    """Each organization with its whole institution (parent and units), the organization itself first."""
    found = []
    for organization in organizations:
        units = institution_units(uow, organization.split("/", 1)[1])
        for unit in [organization] + units:
            if unit not in found:
                found.append(unit)
    return found


def _launch_patient(authority: Authority, user: User, roles, scopes: Scopes, chosen: str | None) -> str | None:
    """The patient context for launch/patient: the user's own record, or one they chose and may open."""
    if not scopes.has("launch/patient"):
        return None
    own = user.fhir_user.split("/", 1)[1] if user.fhir_user and user.fhir_user.startswith("Patient/") else None
    if not chosen or chosen == own:
        return own
    from ihs.auth.policy import default_policy

    with authority.store.session() as uow:
        if "patient" in roles:
            probe = Principal(user.username, frozenset(roles), fhir_user=user.fhir_user)
            if chosen in default_policy().proxies(probe, uow):
                return chosen
            raise OAuthError("access_denied", f"you are not a proxy for Patient/{chosen}", 403)
        stored = uow.current("Patient", chosen)
        if stored is None or stored.deleted:
            raise OAuthError("invalid_request", f"there is no Patient/{chosen}")
    return chosen


# -- the token endpoint --------------------------------------------------------------------------

def token(authority: Authority, form) -> dict:
    """Answer a token request (authorization_code, refresh_token or client_credentials)."""
    grant_type = form.get("grant_type")
    if grant_type == "authorization_code":
        return _authorization_code(authority, form)
    if grant_type == "refresh_token":
        return _refresh(authority, form)
    if grant_type == "client_credentials":
        return _client_credentials(authority, form)
    raise OAuthError("unsupported_grant_type",
                     "grant_type is authorization_code, refresh_token or client_credentials")


def _calling_client(authority: Authority, conn, form) -> Client:
    """The client making a token request: by its assertion (backend) or its client_id (public)."""
    if form.get("client_assertion") or form.get("client_assertion_type"):
        return authenticate_client(conn, form.get("client_assertion_type"), form.get("client_assertion"),
                                   authority.token_endpoint, max_lifetime=authority.tokens.assertion_max_seconds)
    client = get_client(conn, form.get("client_id") or "")
    if client is None or not client.active:
        raise OAuthError("invalid_client", "unknown client_id", 401)
    if client.kind != "public":
        raise OAuthError("invalid_client", "this client authenticates with private_key_jwt", 401)
    return client


def _user_tokens(authority: Authority, client: Client, user: User, scope: str, patient: str | None,
                 nonce: str | None, break_glass: str | None, conn) -> dict:
    roles, organizations, fhir_user = identity(authority, user)
    access, claims = authority.access_token(subject=user.username, client_id=client.client_id, scope=scope,
                                            roles=roles, organizations=organizations, fhir_user=fhir_user,
                                            patient=patient, break_glass=break_glass)
    response = {"access_token": access, "token_type": "Bearer", "expires_in": claims["exp"] - claims["iat"],
                "scope": scope}
    scopes = parse_scopes(scope)
    if patient:
        response["patient"] = patient
        response["need_patient_banner"] = True
    if scopes.has("openid") and (scopes.has("fhirUser") or scopes.has("profile")):
        response["id_token"] = authority.id_token(subject=user.username, client_id=client.client_id,
                                                  fhir_user=fhir_user, nonce=nonce, display=user.display)
    if scopes.has("offline_access") or scopes.has("online_access"):
        response["refresh_token"] = issue_refresh_token(conn, client_id=client.client_id, username=user.username,
                                                        scope=scope, patient=patient,
                                                        lifetime=authority.tokens.refresh_days * 86400)
    return response


def _authorization_code(authority: Authority, form) -> dict:
    with write_transaction(authority.store.engine) as conn:
        client = _calling_client(authority, conn, form)
        row = redeem_code(conn, form.get("code") or "", client_id=client.client_id,
                          redirect_uri=form.get("redirect_uri") or "", verifier=form.get("code_verifier"))
        user = get_user(conn, row.username)
        if user is None or not user.active:
            raise OAuthError("invalid_grant", "the account is no longer active")
        return _user_tokens(authority, client, user, row.scope, row.patient, row.nonce, row.break_glass, conn)


def _refresh(authority: Authority, form) -> dict:
    with write_transaction(authority.store.engine) as conn:
        client = _calling_client(authority, conn, form)
        row = use_refresh_token(conn, form.get("refresh_token") or "", client.client_id)
        scope = row.scope
        if form.get("scope"):
            requested, original = parse_scopes(form["scope"]), parse_scopes(row.scope)
            wider = [s.text for s in requested.clinical if not any(s.within(o) for o in original.clinical)]
            if wider or not requested.other <= original.other:
                raise OAuthError("invalid_scope", f"a refresh cannot widen the scopes ({' '.join(wider)})")
            scope = requested.text
        user = get_user(conn, row.username)
        if user is None or not user.active:
            raise OAuthError("invalid_grant", "the account is no longer active")
        return _user_tokens(authority, client, user, scope, row.patient, None, None, conn)


def _client_credentials(authority: Authority, form) -> dict:
    with write_transaction(authority.store.engine) as conn:
        client = _calling_client(authority, conn, form)
    if client.kind != "backend":
        raise OAuthError("unauthorized_client", "client_credentials is for backend clients (private_key_jwt)")
    try:
        requested = parse_scopes(form.get("scope"))
    except FhirError as exc:
        raise OAuthError("invalid_scope", str(exc)) from None
    granted = grant_scopes(requested, client.scopes)
    granted = Scopes(tuple(s for s in granted.clinical if s.context == "system"), frozenset())
    if not granted.clinical:
        raise OAuthError("invalid_scope", f"none of the requested system/ scopes is allowed ({client.scopes})")
    return issue_client_token(authority, client, granted.text)


def issue_client_token(authority: Authority, client: Client, scope: str, lifetime: int | None = None) -> dict:
    """An access token for a backend client (client_credentials, and `ihs token`)."""
    with authority.store.session() as uow:
        organizations = _institutions(uow, client.organizations)
    access, claims = authority.access_token(subject=client.client_id, client_id=client.client_id, scope=scope,
                                            roles=client.roles, organizations=organizations,
                                            fhir_user=client.fhir_user, patient=client.patient, lifetime=lifetime)
    return {"access_token": access, "token_type": "Bearer", "expires_in": claims["exp"] - claims["iat"],
            "scope": scope}


# -- introspection and revocation ----------------------------------------------------------------

def introspect(authority: Authority, token: str) -> dict:
    """RFC 7662: what a token is, or {"active": false}."""
    try:
        claims = authority.verify(token)
    except Unauthorized:
        claims = None
    if claims:
        info = {"active": True, "token_type": "Bearer"}
        info.update({k: claims[k] for k in ("scope", "client_id", "sub", "exp", "iat", "iss", "aud", "fhirUser",
                                            "patient", "jti") if k in claims})
        return info
    with authority.store.engine.connect() as conn:
        row = refresh_token_info(conn, token)
    if row is None:
        return {"active": False}
    return {"active": True, "token_type": "refresh_token", "scope": row.scope, "client_id": row.client_id,
            "sub": row.username, "exp": row.expires_at, "iat": row.issued_at}


def revoke(authority: Authority, token: str, client_id: str | None = None) -> None:
    """RFC 7009: revoke an access or refresh token (of `client_id`, when given); unknown tokens are ignored."""
    try:
        claims = authority.key.decode(token).claims
    except Exception:
        claims = None
    with write_transaction(authority.store.engine) as conn:
        if claims and claims.get("jti"):
            if client_id is None or claims.get("client_id") == client_id:
                authority.revocations.revoke(conn, claims["jti"], int(claims.get("exp", time.time())))
            return
        revoke_refresh_token(conn, token, client_id)


def smart_configuration(authority: Authority) -> dict:
    """/.well-known/smart-configuration (SMART App Launch 2.x)."""
    base = authority.base_url
    return {
        "issuer": authority.issuer,
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "authorization_endpoint": f"{base}/auth/authorize",
        "token_endpoint": authority.token_endpoint,
        "introspection_endpoint": f"{base}/auth/introspect",
        "revocation_endpoint": f"{base}/auth/revoke",
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "response_types_supported": ["code"],
        "token_endpoint_auth_methods_supported": ["private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": list(ALGORITHMS),
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": ["openid", "fhirUser", "profile", "launch", "launch/patient", "offline_access",
                             "online_access", "patient/*.rs", "patient/*.cruds", "user/*.rs", "user/*.cruds",
                             "system/*.rs", "system/*.cruds", "patient/*.read", "user/*.read", "user/*.write"],
        "capabilities": ["launch-standalone", "authorize-post", "client-public", "client-confidential-asymmetric",
                         "context-standalone-patient", "permission-offline", "permission-online",
                         "permission-patient", "permission-user", "permission-v1", "permission-v2",
                         "sso-openid-connect"],
        "client_assertion_type": ASSERTION_TYPE,
    }
