"""Users, sessions (refresh tokens) and the audit log, in Postgres: all of accounts' SQL.

Refresh tokens are stored by hash only; making and hashing them is the service's job.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, text
from sqlalchemy.exc import IntegrityError

from amazon_pilot.domain.accounts import DEFAULT_NOTIFICATION_PREFS
from amazon_pilot.platform.db import as_float, as_json, get_engine, transaction

_USER_COLUMNS = ("id, email, company_name, role, plan, is_active, notification_prefs,"
                 " seller_ids, brands, created_at, updated_at, monthly_fetch_budget_usd,"
                 " fetch_budget,"
                 " EXISTS (SELECT 1 FROM user_mfa m WHERE m.user_id = users.id"
                 " AND m.confirmed_at IS NOT NULL) AS mfa_enabled")
ADMIN_COLUMNS = ("plan", "role", "is_active")  # what an admin may change


class EmailTaken(Exception):
    pass


@dataclass(frozen=True)
class User:
    """A user as clients see it: never the password hash."""

    id: uuid.UUID
    email: str
    company_name: str | None
    role: str
    plan: str
    is_active: bool
    notification_prefs: dict[str, Any]
    seller_ids: list[str]  # Amazon seller (merchant) ids, upper-case
    brands: list[str]
    created_at: datetime
    updated_at: datetime
    mfa_enabled: bool = False
    monthly_fetch_budget_usd: float | None = None  # None: no budget (0018)
    fetch_budget: dict[str, Any] | None = None  # the last daily plan's answer for the seller


def _user(row: Row[Any]) -> User:
    data = row._mapping
    return User(
        id=data["id"],
        email=data["email"],
        company_name=data["company_name"],
        role=data["role"],
        plan=data["plan"],
        is_active=data["is_active"],
        notification_prefs={**DEFAULT_NOTIFICATION_PREFS, **(data["notification_prefs"] or {})},
        seller_ids=list(data["seller_ids"] or []),
        brands=list(data["brands"] or []),
        created_at=data["created_at"],
        updated_at=data["updated_at"],
        mfa_enabled=bool(data["mfa_enabled"]),
        monthly_fetch_budget_usd=as_float(data["monthly_fetch_budget_usd"]),
        fetch_budget=as_json(data["fetch_budget"]),
    )


def insert_user(email: str, password_hash: str, *, role: str, plan: str,
                company_name: str | None) -> User:
    """Raises EmailTaken when the (normalized) email is registered already."""
    try:
        with transaction() as conn:
            row = conn.execute(
                text(f"INSERT INTO users (email, password_hash, company_name, role, plan)"
                     f" VALUES (:email, :hash, :company, :role, :plan)"
                     f" RETURNING {_USER_COLUMNS}"),
                {"email": email, "hash": password_hash, "company": company_name,
                 "role": role, "plan": plan},
            ).one()
    except IntegrityError as exc:
        if "users_email_key" in str(exc.orig):
            raise EmailTaken(f"an account with email {email} already exists") from None
        raise
    return _user(row)


def get_user(user_id: uuid.UUID | str) -> User | None:
    with get_engine().connect() as conn:
        row = conn.execute(text(f"SELECT {_USER_COLUMNS} FROM users WHERE id = :id"),
                           {"id": str(user_id)}).first()
    return _user(row) if row else None


@dataclass(frozen=True)
class LoginRecord:
    id: uuid.UUID
    email: str
    password_hash: str
    is_active: bool
    auth_epoch: int


def user_for_login(normalized_email: str) -> LoginRecord | None:
    with get_engine().connect() as conn:
        row = conn.execute(
            text("SELECT id, email, password_hash, is_active, auth_epoch FROM users"
                 " WHERE lower(email) = :email"),
            {"email": normalized_email},
        ).first()
    return LoginRecord(*row) if row else None


def user_for_login_by_id(user_id: uuid.UUID) -> LoginRecord | None:
    with get_engine().connect() as conn:
        row = conn.execute(
            text("SELECT id, email, password_hash, is_active, auth_epoch FROM users"
                 " WHERE id = :id"), {"id": str(user_id)}).first()
    return LoginRecord(*row) if row else None


def password_hash_of(user_id: uuid.UUID) -> str | None:
    with get_engine().connect() as conn:
        value = conn.execute(text("SELECT password_hash FROM users WHERE id = :id"),
                             {"id": str(user_id)}).scalar()
    return str(value) if value is not None else None


def update_password_hash(user_id: uuid.UUID, password_hash: str) -> None:
    """The hash alone (a rehash with new parameters): epoch and sessions untouched."""
    with transaction() as conn:
        conn.execute(text("UPDATE users SET password_hash = :h WHERE id = :id"),
                     {"h": password_hash, "id": str(user_id)})


def bump_auth_epoch(conn: Connection, user_id: uuid.UUID) -> int:
    """Every access token of the user stops working at its next request; the new epoch."""
    epoch = conn.execute(
        text("UPDATE users SET auth_epoch = auth_epoch + 1 WHERE id = :id"
             " RETURNING auth_epoch"), {"id": str(user_id)}).scalar_one()
    return int(epoch)


def current_auth_epoch(conn: Connection, user_id: uuid.UUID) -> int:
    return int(conn.execute(text("SELECT auth_epoch FROM users WHERE id = :id"),
                            {"id": str(user_id)}).scalar_one())


def user_by_email(normalized_email: str) -> User | None:
    with get_engine().connect() as conn:
        row = conn.execute(text(f"SELECT {_USER_COLUMNS} FROM users WHERE lower(email) = :e"),
                           {"e": normalized_email}).first()
    return _user(row) if row else None


def set_password(conn: Connection, user_id: uuid.UUID, password_hash: str) -> int:
    """New hash and a new auth epoch (older access tokens stop working); returns the epoch."""
    epoch = conn.execute(
        text("UPDATE users SET password_hash = :h, auth_epoch = auth_epoch + 1,"
             " updated_at = now() WHERE id = :id RETURNING auth_epoch"),
        {"h": password_hash, "id": str(user_id)},
    ).scalar_one()
    return int(epoch)


@dataclass(frozen=True)
class ProfileChanges:
    company_name_given: bool = False  # replace company_name (None clears it)
    company_name: str | None = None
    notification_prefs: dict[str, Any] = field(default_factory=dict)  # merged key by key
    seller_ids: list[str] | None = None  # replaced when given (normalized already)
    brands: list[str] | None = None  # replaced when given (normalized already)
    budget_given: bool = False  # replace monthly_fetch_budget_usd (None removes it)
    monthly_fetch_budget_usd: float | None = None


def update_profile(user_id: uuid.UUID, changes: ProfileChanges) -> User | None:
    sets = ["updated_at = now()"]
    params: dict[str, Any] = {"id": str(user_id)}
    if changes.company_name_given:
        sets.append("company_name = :company")
        params["company"] = changes.company_name
    if changes.notification_prefs:
        sets.append("notification_prefs = notification_prefs || CAST(:prefs AS jsonb)")
        params["prefs"] = json.dumps(changes.notification_prefs)
    if changes.budget_given:
        # the last plan's reading belongs to the old budget: the next plan writes anew
        sets.append("monthly_fetch_budget_usd = :budget, fetch_budget = NULL")
        params["budget"] = changes.monthly_fetch_budget_usd
    for column in ("seller_ids", "brands"):
        values = getattr(changes, column)
        if values is not None:
            sets.append(f"{column} = :{column}")
            params[column] = values
    with transaction() as conn:
        row = conn.execute(
            text(f"UPDATE users SET {', '.join(sets)} WHERE id = :id RETURNING {_USER_COLUMNS}"),
            params,
        ).first()
    return _user(row) if row else None


def list_users(limit: int, offset: int) -> tuple[list[User], int]:
    with get_engine().connect() as conn:
        total = int(conn.execute(text("SELECT count(*) FROM users")).scalar_one())
        rows = conn.execute(
            text(f"SELECT {_USER_COLUMNS} FROM users ORDER BY created_at, id"
                 f" LIMIT :limit OFFSET :offset"),
            {"limit": limit, "offset": offset},
        ).all()
    return [_user(r) for r in rows], total


def lock_user(conn: Connection, user_id: uuid.UUID) -> User | None:
    row = conn.execute(text(f"SELECT {_USER_COLUMNS} FROM users WHERE id = :id FOR UPDATE"),
                       {"id": str(user_id)}).first()
    return _user(row) if row else None


def update_admin_fields(conn: Connection, user_id: uuid.UUID,
                        changes: Mapping[str, str | bool]) -> User:
    """Set the given ADMIN_COLUMNS of an existing user; returns the user after."""
    sets = ["updated_at = now()"]
    params: dict[str, Any] = {"id": str(user_id)}
    for column in ADMIN_COLUMNS:
        if column in changes:
            sets.append(f"{column} = :{column}")
            params[column] = changes[column]
    row = conn.execute(
        text(f"UPDATE users SET {', '.join(sets)} WHERE id = :id RETURNING {_USER_COLUMNS}"),
        params,
    ).one()
    return _user(row)


# ------------------------------------------------------------------ refresh tokens


def insert_refresh_token(conn: Connection, user_id: uuid.UUID, family_id: uuid.UUID,
                         token_hash: str, ttl: timedelta, *, ip: str | None,
                         user_agent: str | None, mfa: bool = False) -> None:
    conn.execute(
        text("INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at, ip,"
             " user_agent, mfa) VALUES (:user_id, :family, :hash, now() + :ttl, :ip, :ua,"
             " :mfa)"),
        {"user_id": str(user_id), "family": str(family_id), "hash": token_hash, "ttl": ttl,
         "ip": ip, "ua": (user_agent or "")[:300] or None, "mfa": mfa},
    )


@dataclass(frozen=True)
class RefreshTokenState:
    id: int
    user_id: uuid.UUID
    family_id: uuid.UUID
    used: bool
    revoked: bool
    expired: bool
    user_active: bool
    auth_epoch: int
    mfa: bool


def lock_refresh_token(conn: Connection, token_hash: str) -> RefreshTokenState | None:
    """The token and its user, the token's row locked until the caller's transaction ends."""
    row = conn.execute(
        text("SELECT t.id, t.user_id, t.family_id, t.used_at IS NOT NULL AS used,"
             " t.revoked_at IS NOT NULL AS revoked, t.expires_at <= now() AS expired,"
             " u.is_active, u.auth_epoch, t.mfa"
             " FROM refresh_tokens t JOIN users u ON u.id = t.user_id"
             " WHERE t.token_hash = :hash FOR UPDATE OF t"),
        {"hash": token_hash},
    ).first()
    return RefreshTokenState(*row) if row else None


def mark_refresh_token_used(conn: Connection, token_id: int) -> None:
    conn.execute(text("UPDATE refresh_tokens SET used_at = now() WHERE id = :id"),
                 {"id": token_id})


def revoke_family(conn: Connection, family_id: uuid.UUID, reason: str) -> int:
    return conn.execute(
        text("UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = :reason"
             " WHERE family_id = :family AND revoked_at IS NULL"),
        {"family": str(family_id), "reason": reason},
    ).rowcount


def revoke_user_sessions(conn: Connection, user_id: uuid.UUID, reason: str) -> int:
    return conn.execute(
        text("UPDATE refresh_tokens SET revoked_at = now(), revoked_reason = :reason"
             " WHERE user_id = :user_id AND revoked_at IS NULL"),
        {"user_id": str(user_id), "reason": reason},
    ).rowcount


@dataclass(frozen=True)
class TokenFamily:
    user_id: uuid.UUID
    family_id: uuid.UUID


def family_of(conn: Connection, token_hash: str) -> TokenFamily | None:
    """The user and family (session) of a refresh token, spent or not."""
    row = conn.execute(
        text("SELECT user_id, family_id FROM refresh_tokens WHERE token_hash = :hash"),
        {"hash": token_hash},
    ).first()
    return TokenFamily(row.user_id, row.family_id) if row else None


@dataclass(frozen=True)
class Session:
    id: uuid.UUID  # the refresh-token family
    started_at: datetime
    last_used_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None


def list_sessions(user_id: uuid.UUID) -> list[Session]:
    """The user's live sessions: one per family, with its latest unspent token."""
    with get_engine().connect() as conn:
        rows = conn.execute(
            text("SELECT family_id AS id, min(created_at) AS started_at,"
                 " max(created_at) AS last_used_at, max(expires_at) AS expires_at,"
                 " (array_agg(ip ORDER BY created_at DESC))[1] AS ip,"
                 " (array_agg(user_agent ORDER BY created_at DESC))[1] AS user_agent"
                 " FROM refresh_tokens WHERE user_id = :user_id GROUP BY family_id"
                 " HAVING bool_or(revoked_at IS NULL AND used_at IS NULL"
                 "                AND expires_at > now())"
                 " ORDER BY last_used_at DESC"),
            {"user_id": str(user_id)},
        ).all()
    return [Session(**r._mapping) for r in rows]


