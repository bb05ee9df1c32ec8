"""Accounts policy: registration, login throttling, refresh-token rotation with reuse
detection, sessions, password changes and the admin's changes to an account.

One function per route (plus `create_user`, the plain entry point the demo, benches and
tests use). SQL is in amazon_pilot.accounts.store; account rules (email, password,
hashing) in amazon_pilot.domain.accounts; cookies and headers in the router.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy import Connection

from amazon_pilot.accounts import store
from amazon_pilot.accounts.schemas import AdminUserUpdate, MeUpdate, PasswordChangeIn
from amazon_pilot.domain import accounts as rules
from amazon_pilot.domain import seller_identity as identity
from amazon_pilot.domain.plans import plan as plan_named
from amazon_pilot.platform import ratelimit
from amazon_pilot.platform.db import transaction
from amazon_pilot.platform.errors import (
    ApiError,
    Conflict,
    NotFound,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)
from amazon_pilot.platform.security import (
    ACCESS_TOKEN_TTL_SECONDS,
    CurrentUser,
    issue_access_token,
)
from amazon_pilot.platform.settings import settings

REFRESH_TOKEN_TTL = timedelta(days=30)
REFRESH_TOKEN_PREFIX = "rt_"

LOGIN_FAILED = "email or password is incorrect"
NO_TOKEN = ("no refresh token: send refresh_token, or the session cookie with the "
            "X-Session-Cookie: 1 header")


@dataclass(frozen=True)
class RequestContext:
    """Who is asking, as the audit log and the sessions list record it."""

    ip: str | None
    request_id: str | None
    user_agent: str | None


@dataclass(frozen=True)
class Grant:
    """A new token pair; the router decides whether the refresh token goes in a cookie."""

    access_token: str
    refresh_token: str
    expires_in: int


class RefreshRefused(Unauthorized):
    """A refresh token was presented and refused: the session holding it is over."""


def _grant(user_id: uuid.UUID, auth_epoch: int, refresh_token: str) -> Grant:
    return Grant(issue_access_token(user_id, auth_epoch), refresh_token,
                 ACCESS_TOKEN_TTL_SECONDS)


def _rule_error(exc: rules.AccountRuleError) -> ApiError:
    return ValidationFailed(f"{exc.field}: {exc.message}",
                            details=[{"field": exc.field, "message": exc.message}])


def _audit(conn: Connection | None, action: str, ctx: RequestContext, *,
           user_id: uuid.UUID | None = None, actor_id: uuid.UUID | None = None,
           target: str | None = None, details: dict[str, Any] | None = None) -> None:
    store.audit(conn, action, user_id=user_id, actor_id=actor_id, target=target, ip=ctx.ip,
                request_id=ctx.request_id, details=details)


# ------------------------------------------------------------------ accounts


def create_user(email: str, password: str, role: str = "seller", plan: str = "free",
                company_name: str | None = None) -> store.User:
    """Create an account (Argon2id hash); raises store.EmailTaken, or AccountRuleError /
    UnknownPlan for an invalid email, weak password, unknown role or plan."""
    normalized = rules.normalize_email(email)
    rules.validate_password(password)
    rules.validate_role(role)
    plan_named(plan)
    return store.insert_user(normalized, rules.hash_password(password), role=role, plan=plan,
                             company_name=company_name)


def register(email: str, password: str, company_name: str | None,
             ctx: RequestContext) -> store.User:
    """A seller's own sign-up: plan free, role seller."""
    try:
        normalized = rules.normalize_email(email)
        rules.validate_password(password)
    except rules.AccountRuleError as exc:
        raise _rule_error(exc) from None
    try:
        user = create_user(normalized, password, company_name=company_name)
    except store.EmailTaken:
        raise Conflict("an account with this email already exists",
                       details=[{"field": "email", "message": "already registered"}]) from None
    _audit(None, "auth.register", ctx, user_id=user.id, actor_id=user.id, target=normalized)
    return user


