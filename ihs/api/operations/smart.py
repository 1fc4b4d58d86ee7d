"""The SMART on FHIR authorization server over HTTP (logic in ihs/auth/server.py).

GET  /.well-known/smart-configuration   what the server supports and where its endpoints are
GET  /.well-known/jwks.json             the public key that verifies the server's tokens
GET  /auth/authorize                    the login page of the authorization code flow (PKCE S256)
POST /auth/authorize                    the login form: redirects to the app with a code
POST /auth/token                        authorization_code | refresh_token | client_credentials
POST /auth/introspect                   RFC 7662 (caller: a bearer token or a client assertion)
POST /auth/revoke                       RFC 7009

`authority_of(request)` is the process's ihs.auth.Authority, built on first use and kept on
`app.state.authority`; the API's authentication uses the same one.
"""
from __future__ import annotations

import html

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from ihs.api.http import base_url, mark, store_of
from ihs.audit import audit_event, record
from ihs.audit.events import MINOR_FAILURE
from ihs.auth import server
from ihs.auth.authority import Authority
from ihs.auth.errors import OAuthError, TooManyAttempts, Unauthorized
from ihs.auth.schema import write_transaction
from ihs.auth.scopes import parse_scopes

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
PAGE_HEADERS = {**NO_STORE, "X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"}


def authority_of(request: Request) -> Authority:
    """The authorization server of this app (one per process)."""
    state = request.app.state
    authority = getattr(state, "authority", None)
    if authority is None:
        authority = Authority(store_of(request), base_url(request))
        state.authority = authority
    return authority


async def _authority(request: Request) -> Authority:
    # the first call may create tables and a key: off the event loop
    return await run_in_threadpool(authority_of, request)


def _json(body: dict, status: int = 200, headers: dict | None = None) -> Response:
    return Response(orjson.dumps(body), status, {**NO_STORE, **(headers or {})}, media_type="application/json")


def _oauth_error(error: OAuthError) -> Response:
    headers = {"Retry-After": str(error.retry_after)} if isinstance(error, TooManyAttempts) else {}
    if error.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="ihs"' if error.error == "invalid_client" else 'Bearer realm="ihs"'
    return _json(error.body(), error.status, headers)


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _form(request: Request) -> dict:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str)}


# -- discovery -----------------------------------------------------------------------------------

async def smart_configuration(request: Request) -> Response:
    mark(request, "smart-configuration")
    return _json(server.smart_configuration(await _authority(request)))


async def jwks(request: Request) -> Response:
    mark(request, "jwks")
    return _json((await _authority(request)).key.public_jwks())


# -- authorize: the login page -------------------------------------------------------------------

async def authorize(request: Request) -> Response:
    mark(request, "authorize")
    authority = await _authority(request)
    params = dict(request.query_params) if request.method == "GET" else await _form(request)
    try:
        auth_request = await run_in_threadpool(server.authorization_request, authority, params)
    except server.RedirectError as error:
        return RedirectResponse(error.location, 302)
    except OAuthError as error:
        return HTMLResponse(_error_page(error), error.status, PAGE_HEADERS)
    if request.method == "GET" or "username" not in params:
        return HTMLResponse(login_page(auth_request), 200, PAGE_HEADERS)
    username = params.get("username", "").strip()
    client_id = auth_request.client.client_id
    try:
        result = await run_in_threadpool(server.login, authority, auth_request, username, params.get("password", ""),
                                         _address(request), params.get("patient") or None)
    except TooManyAttempts as error:
        await _audit_login(request, authority, username, False, error.description, client_id=client_id)
        return HTMLResponse(login_page(auth_request, error.description), 429,
                            {**PAGE_HEADERS, "Retry-After": str(error.retry_after)})
    except OAuthError as error:
        await _audit_login(request, authority, username, False, error.description, client_id=client_id)
        return HTMLResponse(login_page(auth_request, error.description), error.status, PAGE_HEADERS)
    await _audit_login(request, authority, username, True, None, result.user, client_id=client_id)
    return RedirectResponse(result.location, 302, NO_STORE)


async def _audit_login(request: Request, authority: Authority, username: str, ok: bool, problem: str | None,
                       user=None, client_id: str | None = None) -> None:
    event = audit_event("login" if ok else "login-failed", outcome="0" if ok else MINOR_FAILURE,
                        outcome_desc=problem, user=user.fhir_user if user else None, user_name=username or None,
                        client_id=client_id,
                        roles=user.roles if user else (), address=_address(request), server=authority.base_url)

    def write():
        with authority.store.session(write=True) as uow:
            record(uow, event)

    await run_in_threadpool(write)