def owned_session(user_id: uuid.UUID, family_id: uuid.UUID) -> uuid.UUID | None:
    """The session's id when it exists and belongs to `user_id` (live or not)."""
    with get_engine().connect() as conn:
        value = conn.execute(
            text("SELECT family_id FROM refresh_tokens WHERE family_id = :family"
                 " AND user_id = :user_id LIMIT 1"),
            {"family": str(family_id), "user_id": str(user_id)},
        ).scalar()
    return None if value is None else uuid.UUID(str(value))


# ------------------------------------------------------------------ audit log


def audit(conn: Connection | None, action: str, *, user_id: uuid.UUID | str | None = None,
          actor_id: uuid.UUID | str | None = None, target: str | None = None,
          ip: str | None = None, request_id: str | None = None,
          details: dict[str, Any] | None = None) -> None:
    """One audit_log row, in the caller's transaction (`conn`) or a transaction of its own."""
    params = {
        "action": action,
        "user_id": str(user_id) if user_id else None,
        "actor_id": str(actor_id) if actor_id else None,
        "target": target,
        "ip": ip,
        "rid": request_id,
        "details": json.dumps(details or {}, default=str),
    }
    statement = text(
        "INSERT INTO audit_log (action, user_id, actor_id, target, ip, request_id, details)"
        " VALUES (:action, :user_id, :actor_id, :target, :ip, :rid, CAST(:details AS jsonb))"
    )
    if conn is not None:
        conn.execute(statement, params)
        return
    with transaction() as own:
        own.execute(statement, params)