def login(email: str, password: str, ctx: RequestContext) -> Grant:
    """Credentials for a new session. Failed attempts are counted per email (known or
    not, so the answer never tells whether an account exists); too many in the window
    refuse every attempt, the right password included, until the window ends."""
    try:
        normalized = rules.normalize_email(email)
    except rules.AccountRuleError:
        normalized = email.strip().lower()
    cfg = settings()
    max_failures, window = cfg.login_max_failures, cfg.login_failure_window_s
    bucket = f"login-fail:{normalized}"
    if ratelimit.peek(bucket, window) >= max_failures:
        _, reset_at = ratelimit.current_window(window)
        retry = ratelimit.RateDecision(max_failures, max_failures + 1, reset_at).reset_in()
        _audit(None, "auth.login_throttled", ctx, target=normalized)
        raise TooManyRequests(f"too many failed logins for this email; retry in {retry} s",
                              headers={"Retry-After": str(retry)})
    record = store.user_for_login(normalized)
    # the same Argon2 work whether or not the account exists
    ok = rules.verify_password(record.password_hash if record else rules.dummy_hash(),
                               password)
    if record is None or not ok:
        ratelimit.hit(bucket, max_failures, window)
        _audit(None, "auth.login_failed", ctx, user_id=record.id if record else None,
               target=normalized,
               details={"reason": "bad_password" if record else "unknown_email"})
        raise Unauthorized(LOGIN_FAILED)
    if not record.is_active:
        _audit(None, "auth.login_failed", ctx, user_id=record.id, target=normalized,
               details={"reason": "deactivated"})
        raise Unauthorized("this account is deactivated")
    ratelimit.clear(bucket)
    if rules.needs_rehash(record.password_hash):
        store.update_password_hash(record.id, rules.hash_password(password))
    with transaction() as conn:
        refresh_token = _new_refresh_token(conn, record.id, None, ctx)
        _audit(conn, "auth.login", ctx, user_id=record.id, actor_id=record.id,
               target=normalized)
    return _grant(record.id, record.auth_epoch, refresh_token)


# ------------------------------------------------------------------ refresh tokens
# A login starts a family of refresh tokens (a session); each refresh spends the token
# and issues its successor in the family. Presenting a spent token again means it was
# stolen or replayed: the whole family is revoked.


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_refresh_token(conn: Connection, user_id: uuid.UUID, family_id: uuid.UUID | None,
                       ctx: RequestContext) -> str:
    token = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
    store.insert_refresh_token(conn, user_id, family_id or uuid.uuid4(), _hash_token(token),
                               REFRESH_TOKEN_TTL, ip=ctx.ip, user_agent=ctx.user_agent)
    return token


Outcome = Literal["ok", "unknown", "reused", "revoked", "expired", "inactive"]

_REFRESH_REFUSED: dict[Outcome, str] = {
    "unknown": "the refresh token is not valid",
    "reused": "the refresh token was already used; every session of this login is revoked",
    "revoked": "the refresh token has been revoked",
    "expired": "the refresh token has expired; log in again",
    "inactive": "this account is deactivated",
}


@dataclass(frozen=True)
class Rotation:
    outcome: Outcome
    user_id: uuid.UUID | None = None
    family_id: uuid.UUID | None = None
    auth_epoch: int = 0
    token: str | None = None


def _rotate(conn: Connection, token: str, ctx: RequestContext) -> Rotation:
    """Spend `token` and issue its successor; a reuse revokes the family, committed
    with the caller's transaction."""
    row = store.lock_refresh_token(conn, _hash_token(token))
    if row is None:
        return Rotation("unknown")
    if row.used:
        store.revoke_family(conn, row.family_id, "reuse_detected")
        return Rotation("reused", row.user_id, row.family_id)
    if row.revoked:
        return Rotation("revoked", row.user_id, row.family_id)
    if row.expired:
        return Rotation("expired", row.user_id, row.family_id)
    if not row.user_active:
        return Rotation("inactive", row.user_id, row.family_id)
    store.mark_refresh_token_used(conn, row.id)
    successor = _new_refresh_token(conn, row.user_id, row.family_id, ctx)
    return Rotation("ok", row.user_id, row.family_id, row.auth_epoch, successor)


def refresh(presented: str | None, ctx: RequestContext) -> Grant:
    """Rotate the presented refresh token into a new pair; RefreshRefused when it is
    unknown, spent, revoked, expired or its account deactivated."""
    if presented is None:
        raise Unauthorized(NO_TOKEN)
    with transaction() as conn:
        rotation = _rotate(conn, presented, ctx)
        if rotation.outcome == "reused":
            _audit(conn, "auth.refresh_reuse", ctx, user_id=rotation.user_id,
                   target=str(rotation.family_id))
    if rotation.outcome != "ok":
        raise RefreshRefused(_REFRESH_REFUSED[rotation.outcome])
    assert rotation.user_id is not None and rotation.token is not None
    return _grant(rotation.user_id, rotation.auth_epoch, rotation.token)


