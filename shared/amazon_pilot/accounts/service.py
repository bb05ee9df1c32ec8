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

from amazon_pilot.accounts import notices, store
from amazon_pilot.accounts.schemas import AdminUserUpdate, MeUpdate, PasswordChangeIn
from amazon_pilot.adapters import crypto
from amazon_pilot.domain import accounts as rules
from amazon_pilot.domain import login_throttle as throttle
from amazon_pilot.domain import mfa
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
    MFA_CHALLENGE_TTL_SECONDS,
    CurrentUser,
    TokenRejected,
    issue_access_token,
    issue_mfa_challenge,
    verify_mfa_challenge,
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


def _grant(user_id: uuid.UUID, auth_epoch: int, session: NewSession) -> Grant:
    return Grant(issue_access_token(user_id, auth_epoch, session_id=session.family_id,
                                    mfa=session.mfa),
                 session.token, ACCESS_TOKEN_TTL_SECONDS)


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


REGISTER_ACCEPTED = ("if this e-mail can be used, the account is ready: sign in with it. "
                     "Either way we sent a message to the address")


def register(email: str, password: str, company_name: str | None,
             ctx: RequestContext) -> str:
    """A seller's own sign-up (plan free, role seller), limited per address. The answer
    is the same whether the e-mail is new or registered already (no one learns which
    e-mails have accounts): a new one gets a welcome message, the owner of an existing
    one a notice that someone tried. Both paths hash the password and send one e-mail,
    so they also take about the same time."""
    try:
        normalized = rules.normalize_email(email)
        rules.validate_password(password)
    except rules.AccountRuleError as exc:
        raise _rule_error(exc) from None
    _limit_registrations(ctx)
    password_hash = rules.hash_password(password)  # on both paths: no timing tell
    try:
        user = store.insert_user(normalized, password_hash, role=rules.DEFAULT_ROLE,
                                 plan="free", company_name=company_name)
    except store.EmailTaken:
        existing = store.user_by_email(normalized)
        _audit(None, "auth.register_existing", ctx,
               user_id=existing.id if existing else None, target=normalized)
        notices.send(normalized, notices.REGISTER_EXISTING, ip=ctx.ip)
        return REGISTER_ACCEPTED
    _audit(None, "auth.register", ctx, user_id=user.id, actor_id=user.id, target=normalized)
    notices.send(normalized, notices.WELCOME, ip=ctx.ip)
    return REGISTER_ACCEPTED


def _limit_registrations(ctx: RequestContext) -> None:
    cfg = settings()
    decision = ratelimit.hit(f"register:{ctx.ip or 'unknown'}", cfg.register_per_ip,
                             cfg.register_window_s)
    if not decision.allowed:
        _audit(None, "auth.register_throttled", ctx)
        retry = decision.reset_in()
        raise TooManyRequests(f"too many sign-ups from this address; retry in {retry} s",
                              headers={"Retry-After": str(retry)})


# ------------------------------------------------------------------ login
# Password first; an account with a second factor then gets a short-lived challenge
# token instead of a session, and POST /v1/auth/login/mfa trades it plus a code for one.


@dataclass(frozen=True)
class MfaChallenge:
    mfa_token: str
    expires_in: int


def _throttle_policy(failures: int, account_failures: int) -> tuple[int, int]:
    free = min(settings().login_max_failures, throttle.free_failures(account_failures))
    return throttle.delay_after(failures, free), free