# ------------------------------------------------------------------ login throttling


@dataclass(frozen=True)
class LoginGate:
    blocked_for: int  # seconds this (e-mail, address) must still wait; 0: go ahead
    failures: int  # this attempt included (counted before the password is checked)
    account_failures: int  # failures against the e-mail from every address, in the window
    notify_owner: bool  # this attempt starts a wait and the owner was not told yet


def claim_login_attempt(email: str, ip: str, window_s: int,
                        policy: Any) -> LoginGate:
    """Count an attempt of (email, ip) as a failure before the password is checked, so
    parallel guesses cannot slip past the wait; a success forgets the pair
    (`clear_login_failures`). `policy(failures, account_failures) -> (delay_s, free)`.
    The pair's row stays locked until the count and the new wait are written."""
    params = {"email": email, "ip": ip, "window": timedelta(seconds=window_s)}
    with transaction() as conn:
        conn.execute(text("INSERT INTO login_failures (email, ip) VALUES (:email, :ip)"
                          " ON CONFLICT (email, ip) DO NOTHING"), params)
        row = conn.execute(
            text("SELECT failures, last_failure_at < now() - :window AS stale,"
                 " greatest(0, ceil(extract(epoch FROM blocked_until - now())))::int AS wait,"
                 " notified_at IS NOT NULL AND notified_at > now() - :window AS notified"
                 " FROM login_failures WHERE email = :email AND ip = :ip FOR UPDATE"),
            params).one()
        others = conn.execute(
            text("SELECT coalesce(sum(failures), 0) AS failures,"
                 " coalesce(bool_or(notified_at > now() - :window), false) AS notified"
                 " FROM login_failures WHERE email = :email AND ip <> :ip"
                 " AND last_failure_at > now() - :window"), params).one()
        account = int(others.failures)
        failures = 0 if row.stale else int(row.failures)
        if row.wait > 0 and not row.stale:
            return LoginGate(int(row.wait), failures, account + failures, False)
        failures += 1
        delay, free = policy(failures, account + failures)
        # one notice per account per window, however many addresses guess
        notify = failures == free and not row.notified and not others.notified
        conn.execute(
            text("UPDATE login_failures SET failures = :failures, last_failure_at = now(),"
                 " first_failure_at = CASE WHEN :reset THEN now() ELSE first_failure_at END,"
                 " blocked_until = CASE WHEN :delay > 0"
                 "   THEN now() + make_interval(secs => :delay) END,"
                 " notified_at = CASE WHEN :notify THEN now() ELSE notified_at END"
                 " WHERE email = :email AND ip = :ip"),
            {**params, "failures": failures, "reset": bool(row.stale) or row.failures == 0,
             "delay": delay, "notify": notify})
        if random.random() < 0.01:  # rows are disposable: old ones go now and then
            conn.execute(text("DELETE FROM login_failures"
                              " WHERE last_failure_at < now() - interval '1 day'"))
    return LoginGate(0, failures, account + failures, notify)


