"""The built-in OpenID Connect issuer's routes, under ``/oidc``.

Discovery, JWKS, device authorization (RFC 8628), the token endpoint, userinfo, and the two
pages a person uses: ``/oidc/device`` (enter a user code, log in, approve) and
``/oidc/authorize`` (log in and approve a browser client's authorization code request). They
are not openEO endpoints, so they stay out of the capabilities document; they are public, as an
issuer's routes must be. Work that touches the database runs in the thread pool.
"""

from __future__ import annotations

from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit

from authlib.oauth2.rfc6749.errors import InsecureTransportError, OAuth2Error
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from terracube.auth import pages
from terracube.auth.issuer import DEFAULT_CLIENT_ID, DEVICE_CODE, SCOPES, Context, FormRequest, Issuer
from terracube.auth.keys import ALGORITHM
from terracube.auth.service import ISSUER_PATH, auth_service
from terracube.auth.limits import TooManyLoginAttempts
from terracube.auth.tokens import TokenRejected
from terracube.auth.user import LOCAL_USER

router = APIRouter(prefix=ISSUER_PATH, include_in_schema=False)
CREDENTIAL_FIELDS = ("name", "password", "decision")
MAX_FORM_BYTES = 64 * 1024


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (all OAuth requests and HTML forms send), first value of each field."""
    if request.method != "POST":
        return {}
    cached = getattr(request.state, "oauth_form", None)
    if cached is None:
        body = await request.body()
        if len(body) > MAX_FORM_BYTES:
            body = b""
        cached = {}
        for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            cached.setdefault(key, value)
        request.state.oauth_form = cached
    return cached


def context(request: Request) -> Context:
    service = auth_service(request.app)
    return Context(service, service.issuer(request), service.base_url(request), request.client.host if request.client else "")


async def oauth_request(request: Request, ctx: Context, drop: tuple[str, ...] = ()) -> FormRequest:
    """The request as authlib reads it; its URL is the public one when ``TERRACUBE_PUBLIC_URL`` is set."""
    form = await read_form(request)
    fields = {key: value for key, value in form.items() if key not in drop}
    uri = ctx.base_url + request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return FormRequest(request.method, uri, request.headers, dict(request.query_params), fields)


def client_host(request: Request) -> str:
    return request.client.host if request.client else ""


def retry_later(page: Response, error: TooManyLoginAttempts) -> Response:
    page.headers["Retry-After"] = str(error.retry_after)
    return page


def oauth_error(error: OAuth2Error) -> JSONResponse:
    return JSONResponse(dict(error.get_body()), status_code=error.status_code, headers={"Cache-Control": "no-store"})


@router.get("/.well-known/openid-configuration")
def discovery(request: Request) -> dict:
    issuer = auth_service(request.app).issuer(request)
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "device_authorization_endpoint": f"{issuer}/device_authorization",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks",
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", DEVICE_CODE],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["sub", "name", "preferred_username", "iss", "aud", "exp", "iat", "auth_time", "nonce"],
    }


@router.get("/jwks")
async def jwks(request: Request) -> Response:
    keys = await run_in_threadpool(auth_service(request.app).keys.jwks)
    return JSONResponse(keys, headers={"Cache-Control": "public, max-age=60"})


async def answer_with(request: Request, respond: Callable[[Issuer, FormRequest], Response]) -> Response:
    """Read an OAuth 2.0 form request and let the issuer answer it (off the event loop: it uses the database)."""
    ctx = context(request)
    try:
        oauth = await oauth_request(request, ctx)
    except InsecureTransportError as error:
        return oauth_error(error)
    return await run_in_threadpool(respond, Issuer(ctx), oauth)


@router.post("/device_authorization")
async def device_authorization(request: Request) -> Response:
    return await answer_with(request, lambda issuer, oauth: issuer.create_endpoint_response("device_authorization", oauth))


@router.post("/token")
async def token(request: Request) -> Response:
    return await answer_with(request, lambda issuer, oauth: issuer.create_token_response(oauth))


@router.api_route("/userinfo", methods=["GET", "POST"])
def userinfo(request: Request) -> Response:
    service = auth_service(request.app)
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    try:
        if scheme.lower() != "bearer":
            raise TokenRejected("no bearer token")
        claims = service.tokens.validate(token.strip(), service.issuer(request))
        user = service.user_for(str(claims["sub"]), bool(claims.get("terracube_local")))
        if user is None:
            raise TokenRejected("no such user")
    except TokenRejected:
        challenge = 'Bearer error="invalid_token"'
        return JSONResponse({"error": "invalid_token"}, status_code=401, headers={"WWW-Authenticate": challenge})
    return {"sub": user.user_id, "name": user.name, "preferred_username": user.name}


# --- the device page (RFC 8628 3.3) ----------------------------------------------------------
@router.get("/device")
def device_form(request: Request, user_code: str = "") -> Response:
    title = request.app.state.settings.title
    if auth_service(request.app).no_login_needed():
        return pages.nothing_to_approve(title)
    return pages.device_page(title, request.url.path, user_code=user_code)


@router.post("/device")
async def device_decision(request: Request) -> Response:
    form = await read_form(request)
    values = {key: form.get(key, "") for key in ("user_code", "name", "password", "decision")}
    return await run_in_threadpool(_decide_device, request, values)


def _decide_device(request: Request, values: dict[str, str]) -> Response:
    service, title = auth_service(request.app), request.app.state.settings.title
    grants, user_code = service.grants, values["user_code"]

    def again(message: str, status: int) -> Response:
        return pages.device_page(title, request.url.path, user_code=user_code, name=values["name"], error=message, status=status)

    if grants.pending_user_code(user_code) is None:
        return again("This code is unknown or has expired. Start the login in your program again to get a new one.", 400)
    if values["decision"] != "approve":
        grants.decide(user_code, None)
        return pages.done_page(title, approved=False)
    try:
        user = service.check_password(values["name"], values["password"], origin=client_host(request))
    except TooManyLoginAttempts as error:
        return retry_later(again(error.message, error.status), error)
    if user is None:
        return again("Wrong user name or password.", 403)
    if not grants.decide(user_code, user):
        return again("This code is unknown or has expired. Start the login in your program again to get a new one.", 400)
    return pages.done_page(title, approved=True)


# --- the authorization endpoint (authorization code flow with PKCE) --------------------------
@router.api_route("/authorize", methods=["GET", "POST"])
async def authorize(request: Request) -> Response:
    ctx = context(request)
    try:
        oauth = await oauth_request(request, ctx, drop=CREDENTIAL_FIELDS)
    except InsecureTransportError as error:
        return pages.error_page(f"{error.description} Serve terracube over HTTPS (a reverse proxy) to log in from other machines.")
    form = await read_form(request)
    answer = {key: form.get(key, "") for key in CREDENTIAL_FIELDS}
    return await run_in_threadpool(_authorize, request, ctx, oauth, answer)


def _authorize(request: Request, ctx: Context, oauth: FormRequest, answer: dict[str, str]) -> Response:
    issuer, service = Issuer(ctx), ctx.service
    try:
        grant = issuer.get_consent_grant(oauth)
    except OAuth2Error as error:
        if error.redirect_uri:  # a known client and redirect: the client hears about it
            return issuer.handle_error_response(oauth, error)
        return pages.error_page(f"The login request is not valid: {error.description or error.error}.")
    if service.no_login_needed():
        return issuer.create_authorization_response(oauth, grant_user=LOCAL_USER, grant=grant)
    if request.method == "GET":
        return _authorize_page(request, ctx, oauth)
    if answer["decision"] != "approve":
        return issuer.create_authorization_response(oauth, grant_user=None, grant=grant)
    try:
        user = service.check_password(answer["name"], answer["password"], origin=client_host(request))
    except TooManyLoginAttempts as error:
        return retry_later(_authorize_page(request, ctx, oauth, name=answer["name"], error=error.message, status=error.status), error)
    if user is None:
        return _authorize_page(request, ctx, oauth, name=answer["name"], error="Wrong user name or password.", status=403)
    return issuer.create_authorization_response(oauth, grant_user=user, grant=grant)


def _authorize_page(request: Request, ctx: Context, oauth: FormRequest, **kw: Any) -> Response:
    data = oauth.payload.data
    client = "the default openEO client" if data.get("client_id") == DEFAULT_CLIENT_ID else data.get("client_id", "")
    host = urlsplit(data.get("redirect_uri") or "").netloc or "(unknown)"
    params = {key: value for key, value in data.items() if key not in CREDENTIAL_FIELDS}
    return pages.authorize_page(ctx.settings.title, request.url.path, client, host, params, **kw)
