"""Routes of the auth function: accounts, tokens, sessions, and the admin's user list.

HTTP only: each route calls one function of amazon_pilot.accounts.service and shapes
its answer; the session cookie and its header are handled here. Tokens and the caller's
identity come from amazon_pilot.platform.security.
"""

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from amazon_pilot.accounts import service, store
from amazon_pilot.accounts.schemas import (
    AdminUserUpdate,
    LoginIn,
    LoginMfaIn,
    LogoutIn,
    MeUpdate,
    MfaChallengeOut,
    MfaCodeIn,
    MfaConfirmOut,
    MfaEnrolmentOut,
    MfaProofIn,
    MfaStatusOut,
    PasswordChangeIn,
    RecoveryCodesOut,
    RefreshIn,
    RegisterAccepted,
    RegisterIn,
    SessionOut,
    TokenPair,
    UserOut,
    UserPage,
)
from amazon_pilot.platform import ratelimit
from amazon_pilot.platform.errors import ErrorResponse
from amazon_pilot.platform.ownership import owned
from amazon_pilot.platform.security import (
    AdminCaller,
    Caller,
)

router = APIRouter(tags=["auth"])
admin_router = APIRouter(tags=["admin"])

_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "Conflict"}}
_REFUSED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Credentials or token refused"}}

OwnedSession = Annotated[uuid.UUID, Depends(owned("session_id", store.owned_session,
                                                  "session not found"))]


# ------------------------------------------------------------------ the session cookie
# The browser session: the dashboard asks for its refresh token in an HttpOnly cookie,
# which no script can read, scoped to the auth routes and never sent cross-site. Cookie
# use needs the X-Session-Cookie header too, which a cross-site form cannot send.
SESSION_COOKIE = "ap_refresh"
SESSION_HEADER = "x-session-cookie"
_COOKIE_PATH = "/v1/auth"


def _cookie_mode(request: Request) -> bool:
    return request.headers.get(SESSION_HEADER) == "1"


def _set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, max_age=int(service.REFRESH_TOKEN_TTL.total_seconds()),
        path=_COOKIE_PATH, httponly=True, samesite="strict",
        secure=request.url.scheme == "https",  # API Gateway speaks HTTPS; pilot run, HTTP
    )


def _clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=_COOKIE_PATH, httponly=True, samesite="strict")


def _presented_token(body_token: str | None, request: Request) -> str | None:
    """The refresh token of the body, else the session cookie's (cookie mode only)."""
    if body_token:
        return body_token
    return request.cookies.get(SESSION_COOKIE) if _cookie_mode(request) else None


def _pair(grant: service.Grant, request: Request, response: Response) -> TokenPair:
    """The pair in the body, or the refresh token in the session cookie (cookie mode)."""
    refresh_token: str | None = grant.refresh_token
    if _cookie_mode(request):
        _set_session_cookie(request, response, grant.refresh_token)
        refresh_token = None
    return TokenPair(access_token=grant.access_token, refresh_token=refresh_token,
                     expires_in=grant.expires_in)


def _context(request: Request) -> service.RequestContext:
    return service.RequestContext(
        ip=ratelimit.client_ip(request.scope),
        request_id=request.scope.get("state", {}).get("request_id"),
        user_agent=request.headers.get("user-agent"),
    )


# ------------------------------------------------------------------ accounts


_THROTTLED: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorResponse, "description": "Too many attempts from this address; "
          "see Retry-After"}}


@router.post("/v1/auth/register", status_code=202, response_model=RegisterAccepted,
             summary="Create an account (plan free, role seller); the answer does not say "
             "whether the e-mail had one already", responses=_THROTTLED)
async def register(body: RegisterIn, request: Request) -> RegisterAccepted:
    message = service.register(body.email, body.password, body.company_name,
                               _context(request))
    return RegisterAccepted(message=message)


@router.post("/v1/auth/login", response_model=TokenPair | MfaChallengeOut,
             summary="Exchange credentials for an access token (15 min) and a refresh "
             "token (30 days), or, with two-step sign-in on, for an MFA challenge",
             responses={**_REFUSED, **_THROTTLED})
async def login(body: LoginIn, request: Request,
                response: Response) -> TokenPair | MfaChallengeOut:
    result = service.login(body.email, body.password, _context(request))
    if isinstance(result, service.MfaChallenge):
        return MfaChallengeOut(mfa_token=result.mfa_token, expires_in=result.expires_in)
    return _pair(result, request, response)


@router.post("/v1/auth/login/mfa", response_model=TokenPair,
             summary="Second step of sign-in: the MFA challenge token and a code",
             responses={**_REFUSED, **_THROTTLED})
async def login_mfa(body: LoginMfaIn, request: Request, response: Response) -> TokenPair:
    grant = service.login_mfa(body.mfa_token, body.code, body.recovery_code, _context(request))
    return _pair(grant, request, response)


@router.post("/v1/auth/refresh", response_model=TokenPair,
             summary="Rotate a refresh token into a new token pair", responses=_REFUSED)