def clear_login_failures(email: str, ip: str) -> None:
    with transaction() as conn:
        conn.execute(text("DELETE FROM login_failures WHERE email = :email AND ip = :ip"),
                     {"email": email, "ip": ip})


# ------------------------------------------------------------------ second factor


@dataclass(frozen=True)
class MfaState:
    secret: str
    confirmed: bool
    last_step: int | None


def mfa_of(user_id: uuid.UUID) -> MfaState | None:
    with get_engine().connect() as conn:
        row = conn.execute(
            text("SELECT secret, confirmed_at IS NOT NULL AS confirmed, last_step"
                 " FROM user_mfa WHERE user_id = :id"), {"id": str(user_id)}).first()
    return MfaState(row.secret, row.confirmed, row.last_step) if row else None


def start_mfa_enrolment(user_id: uuid.UUID, secret: str) -> bool:
    """A new unconfirmed secret (replacing an unconfirmed one); False when MFA is on."""
    with transaction() as conn:
        row = conn.execute(
            text("INSERT INTO user_mfa (user_id, secret) VALUES (:id, :secret)"
                 " ON CONFLICT (user_id) DO UPDATE SET secret = :secret, created_at = now(),"
                 "   last_step = NULL WHERE user_mfa.confirmed_at IS NULL"
                 " RETURNING user_id"), {"id": str(user_id), "secret": secret}).first()
    return row is not None


