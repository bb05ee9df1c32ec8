"""Routes of the auth function: accounts, tokens, sessions, and the admin's user list.

Thin: validation in pydantic models and amazon_pilot.domain.accounts, storage in
amazon_pilot.accounts.store, tokens and the caller's identity in amazon_pilot.platform.security.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response

from amazon_pilot.accounts import store
from amazon_pilot.accounts.schemas import (
    AdminUserUpdate,
    LoginIn,
    LogoutIn,
    MeUpdate,
    PasswordChangeIn,
    RefreshIn,
    RegisterIn,
    SessionOut,
    TokenPair,
    UserOut,
    UserPage,
)
from amazon_pilot.domain import accounts as rules
from amazon_pilot.platform import ratelimit
from amazon_pilot.platform.db import transaction
from amazon_pilot.platform.errors import (
    ApiError,
    Conflict,
    ErrorResponse,
    NotFound,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from amazon_pilot.platform.security import (
    ACCESS_TOKEN_TTL_SECONDS,
    CurrentUser,
    current_user,
    ensure_owner,
    issue_access_token,
    require_admin,
)
from amazon_pilot.platform.settings import settings

router = APIRouter(tags=["auth"])
admin_router = APIRouter(tags=["admin"])

LOGIN_FAILED = "email or password is incorrect"
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorResponse, "description": "Conflict"}}
_REFUSED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Credentials or token refused"}}


def _login_policy() -> tuple[int, int]:
    """(failures allowed per email and window, window seconds)."""
    cfg = settings()
    return cfg.login_max_failures, cfg.login_failure_window_s


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
        SESSION_COOKIE, token, max_age=int(store.REFRESH_TOKEN_TTL.total_seconds()),
        path=_COOKIE_PATH, httponly=True, samesite="strict",
        secure=request.url.scheme == "https",  # API Gateway speaks HTTPS; pilot run, HTTP
    )


def _clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=_COOKIE_PATH, httponly=True, samesite="strict")


_NO_TOKEN = ("no refresh token: send refresh_token, or the session cookie with the "
             "X-Session-Cookie: 1 header")


def _presented_token(body_token: str | None, request: Request) -> str | None:
    """The refresh token of the body, else the session cookie's (cookie mode only)."""
    if body_token:
        return body_token
    return request.cookies.get(SESSION_COOKIE) if _cookie_mode(request) else None


# ------------------------------------------------------------------ helpers


def _context(request: Request) -> dict[str, Any]:
    return {"ip": ratelimit.client_ip(request.scope),
            "request_id": request.scope.get("state", {}).get("request_id")}


def _rule_error(exc: rules.AccountRuleError) -> ApiError:
    return ValidationFailed(f"{exc.field}: {exc.message}",
                            details=[{"field": exc.field, "message": exc.message}])


def _pair(user_id: uuid.UUID, epoch: int, refresh_token: str, request: Request,
          response: Response) -> TokenPair:
    if _cookie_mode(request):
        _set_session_cookie(request, response, refresh_token)
        return TokenPair(access_token=issue_access_token(user_id, epoch), refresh_token=None,
                         expires_in=ACCESS_TOKEN_TTL_SECONDS)
    return TokenPair(access_token=issue_access_token(user_id, epoch),
                     refresh_token=refresh_token, expires_in=ACCESS_TOKEN_TTL_SECONDS)


def _user_agent(request: Request) -> str | None:
    return request.headers.get("user-agent")


# ------------------------------------------------------------------ accounts


@router.post("/v1/auth/register", status_code=201, response_model=UserOut,
             summary="Create an account (plan free, role seller)", responses=_CONFLICT)
async def register(body: RegisterIn, request: Request) -> dict[str, Any]:
    try:
        email = rules.normalize_email(body.email)
        rules.validate_password(body.password)
    except rules.AccountRuleError as exc:
        raise _rule_error(exc) from None
    try:
        user = store.create_user(email, body.password, company_name=body.company_name)
    except store.EmailTaken:
        raise Conflict("an account with this email already exists",
                       details=[{"field": "email", "message": "already registered"}]) from None
    store.audit(None, "auth.register", user_id=user["id"], actor_id=user["id"],
                target=email, **_context(request))
    return user


@router.post("/v1/auth/login", response_model=TokenPair, summary="Exchange credentials for "
             "an access token (15 min) and a refresh token (30 days)", responses=_REFUSED)