def login(email: str, password: str, ctx: RequestContext) -> Grant | MfaChallenge:
    """Credentials for a new session, or an MFA challenge. Failed attempts are counted
    per (email, caller address), known email or not (the answer never tells whether an
    account exists); past the free ones, that address waits a growing delay (429 with
    Retry-After) while every other address, the owner's included, is unaffected. See
    domain.login_throttle and docs/security-accounts.md."""
    try:
        normalized = rules.normalize_email(email)
    except rules.AccountRuleError:
        normalized = email.strip().lower()
    cfg = settings()
    ip = throttle.address_key(ctx.ip or "unknown")
    gate = store.claim_login_attempt(normalized, ip, cfg.login_failure_window_s,
                                     _throttle_policy)
    if gate.blocked_for:
        _audit(None, "auth.login_throttled", ctx, target=normalized,
               details={"retry_after": gate.blocked_for, "failures": gate.failures})
        raise TooManyRequests(
            f"too many failed sign-ins for this email from your address; retry in "
            f"{gate.blocked_for} s", headers={"Retry-After": str(gate.blocked_for)})
    record = store.user_for_login(normalized)
    # the same Argon2 work whether or not the account exists
    ok = rules.verify_password(record.password_hash if record else rules.dummy_hash(),
                               password)
    if record is None or not ok:
        _audit(None, "auth.login_failed", ctx, user_id=record.id if record else None,
               target=normalized,
               details={"reason": "bad_password" if record else "unknown_email",
                        "failures_from_ip": gate.failures,
                        "failures_all_ips": gate.account_failures})
        if gate.notify_owner and record is not None:
            _audit(None, "auth.login_throttle_notice", ctx, user_id=record.id,
                   target=normalized, details={"failures_from_ip": gate.failures})
            notices.send(normalized, notices.FAILED_LOGINS, ip=ip, failures=gate.failures)
        raise Unauthorized(LOGIN_FAILED)
    store.clear_login_failures(normalized, ip)
    if not record.is_active:
        _audit(None, "auth.login_failed", ctx, user_id=record.id, target=normalized,
               details={"reason": "deactivated"})
        raise Unauthorized("this account is deactivated")
    if rules.needs_rehash(record.password_hash):
        store.update_password_hash(record.id, rules.hash_password(password))
    state = _mfa_of(record.id)
    if state is not None and state.confirmed:
        _audit(None, "auth.login_password_ok", ctx, user_id=record.id, actor_id=record.id,
               target=normalized, details={"next": "mfa"})
        return MfaChallenge(issue_mfa_challenge(record.id, record.auth_epoch),
                            MFA_CHALLENGE_TTL_SECONDS)
    with transaction() as conn:
        session = _new_session(conn, record.id, ctx, mfa=False)
        _audit(conn, "auth.login", ctx, user_id=record.id, actor_id=record.id,
               target=normalized, details={"mfa": False})
    return _grant(record.id, record.auth_epoch, session)


MFA_CODE_REFUSED = "the code is not valid (or was used already)"
MFA_CHALLENGE_ATTEMPTS = 5  # codes per challenge token
MFA_USER_ATTEMPTS = 10  # wrong codes per account per window, all challenges together


def login_mfa(mfa_token: str, code: str | None, recovery_code: str | None,
              ctx: RequestContext) -> Grant:
    """The second step: a challenge token from POST /v1/auth/login and a current TOTP
    code (each accepted once) or an unused recovery code (spent)."""
    try:
        claims = verify_mfa_challenge(mfa_token)
    except TokenRejected as exc:
        raise Unauthorized(exc.message) from None
    user_id = uuid.UUID(claims["sub"])
    cfg = settings()
    per_challenge = ratelimit.peek(f"mfa-fail:{claims['jti']}", MFA_CHALLENGE_TTL_SECONDS)
    per_user = ratelimit.peek(f"mfa-fail-user:{user_id}", cfg.login_failure_window_s)
    if per_challenge >= MFA_CHALLENGE_ATTEMPTS or per_user >= MFA_USER_ATTEMPTS:
        _audit(None, "auth.mfa_throttled", ctx, user_id=user_id)
        retry = MFA_CHALLENGE_TTL_SECONDS if per_user < MFA_USER_ATTEMPTS \
            else cfg.login_failure_window_s
        raise TooManyRequests("too many wrong codes; sign in again later",
                              headers={"Retry-After": str(retry)})
    login_record = store.user_for_login_by_id(user_id)
    if login_record is None or not login_record.is_active \
            or login_record.auth_epoch != int(claims.get("ver", 0)):
        raise Unauthorized("this sign-in is no longer valid; sign in again")
    state = _mfa_of(user_id)
    if state is None or not state.confirmed:
        raise Unauthorized("this sign-in is no longer valid; sign in again")
    with transaction() as conn:
        used = _check_second_factor(conn, user_id, state, code, recovery_code)
        if used is not None:
            session = _new_session(conn, user_id, ctx, mfa=True)
            _audit(conn, "auth.login", ctx, user_id=user_id, actor_id=user_id,
                   target=login_record.email, details={"mfa": used})
            if used == "recovery_code":
                _audit(conn, "auth.mfa_recovery_code_used", ctx, user_id=user_id,
                       actor_id=user_id)
    if used is None:
        on_challenge = ratelimit.hit(f"mfa-fail:{claims['jti']}", MFA_CHALLENGE_ATTEMPTS,
                                     MFA_CHALLENGE_TTL_SECONDS)
        ratelimit.hit(f"mfa-fail-user:{user_id}", MFA_USER_ATTEMPTS,
                      cfg.login_failure_window_s)
        _audit(None, "auth.mfa_failed", ctx, user_id=user_id,
               details={"kind": "recovery_code" if recovery_code else "totp"})
        if on_challenge.count == MFA_CHALLENGE_ATTEMPTS:
            _notice_password_known(login_record.email, user_id, ctx)
        raise Unauthorized(MFA_CODE_REFUSED)
    return _grant(user_id, login_record.auth_epoch, session)