def login_page(auth_request: server.AuthorizationRequest, problem: str | None = None) -> str:
    """The login form; the authorization request rides along in hidden fields."""
    e = html.escape
    hidden = "\n".join(f'<input type="hidden" name="{e(k)}" value="{e(v)}">' for k, v in auth_request.fields().items())
    scopes = parse_scopes(auth_request.scope)
    asked = "".join(f"<li><code>{e(s)}</code></li>" for s in auth_request.scope.split())
    patient_field = ""
    if scopes.has("launch/patient"):
        patient_field = ('<label>患者 / Patient id <small>(optional: a patient you care for or are proxy for)</small>'
                         '<input name="patient" autocomplete="off"></label>')
    notice = f'<p class="problem" role="alert">{e(problem)}</p>' if problem else ""
    glass = (f'<p class="glass">紧急授权 / Break-the-glass requested: {e(auth_request.break_glass)}. '
             'Every access will be audited and the patient notified.</p>') if auth_request.break_glass else ""
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>IHS 登录 / Sign in</title>
<style>
body {{ font-family: system-ui, sans-serif; background: #f3f6f9; margin: 0; }}
main {{ max-width: 26rem; margin: 4rem auto; background: #fff; padding: 2rem; border-radius: 8px;
       box-shadow: 0 1px 4px rgba(0,0,0,.15); }}
h1 {{ font-size: 1.3rem; margin-top: 0; }} label {{ display: block; margin: .8rem 0; }}
input:not([type=hidden]) {{ display: block; width: 100%; padding: .5rem; margin-top: .3rem; box-sizing: border-box; }}
button {{ margin-top: 1rem; width: 100%; padding: .6rem; background: #1565c0; color: #fff; border: 0;
         border-radius: 4px; font-size: 1rem; }}
.problem {{ color: #b71c1c; }} .glass {{ color: #e65100; }} ul {{ padding-left: 1.2rem; font-size: .85rem; }}
</style></head>
<body><main>
<h1>IHS 区域健康平台 登录<br><small>Sign in to IHS</small></h1>
<p><strong>{e(auth_request.client.name)}</strong> 请求访问 / asks for access:</p>
<ul>{asked}</ul>
{notice}{glass}
<form method="post" action="authorize">
{hidden}
<label>用户名 / Username<input name="username" autocomplete="username" required autofocus></label>
<label>密码 / Password<input name="password" type="password" autocomplete="current-password" required></label>
{patient_field}
<button type="submit">登录并授权 / Sign in and allow</button>
</form>
</main></body></html>"""


def _error_page(error: OAuthError) -> str:
    e = html.escape
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>IHS authorization error</title></head>'
            f'<body><h1>授权请求无效 / Invalid authorization request</h1><p><code>{e(error.error)}</code>: '
            f'{e(error.description)}</p></body></html>')


# -- token, introspection, revocation ------------------------------------------------------------

async def token(request: Request) -> Response:
    mark(request, "token")
    authority = await _authority(request)
    form = await _form(request)
    try:
        body = await run_in_threadpool(server.token, authority, form)
    except OAuthError as error:
        if form.get("grant_type") == "client_credentials":
            await _audit_login(request, authority, "", False, error.description, client_id=form.get("client_id"))
        return _oauth_error(error)
    if form.get("grant_type") == "client_credentials":
        await _audit_login(request, authority, "", True, None, client_id=_client_of(authority, body))
    return _json(body)


def _client_of(authority: Authority, body: dict) -> str | None:
    return authority.verify(body["access_token"]).get("client_id")


async def _caller_allowed(request: Request, authority: Authority, form: dict) -> None:
    """Introspection needs a caller: a valid bearer token or a backend client's assertion."""
    if request.headers.get("authorization"):
        await run_in_threadpool(authority.authenticate, request.headers)
        return
    if form.get("client_assertion"):
        def check():
            from ihs.auth.client_assertion import authenticate_client

            with write_transaction(authority.store.engine) as conn:
                authenticate_client(conn, form.get("client_assertion_type"), form["client_assertion"],
                                    (authority.token_endpoint, f"{authority.base_url}/auth/introspect"))
        await run_in_threadpool(check)
        return
    raise Unauthorized("introspection needs a bearer token or a client assertion", error="")


async def introspect(request: Request) -> Response:
    mark(request, "introspect")
    authority = await _authority(request)
    form = await _form(request)
    try:
        await _caller_allowed(request, authority, form)
    except Unauthorized as error:
        return _json({"error": "invalid_token" if error.error else "invalid_request",
                      "error_description": error.issues[0].diagnostics}, 401, error.headers)
    except OAuthError as error:
        return _oauth_error(error)
    if not form.get("token"):
        return _json({"error": "invalid_request", "error_description": "the token parameter is required"}, 400)
    return _json(await run_in_threadpool(server.introspect, authority, form["token"]))


async def revoke(request: Request) -> Response:
    mark(request, "revoke")
    authority = await _authority(request)
    form = await _form(request)
    if not form.get("token"):
        return _json({"error": "invalid_request", "error_description": "the token parameter is required"}, 400)
    client_id = form.get("client_id")
    if form.get("client_assertion"):
        def check():
            from ihs.auth.client_assertion import authenticate_client

            with write_transaction(authority.store.engine) as conn:
                return authenticate_client(conn, form.get("client_assertion_type"), form["client_assertion"],
                                           (authority.token_endpoint, f"{authority.base_url}/auth/revoke")).client_id
        try:
            client_id = await run_in_threadpool(check)
        except OAuthError as error:
            return _oauth_error(error)
    await run_in_threadpool(server.revoke, authority, form["token"], client_id)
    return _json({})


ROUTES = [
    Route("/.well-known/smart-configuration", smart_configuration, methods=["GET"]),
    Route("/.well-known/jwks.json", jwks, methods=["GET"]),
    Route("/auth/authorize", authorize, methods=["GET", "POST"]),
    Route("/auth/token", token, methods=["POST"]),
    Route("/auth/introspect", introspect, methods=["POST"]),
    Route("/auth/revoke", revoke, methods=["POST"]),
]