async def login(body: LoginIn, request: Request, response: Response) -> TokenPair:
    ctx = _context(request)
    try:
        email = rules.normalize_email(body.email)
    except rules.AccountRuleError:
        email = body.email.strip().lower()
    max_failures, window = _login_policy()
    bucket = f"login-fail:{email}"
    if ratelimit.peek(bucket, window) >= max_failures:
        _, reset_at = ratelimit.current_window(window)
        retry = ratelimit.RateDecision(max_failures, max_failures + 1, reset_at).reset_in()
        store.audit(None, "auth.login_throttled", target=email, **ctx)
        raise TooManyRequests(f"too many failed logins for this email; retry in {retry} s",
                              headers={"Retry-After": str(retry)})
    record = store.user_for_login(email)
    # the same Argon2 work whether or not the account exists
    ok = rules.verify_password(record.password_hash if record else rules.dummy_hash(),
                               body.password)
    if record is None or not ok:
        ratelimit.hit(bucket, max_failures, window)
        store.audit(None, "auth.login_failed", user_id=record.id if record else None,
                    target=email, details={"reason": "bad_password" if record else
                                           "unknown_email"}, **ctx)
        raise Unauthorized(LOGIN_FAILED)
    if not record.is_active:
        store.audit(None, "auth.login_failed", user_id=record.id, target=email,
                    details={"reason": "deactivated"}, **ctx)
        raise Unauthorized("this account is deactivated")
    ratelimit.clear(bucket)
    if rules.needs_rehash(record.password_hash):
        store.update_password_hash(record.id, rules.hash_password(body.password))
    with transaction() as conn:
        refresh = store.new_refresh_token(conn, record.id, ip=ctx["ip"],
                                          user_agent=_user_agent(request))
        store.audit(conn, "auth.login", user_id=record.id, actor_id=record.id, target=email,
                    **ctx)
    return _pair(record.id, record.auth_epoch, refresh, request, response)


_REFRESH_REFUSED = {
    "unknown": "the refresh token is not valid",
    "reused": "the refresh token was already used; every session of this login is revoked",
    "revoked": "the refresh token has been revoked",
    "expired": "the refresh token has expired; log in again",
    "inactive": "this account is deactivated",
}


@router.post("/v1/auth/refresh", response_model=TokenPair,
             summary="Rotate a refresh token into a new token pair", responses=_REFUSED)
async def refresh(body: RefreshIn, request: Request, response: Response) -> TokenPair:
    ctx = _context(request)
    presented = _presented_token(body.refresh_token, request)
    if presented is None:
        raise Unauthorized(_NO_TOKEN)
    with transaction() as conn:
        rotation = store.rotate_refresh_token(conn, presented, ip=ctx["ip"],
                                              user_agent=_user_agent(request))
        if rotation.outcome == "reused":
            store.audit(conn, "auth.refresh_reuse", user_id=rotation.user_id,
                        target=str(rotation.family_id), **ctx)
    if rotation.outcome != "ok":
        headers = None
        if _cookie_mode(request):  # a dead session cookie is cleared with the refusal
            cleared = Response()
            _clear_session_cookie(cleared)
            headers = {"set-cookie": cleared.headers["set-cookie"]}
        raise Unauthorized(_REFRESH_REFUSED[rotation.outcome], headers=headers)
    assert rotation.user_id is not None and rotation.token is not None
    return _pair(rotation.user_id, rotation.auth_epoch, rotation.token, request, response)


@router.post("/v1/auth/logout", status_code=204, response_class=Response,
             summary="Revoke the session of a refresh token (or all sessions)",
             responses=_REFUSED)
async def logout(body: LogoutIn, request: Request) -> Response:
    ctx = _context(request)
    done = Response(status_code=204)
    if _cookie_mode(request):
        _clear_session_cookie(done)
    presented = _presented_token(body.refresh_token, request)
    if presented is None:
        if _cookie_mode(request):
            return done  # no cookie left: this browser is signed out already
        raise Unauthorized(_NO_TOKEN)
    with transaction() as conn:
        found = store.family_of(conn, presented)
        if found is not None:
            user_id, family_id = found
            if body.all_sessions:
                store.revoke_user_sessions(conn, user_id, "logout_all")
            else:
                store.revoke_family(conn, family_id, "logout")
            store.audit(conn, "auth.logout", user_id=user_id, actor_id=user_id,
                        target=str(family_id), details={"all": body.all_sessions}, **ctx)
    return done


@router.get("/v1/auth/me", response_model=UserOut, summary="The caller's account")
async def me(user: CurrentUser = Depends(current_user)) -> dict[str, Any]:
    found = store.get_user(user.id)
    if found is None:
        raise NotFound("user not found")
    return found