def _notice_password_known(email: str, user_id: uuid.UUID, ctx: RequestContext) -> None:
    """Someone with the right password used up a challenge's codes: the owner should
    change the password. Once per account per window."""
    window = settings().login_failure_window_s
    if ratelimit.hit(f"mfa-notice:{user_id}", 1, window).count == 1:
        _audit(None, "auth.mfa_failed_notice", ctx, user_id=user_id)
        notices.send(email, notices.MFA_CODES_FAILED, ip=ctx.ip)


def _check_second_factor(conn: Connection, user_id: uuid.UUID, state: store.MfaState,
                         code: str | None, recovery_code: str | None) -> str | None:
    """"totp" or "recovery_code" when the factor is accepted (and spent), else None."""
    if recovery_code:
        ok = store.use_recovery_code(conn, user_id, mfa.hash_recovery_code(recovery_code))
        return "recovery_code" if ok else None
    if code:
        step = mfa.matching_step(state.secret, code, after_step=state.last_step)
        if step is not None and store.accept_mfa_step(conn, user_id, step):
            return "totp"
    return None


# ------------------------------------------------------------------ refresh tokens
# A login starts a family of refresh tokens (a session); each refresh spends the token
# and issues its successor in the family. Presenting a spent token again means it was
# stolen or replayed: the whole family is revoked.


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewSession:
    """A refresh token just issued, and the session (family) it belongs to."""

    token: str
    family_id: uuid.UUID
    mfa: bool


def _new_refresh_token(conn: Connection, user_id: uuid.UUID, family_id: uuid.UUID,
                       ctx: RequestContext, *, mfa: bool) -> NewSession:
    token = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
    store.insert_refresh_token(conn, user_id, family_id, _hash_token(token),
                               REFRESH_TOKEN_TTL, ip=ctx.ip, user_agent=ctx.user_agent,
                               mfa=mfa)
    return NewSession(token, family_id, mfa)


def _new_session(conn: Connection, user_id: uuid.UUID, ctx: RequestContext, *,
                 mfa: bool) -> NewSession:
    return _new_refresh_token(conn, user_id, uuid.uuid4(), ctx, mfa=mfa)


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
    session: NewSession | None = None


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
    successor = _new_refresh_token(conn, row.user_id, row.family_id, ctx, mfa=row.mfa)
    return Rotation("ok", row.user_id, row.family_id, row.auth_epoch, successor)