def logout(presented: str | None, all_sessions: bool, ctx: RequestContext, *,
           browser: bool) -> None:
    """End the session of the presented token (or every session of its account). A
    browser without a session cookie is signed out already; an API client must send one."""
    if presented is None:
        if browser:
            return
        raise Unauthorized(NO_TOKEN)
    with transaction() as conn:
        found = store.family_of(conn, _hash_token(presented))
        if found is None:
            return
        if all_sessions:
            store.revoke_user_sessions(conn, found.user_id, "logout_all")
        else:
            store.revoke_family(conn, found.family_id, "logout")
        _audit(conn, "auth.logout", ctx, user_id=found.user_id, actor_id=found.user_id,
               target=str(found.family_id), details={"all": all_sessions})


# ------------------------------------------------------------------ the caller's account


def me(user: CurrentUser) -> store.User:
    found = store.get_user(user.id)
    if found is None:
        raise NotFound("user not found")
    return found


def update_me(user: CurrentUser, body: MeUpdate) -> store.User:
    """company_name is replaced when sent (null clears it); preferences merge key by key;
    seller_ids and brands are replaced when sent (null or [] clears them), normalized by
    domain.seller_identity: one bad item refuses the whole request and changes nothing."""
    sent = body.model_fields_set
    try:
        seller_ids = (identity.normalize_seller_ids(body.seller_ids or [])
                      if "seller_ids" in sent else None)
        brands = identity.normalize_brands(body.brands or []) if "brands" in sent else None
    except identity.IdentityRuleError as exc:
        raise ValidationFailed(str(exc), details=[{"field": exc.field,
                                                   "message": exc.message}]) from None
    changes = store.ProfileChanges(
        company_name_given="company_name" in sent,
        company_name=body.company_name,
        notification_prefs=(body.notification_prefs.model_dump(exclude_none=True)
                            if body.notification_prefs is not None else {}),
        seller_ids=seller_ids,
        brands=brands,
    )
    updated = store.update_profile(user.id, changes)
    if updated is None:
        raise NotFound("user not found")
    return updated


def change_password(user: CurrentUser, body: PasswordChangeIn, ctx: RequestContext) -> Grant:
    """New password: every session ends (refresh tokens revoked, access tokens through the
    new auth epoch) and the caller gets a fresh pair."""
    current_hash = store.password_hash_of(user.id)
    if current_hash is None or not rules.verify_password(current_hash, body.current_password):
        _audit(None, "auth.password_change_failed", ctx, user_id=user.id, actor_id=user.id)
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
        epoch = store.set_password(conn, user.id, new_hash)
        store.revoke_user_sessions(conn, user.id, "password_changed")
        refresh_token = _new_refresh_token(conn, user.id, None, ctx)
        _audit(conn, "auth.password_changed", ctx, user_id=user.id, actor_id=user.id)
    return _grant(user.id, epoch, refresh_token)


def sessions(user: CurrentUser) -> list[store.Session]:
    return store.list_sessions(user.id)


def end_session(user: CurrentUser, session_id: uuid.UUID, ctx: RequestContext) -> None:
    """`session_id` is one of the caller's (the router's ownership dependency checked it)."""
    with transaction() as conn:
        store.revoke_family(conn, session_id, "ended_by_user")
        _audit(conn, "auth.session_ended", ctx, user_id=user.id, actor_id=user.id,
               target=str(session_id))


# ------------------------------------------------------------------ admin


def list_users(limit: int, offset: int) -> tuple[list[store.User], int]:
    return store.list_users(limit, offset)


_AUDITED_CHANGES = (("plan", "admin.plan_changed"), ("role", "admin.role_changed"),
                    ("is_active", "admin.active_changed"))


def admin_update_user(admin: CurrentUser, user_id: uuid.UUID, body: AdminUserUpdate,
                      ctx: RequestContext) -> store.User:
    """Change plan, role or active flag; deactivation ends every session at once. An admin
    cannot demote or deactivate themselves (no way back without another admin)."""
    changes = body.model_dump(exclude_none=True)
    if not changes:
        raise ValidationFailed("nothing to change: send plan, role or is_active",
                               details=[{"field": "body", "message": "no change given"}])
    if user_id == admin.id and (changes.get("role", "admin") != "admin"
                                or changes.get("is_active") is False):
        raise Conflict("administrators cannot remove their own admin role or deactivate "
                       "themselves")
    with transaction() as conn:
        before = store.lock_user(conn, user_id)
        if before is None:
            raise NotFound("user not found")
        after = store.update_admin_fields(conn, user_id, changes)
        if changes.get("is_active") is False:
            store.revoke_user_sessions(conn, user_id, "deactivated")
        for field, action in _AUDITED_CHANGES:
            old, new = getattr(before, field), getattr(after, field)
            if field in changes and old != new:
                _audit(conn, action, ctx, user_id=user_id, actor_id=admin.id,
                       target=str(user_id), details={"from": old, "to": new})
    return after