def confirm_mfa(conn: Connection, user_id: uuid.UUID, step: int) -> bool:
    return conn.execute(
        text("UPDATE user_mfa SET confirmed_at = now(), last_step = :step"
             " WHERE user_id = :id AND confirmed_at IS NULL"),
        {"id": str(user_id), "step": step}).rowcount == 1


def accept_mfa_step(conn: Connection, user_id: uuid.UUID, step: int) -> bool:
    """Record `step` as used; False when it (or a later one) was used already: a code
    works once, even for two requests racing with it."""
    return conn.execute(
        text("UPDATE user_mfa SET last_step = :step WHERE user_id = :id"
             " AND confirmed_at IS NOT NULL AND (last_step IS NULL OR last_step < :step)"),
        {"id": str(user_id), "step": step}).rowcount == 1


def delete_mfa(conn: Connection, user_id: uuid.UUID) -> None:
    conn.execute(text("DELETE FROM mfa_recovery_codes WHERE user_id = :id"),
                 {"id": str(user_id)})
    conn.execute(text("DELETE FROM user_mfa WHERE user_id = :id"), {"id": str(user_id)})


def replace_recovery_codes(conn: Connection, user_id: uuid.UUID, hashes: list[str]) -> None:
    conn.execute(text("DELETE FROM mfa_recovery_codes WHERE user_id = :id"),
                 {"id": str(user_id)})
    for code_hash in hashes:
        conn.execute(text("INSERT INTO mfa_recovery_codes (user_id, code_hash)"
                          " VALUES (:id, :hash)"), {"id": str(user_id), "hash": code_hash})


def use_recovery_code(conn: Connection, user_id: uuid.UUID, code_hash: str) -> bool:
    """Spend the code; False when it is unknown or spent."""
    return conn.execute(
        text("UPDATE mfa_recovery_codes SET used_at = now() WHERE user_id = :id"
             " AND code_hash = :hash AND used_at IS NULL"),
        {"id": str(user_id), "hash": code_hash}).rowcount == 1


def recovery_codes_left(user_id: uuid.UUID) -> int:
    with get_engine().connect() as conn:
        return int(conn.execute(
            text("SELECT count(*) FROM mfa_recovery_codes WHERE user_id = :id"
                 " AND used_at IS NULL"), {"id": str(user_id)}).scalar_one())


# ------------------------------------------------------------------ administrators


def promote_to_admin(conn: Connection, user_id: uuid.UUID) -> User:
    row = conn.execute(
        text(f"UPDATE users SET role = 'admin', updated_at = now() WHERE id = :id"
             f" RETURNING {_USER_COLUMNS}"), {"id": str(user_id)}).one()
    return _user(row)