def refresh(presented: str | None, ctx: RequestContext) -> Grant:
    """Rotate the presented refresh token into a new pair; RefreshRefused when it is
    unknown, spent, revoked, expired or its account deactivated."""
    if presented is None:
        raise Unauthorized(NO_TOKEN)
    with transaction() as conn:
        rotation = _rotate(conn, presented, ctx)
        if rotation.outcome == "reused":
            # the family's access tokens die with it (their "sid" is now revoked)
            _audit(conn, "auth.refresh_reuse", ctx, user_id=rotation.user_id,
                   target=str(rotation.family_id))
            _audit(conn, "auth.session_revoked", ctx, user_id=rotation.user_id,
                   target=str(rotation.family_id), details={"reason": "reuse_detected"})
    if rotation.outcome != "ok":
        raise RefreshRefused(_REFRESH_REFUSED[rotation.outcome])
    assert rotation.user_id is not None and rotation.session is not None
    return _grant(rotation.user_id, rotation.auth_epoch, rotation.session)


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
            # also ends access tokens that name no session (issued before "sid" existed)
            store.bump_auth_epoch(conn, found.user_id)
        else:
            store.revoke_family(conn, found.family_id, "logout")
        _audit(conn, "auth.logout", ctx, user_id=found.user_id, actor_id=found.user_id,
               target=str(found.family_id), details={"all": all_sessions})
        _audit(conn, "auth.session_revoked", ctx, user_id=found.user_id,
               actor_id=found.user_id, target=str(found.family_id),
               details={"reason": "logout_all" if all_sessions else "logout"})


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
        budget_given="monthly_fetch_budget_usd" in sent,
        monthly_fetch_budget_usd=body.monthly_fetch_budget_usd,
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
        session = _new_session(conn, user.id, ctx, mfa=user.mfa)
        _audit(conn, "auth.password_changed", ctx, user_id=user.id, actor_id=user.id)
        _audit(conn, "auth.session_revoked", ctx, user_id=user.id, actor_id=user.id,
               details={"reason": "password_changed", "all": True})
    notices.send(user.email, notices.PASSWORD_CHANGED, ip=ctx.ip)
    return _grant(user.id, epoch, session)


def sessions(user: CurrentUser) -> list[store.Session]:
    return store.list_sessions(user.id)


def end_session(user: CurrentUser, session_id: uuid.UUID, ctx: RequestContext) -> None:
    """`session_id` is one of the caller's (the router's ownership dependency checked it)."""
    with transaction() as conn:
        store.revoke_family(conn, session_id, "ended_by_user")
        _audit(conn, "auth.session_ended", ctx, user_id=user.id, actor_id=user.id,
               target=str(session_id))
        _audit(conn, "auth.session_revoked", ctx, user_id=user.id, actor_id=user.id,
               target=str(session_id), details={"reason": "ended_by_user"})


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
            _audit(conn, "auth.session_revoked", ctx, user_id=user_id, actor_id=admin.id,
                   details={"reason": "deactivated", "all": True})
        for field, action in _AUDITED_CHANGES:
            old, new = getattr(before, field), getattr(after, field)
            if field in changes and old != new:
                _audit(conn, action, ctx, user_id=user_id, actor_id=admin.id,
                       target=str(user_id), details={"from": old, "to": new})
    return after


# ------------------------------------------------------------------ second factor (TOTP)
# Enrolment: start (a new secret, its otpauth URI and QR code), then confirm with a
# first code, which turns MFA on, shows the recovery codes once and re-issues the
# caller's session as a two-factor one. Disabling needs the password and a code.


@dataclass(frozen=True)
class Enrolment:
    secret: str
    otpauth_uri: str
    qr_svg_data_uri: str


@dataclass(frozen=True)
class MfaOn:
    recovery_codes: list[str]
    grant: Grant


@dataclass(frozen=True)
class MfaStatus:
    enabled: bool
    pending: bool  # an enrolment was started and not confirmed
    recovery_codes_left: int
    required: bool  # administrators must have it


def _bad_code(field: str = "code") -> ValidationFailed:
    return ValidationFailed(f"{field}: {MFA_CODE_REFUSED}",
                            details=[{"field": field, "message": MFA_CODE_REFUSED}])


def mfa_status(user: CurrentUser) -> MfaStatus:
    state = _mfa_of(user.id)
    enabled = state is not None and state.confirmed
    return MfaStatus(enabled=enabled, pending=state is not None and not state.confirmed,
                     recovery_codes_left=store.recovery_codes_left(user.id) if enabled else 0,
                     required=user.role == "admin")


# A TOTP seed is a shared secret: stored sealed like webhook secrets (docs/security.md,
# "Secrets at rest"); a seed stored before sealing reads as it is.
MFA_SECRET_PURPOSE = "user_mfa.secret"