@router.patch("/v1/auth/me", response_model=UserOut,
              summary="Change company name and notification preferences")
async def update_me(body: MeUpdate, user: CurrentUser = Depends(current_user)) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if "company_name" in body.model_fields_set:
        changes["company_name"] = body.company_name
    if body.notification_prefs is not None:
        changes["notification_prefs"] = body.notification_prefs.model_dump(exclude_none=True)
    updated = store.update_profile(user.id, changes)
    if updated is None:
        raise NotFound("user not found")
    return updated


@router.post("/v1/auth/password", response_model=TokenPair,
             summary="Change the password; ends every other session and returns a new pair")
async def change_password(body: PasswordChangeIn, request: Request, response: Response,
                          user: CurrentUser = Depends(current_user)) -> TokenPair:
    ctx = _context(request)
    current_hash = store.password_hash_of(user.id)
    if current_hash is None or not rules.verify_password(current_hash, body.current_password):
        store.audit(None, "auth.password_change_failed", user_id=user.id, actor_id=user.id,
                    **ctx)
        raise ValidationFailed("current_password: the current password is not correct",
                               details=[{"field": "current_password",
                                         "message": "not correct"}])
    try:
        rules.validate_password(body.new_password, "new_password")
    except rules.AccountRuleError as exc:
        raise _rule_error(exc) from None
    if body.new_password == body.current_password:
        raise ValidationFailed("new_password: must differ from the current password",
                               details=[{"field": "new_password",
                                         "message": "must differ from the current password"}])
    new_hash = rules.hash_password(body.new_password)
    with transaction() as conn:
        epoch = store.change_password(conn, user.id, new_hash)
        refresh_token = store.new_refresh_token(conn, user.id, ip=ctx["ip"],
                                                user_agent=_user_agent(request))
        store.audit(conn, "auth.password_changed", user_id=user.id, actor_id=user.id, **ctx)
    return _pair(user.id, epoch, refresh_token, request, response)


@router.get("/v1/auth/sessions", response_model=list[SessionOut],
            summary="The caller's live sessions (one per login)")
async def sessions(user: CurrentUser = Depends(current_user)) -> list[dict[str, Any]]:
    return store.list_sessions(user.id)


@router.delete("/v1/auth/sessions/{session_id}", status_code=204, response_class=Response,
               summary="End one of the caller's sessions")
async def end_session(session_id: uuid.UUID, request: Request,
                      user: CurrentUser = Depends(current_user)) -> Response:
    ensure_owner(store.session_owner(session_id), user, "session")
    with transaction() as conn:
        store.revoke_family(conn, session_id, "ended_by_user")
        store.audit(conn, "auth.session_ended", user_id=user.id, actor_id=user.id,
                    target=str(session_id), **_context(request))
    return Response(status_code=204)


# ------------------------------------------------------------------ admin


@admin_router.get("/v1/admin/users", response_model=UserPage, summary="Every account, paginated")
async def admin_list_users(
    limit: int = Query(50, ge=1, le=200),
    offset: int = Query(0, ge=0, le=1_000_000),
    admin: CurrentUser = Depends(require_admin),
) -> dict[str, Any]:
    items, total = store.list_users(limit, offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@admin_router.patch("/v1/admin/users/{user_id}", response_model=UserOut,
                    summary="Change an account's plan, role or active flag", responses=_CONFLICT)
async def admin_update_user(user_id: uuid.UUID, body: AdminUserUpdate, request: Request,
                            admin: CurrentUser = Depends(require_admin)) -> dict[str, Any]:
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise ValidationFailed("nothing to change: send plan, role or is_active",
                               details=[{"field": "body", "message": "no change given"}])
    if user_id == admin.id and (changes.get("role", "admin") != "admin"
                                or changes.get("is_active") is False):
        raise Conflict("administrators cannot remove their own admin role or deactivate "
                       "themselves")
    ctx = _context(request)
    with transaction() as conn:
        result = store.admin_update_user(conn, user_id, changes)
        if result is None:
            raise NotFound("user not found")
        before, after = result
        for field, action in (("plan", "admin.plan_changed"), ("role", "admin.role_changed"),
                              ("is_active", "admin.active_changed")):
            if field in changes and before[field] != after[field]:
                store.audit(conn, action, user_id=user_id, actor_id=admin.id,
                            target=str(user_id),
                            details={"from": before[field], "to": after[field]}, **ctx)
    return after


router.include_router(admin_router)