async def refresh(body: RefreshIn, request: Request, response: Response) -> TokenPair:
    try:
        grant = service.refresh(_presented_token(body.refresh_token, request),
                                _context(request))
    except service.RefreshRefused as refused:
        if _cookie_mode(request):  # a dead session cookie is cleared with the refusal
            cleared = Response()
            _clear_session_cookie(cleared)
            refused.headers["set-cookie"] = cleared.headers["set-cookie"]
        raise
    return _pair(grant, request, response)


@router.post("/v1/auth/logout", status_code=204, response_class=Response,
             summary="Revoke the session of a refresh token (or all sessions)",
             responses=_REFUSED)
async def logout(body: LogoutIn, request: Request) -> Response:
    service.logout(_presented_token(body.refresh_token, request), body.all_sessions,
                   _context(request), browser=_cookie_mode(request))
    done = Response(status_code=204)
    if _cookie_mode(request):
        _clear_session_cookie(done)
    return done


@router.get("/v1/auth/me", response_model=UserOut, summary="The caller's account")
async def me(user: Caller) -> UserOut:
    return UserOut.model_validate(service.me(user))


@router.patch("/v1/auth/me", response_model=UserOut,
              summary="Change company name, seller identity (seller ids, brands) and "
              "notification preferences")
async def update_me(body: MeUpdate, user: Caller) -> UserOut:
    return UserOut.model_validate(service.update_me(user, body))


@router.post("/v1/auth/password", response_model=TokenPair,
             summary="Change the password; ends every other session and returns a new pair")
async def change_password(body: PasswordChangeIn, request: Request, response: Response,
                          user: Caller) -> TokenPair:
    grant = service.change_password(user, body, _context(request))
    return _pair(grant, request, response)


@router.get("/v1/auth/mfa", response_model=MfaStatusOut,
            summary="Whether two-step sign-in is on, and recovery codes left")
async def mfa_status(user: Caller) -> MfaStatusOut:
    return MfaStatusOut.model_validate(service.mfa_status(user))


@router.post("/v1/auth/mfa/enrol", response_model=MfaEnrolmentOut, responses=_CONFLICT,
             summary="Start enrolling an authenticator app: a new secret and its QR code")
async def mfa_enrol(request: Request, user: Caller) -> MfaEnrolmentOut:
    return MfaEnrolmentOut.model_validate(service.start_mfa_enrolment(user, _context(request)))


@router.post("/v1/auth/mfa/confirm", response_model=MfaConfirmOut, responses=_CONFLICT,
             summary="Turn two-step sign-in on with a first code; returns the recovery "
             "codes (once) and a two-factor session")
async def mfa_confirm(body: MfaCodeIn, request: Request, response: Response,
                      user: Caller) -> MfaConfirmOut:
    done = service.confirm_mfa_enrolment(user, body.code, _context(request))
    return MfaConfirmOut(recovery_codes=done.recovery_codes,
                         tokens=_pair(done.grant, request, response))


@router.post("/v1/auth/mfa/disable", response_model=TokenPair, responses=_CONFLICT,
             summary="Turn two-step sign-in off (password and a code); ends every other "
             "session and returns a new pair")
async def mfa_disable(body: MfaProofIn, request: Request, response: Response,
                      user: Caller) -> TokenPair:
    grant = service.disable_mfa(user, body.password, body.code, _context(request))
    return _pair(grant, request, response)


@router.post("/v1/auth/mfa/recovery-codes", response_model=RecoveryCodesOut,
             responses=_CONFLICT,
             summary="Replace the recovery codes (password and a code); shown once")
async def mfa_recovery_codes(body: MfaProofIn, request: Request,
                             user: Caller) -> RecoveryCodesOut:
    return RecoveryCodesOut(recovery_codes=service.new_recovery_codes(
        user, body.password, body.code, _context(request)))


@router.get("/v1/auth/sessions", response_model=list[SessionOut],
            summary="The caller's live sessions (one per login)")
async def sessions(user: Caller) -> list[SessionOut]:
    return [SessionOut.model_validate(s).model_copy(update={"current": s.id == user.session_id})
            for s in service.sessions(user)]


@router.delete("/v1/auth/sessions/{session_id}", status_code=204, response_class=Response,
               summary="End one of the caller's sessions")
async def end_session(session_id: OwnedSession, request: Request, user: Caller) -> Response:
    service.end_session(user, session_id, _context(request))
    return Response(status_code=204)


# ------------------------------------------------------------------ admin


@admin_router.get("/v1/admin/users", response_model=UserPage, summary="Every account, paginated")
async def admin_list_users(
    admin: AdminCaller,
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=1_000_000),
) -> UserPage:
    users, total = service.list_users(limit, offset)
    return UserPage(items=[UserOut.model_validate(u) for u in users], total=total,
                    limit=limit, offset=offset)


@admin_router.patch("/v1/admin/users/{user_id}", response_model=UserOut,
                    summary="Change an account's plan, role or active flag", responses=_CONFLICT)
async def admin_update_user(user_id: uuid.UUID, body: AdminUserUpdate, request: Request,
                            admin: AdminCaller) -> UserOut:
    return UserOut.model_validate(
        service.admin_update_user(admin, user_id, body, _context(request)))


router.include_router(admin_router)