def _mfa_of(user_id: uuid.UUID) -> store.MfaState | None:
    state = store.mfa_of(user_id)
    if state is None or not crypto.is_sealed(state.secret):
        return state
    return store.MfaState(crypto.open_sealed(state.secret, MFA_SECRET_PURPOSE),
                          state.confirmed, state.last_step)


def start_mfa_enrolment(user: CurrentUser, ctx: RequestContext) -> Enrolment:
    """A fresh secret (replacing an unconfirmed one); 409 when MFA is on already."""
    secret = mfa.new_secret()
    if not store.start_mfa_enrolment(user.id, crypto.seal(secret, MFA_SECRET_PURPOSE).value):
        raise Conflict("two-step sign-in is on already; turn it off first to enrol again")
    _audit(None, "auth.mfa_enrolment_started", ctx, user_id=user.id, actor_id=user.id)
    uri = mfa.provisioning_uri(secret, user.email)
    return Enrolment(secret, uri, mfa.qr_svg_data_uri(uri))


def confirm_mfa_enrolment(user: CurrentUser, code: str, ctx: RequestContext) -> MfaOn:
    """The first code proves the app has the secret: MFA is on. The caller's session is
    replaced by a two-factor one (admin routes need it) and recovery codes issued."""
    state = _mfa_of(user.id)
    if state is None:
        raise Conflict("no enrolment in progress: start one with POST /v1/auth/mfa/enrol")
    if state.confirmed:
        raise Conflict("two-step sign-in is on already")
    step = mfa.matching_step(state.secret, code, after_step=None)
    if step is None:
        _audit(None, "auth.mfa_failed", ctx, user_id=user.id, details={"kind": "enrolment"})
        raise _bad_code()
    codes = mfa.new_recovery_codes()
    with transaction() as conn:
        if not store.confirm_mfa(conn, user.id, step):
            raise Conflict("two-step sign-in is on already")
        store.replace_recovery_codes(conn, user.id, [mfa.hash_recovery_code(c) for c in codes])
        if user.session_id is not None:
            store.revoke_family(conn, user.session_id, "mfa_enabled")
        epoch = store.current_auth_epoch(conn, user.id)
        session = _new_session(conn, user.id, ctx, mfa=True)
        _audit(conn, "auth.mfa_enabled", ctx, user_id=user.id, actor_id=user.id)
    notices.send(user.email, notices.MFA_ENABLED, ip=ctx.ip)
    return MfaOn(codes, _grant(user.id, epoch, session))


def _verify_password_and_code(user: CurrentUser, password: str, code: str,
                              ctx: RequestContext, action: str) -> store.MfaState:
    """Both factors, for turning MFA off or issuing new recovery codes. `code` is a
    current TOTP code or an unused recovery code (spent)."""
    state = _mfa_of(user.id)
    if state is None or not state.confirmed:
        raise Conflict("two-step sign-in is not on")
    current_hash = store.password_hash_of(user.id)
    if current_hash is None or not rules.verify_password(current_hash, password):
        _audit(None, "auth.mfa_failed", ctx, user_id=user.id,
               details={"kind": action, "reason": "bad_password"})
        raise ValidationFailed("password: the password is not correct",
                               details=[{"field": "password", "message": "not correct"}])
    with transaction() as conn:
        totp = mfa.looks_like_code(code)
        used = _check_second_factor(conn, user.id, state, code if totp else None,
                                    None if totp else code)
        if used == "recovery_code":
            _audit(conn, "auth.mfa_recovery_code_used", ctx, user_id=user.id,
                   actor_id=user.id, details={"for": action})
    if used is None:
        _audit(None, "auth.mfa_failed", ctx, user_id=user.id,
               details={"kind": action, "reason": "bad_code"})
        raise _bad_code()
    return state


def disable_mfa(user: CurrentUser, password: str, code: str, ctx: RequestContext) -> Grant:
    """MFA off: every session ends (two-factor sessions must not outlive the factor)
    and the caller gets a fresh password-only pair."""
    _verify_password_and_code(user, password, code, ctx, "disable")
    with transaction() as conn:
        store.delete_mfa(conn, user.id)
        store.revoke_user_sessions(conn, user.id, "mfa_disabled")
        epoch = store.bump_auth_epoch(conn, user.id)
        session = _new_session(conn, user.id, ctx, mfa=False)
        _audit(conn, "auth.mfa_disabled", ctx, user_id=user.id, actor_id=user.id)
        _audit(conn, "auth.session_revoked", ctx, user_id=user.id, actor_id=user.id,
               details={"reason": "mfa_disabled", "all": True})
    notices.send(user.email, notices.MFA_DISABLED, ip=ctx.ip)
    return _grant(user.id, epoch, session)


def new_recovery_codes(user: CurrentUser, password: str, code: str,
                       ctx: RequestContext) -> list[str]:
    """A new set of recovery codes; the old ones stop working."""
    _verify_password_and_code(user, password, code, ctx, "recovery_codes")
    codes = mfa.new_recovery_codes()
    with transaction() as conn:
        store.replace_recovery_codes(conn, user.id, [mfa.hash_recovery_code(c) for c in codes])
        _audit(conn, "auth.mfa_recovery_codes_replaced", ctx, user_id=user.id,
               actor_id=user.id)
    return codes


# ------------------------------------------------------------------ operators


@dataclass(frozen=True)
class AdminCreated:
    user: store.User
    outcome: Literal["created", "promoted", "already_admin"]
    generated_password: str | None  # only when a new account got a generated one


def _generated_password() -> str:
    while True:
        candidate = secrets.token_urlsafe(18)
        try:
            rules.validate_password(candidate)
        except rules.AccountRuleError:
            continue
        return candidate


def account_exists(email: str) -> bool:
    """For operators' tools only (never an API answer: that would reveal accounts)."""
    try:
        normalized = rules.normalize_email(email)
    except rules.AccountRuleError as exc:
        raise _rule_error(exc) from None
    return store.user_by_email(normalized) is not None


def run_operator_task(event: dict[str, Any]) -> dict[str, Any]:
    """The auth function's direct-invoke tasks (never reachable through the API: API
    Gateway events are routed to FastAPI). `{"operator_task": "create-admin", "email":
    ...}`: see docs/security-accounts.md. The generated password is in the answer only
    (the invoker's output), never in a log."""
    task = event.get("operator_task")
    if task != "create-admin":
        return {"ok": False, "error": f"unknown operator_task {task!r}; known: create-admin"}
    email = event.get("email")
    if not isinstance(email, str):
        return {"ok": False, "error": "create-admin needs \"email\""}
    try:
        done = create_admin(email, None, via="lambda operator task")
    except ApiError as exc:
        return {"ok": False, "error": exc.message}
    return {"ok": True, "outcome": done.outcome, "user_id": str(done.user.id),
            "email": done.user.email, "generated_password": done.generated_password}


def create_admin(email: str, password: str | None = None, *,
                 via: str = "cli") -> AdminCreated:
    """The first (or another) administrator: creates the account with role admin, or
    promotes an existing one (its password unchanged). A new account without a given
    password gets a generated one, returned once. The admin must then enrol a second
    factor before any admin route answers. Used by `pilot create-admin` and by the auth
    function's operator task in AWS (docs/security-accounts.md)."""
    try:
        normalized = rules.normalize_email(email)
        if password is not None:
            rules.validate_password(password)
    except rules.AccountRuleError as exc:
        raise _rule_error(exc) from None
    ctx = RequestContext(ip=None, request_id=None, user_agent=via)
    existing = store.user_by_email(normalized)
    if existing is None:
        generated = None if password is not None else _generated_password()
        try:
            user = create_user(normalized, password or generated or "", role="admin",
                               plan="enterprise")
        except store.EmailTaken:  # created meanwhile: promote it instead
            return create_admin(normalized, None, via=via)
        _audit(None, "admin.created", ctx, user_id=user.id, target=normalized,
               details={"via": via, "password": "generated" if generated else "given"})
        return AdminCreated(user, "created", generated)
    if existing.role == "admin":
        return AdminCreated(existing, "already_admin", None)
    with transaction() as conn:
        user = store.promote_to_admin(conn, existing.id)
        _audit(conn, "admin.created", ctx, user_id=user.id, target=normalized,
               details={"via": via, "promoted_from": existing.role})
    return AdminCreated(user, "promoted", None)
