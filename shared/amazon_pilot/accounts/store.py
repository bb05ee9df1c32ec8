"""Users, sessions (refresh tokens) and the audit log, in Postgres.

`create_user` is the plain entry point the CLI (`pilot create-admin`) and tests use.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from amazon_pilot.domain.accounts import (
    DEFAULT_NOTIFICATION_PREFS,
    hash_password,
    normalize_email,
    validate_password,
    validate_role,
)
from amazon_pilot.domain.plans import plan as plan_named
from amazon_pilot.platform.db import get_engine, transaction

REFRESH_TOKEN_TTL = timedelta(days=30)
REFRESH_TOKEN_PREFIX = "rt_"

_USER_COLUMNS = ("id, email, company_name, role, plan, is_active, notification_prefs,"
                 " created_at, updated_at")


class EmailTaken(Exception):
    pass


def public_user(row: Any) -> dict[str, Any]:
    """A user as clients see it: never the password hash."""
    data = dict(row._mapping) if hasattr(row, "_mapping") else dict(row)
    prefs = {**DEFAULT_NOTIFICATION_PREFS, **(data.get("notification_prefs") or {})}
    return {
        "id": data["id"],
        "email": data["email"],
        "company_name": data.get("company_name"),
        "role": data["role"],
        "plan": data["plan"],
        "is_active": data["is_active"],
        "notification_prefs": prefs,
        "created_at": data["created_at"],
        "updated_at": data["updated_at"],
    }


def create_user(email: str, password: str, role: str = "seller", plan: str = "free",
                company_name: str | None = None) -> dict[str, Any]:
    """Create an account (Argon2id hash); raises EmailTaken, or AccountRuleError/UnknownPlan
    for an invalid email, weak password, unknown role or plan. Returns the public user."""
    normalized = normalize_email(email)
    validate_password(password)
    validate_role(role)
    plan_named(plan)
    password_hash = hash_password(password)
    try:
        with transaction() as conn:
            row = conn.execute(
                text(f"INSERT INTO users (email, password_hash, company_name, role, plan)"
                     f" VALUES (:email, :hash, :company, :role, :plan)"
                     f" RETURNING {_USER_COLUMNS}"),
                {"email": normalized, "hash": password_hash, "company": company_name,
                 "role": role, "plan": plan},
            ).one()
    except IntegrityError as exc:
        if "users_email_key" in str(exc.orig):
            raise EmailTaken(f"an account with email {normalized} already exists") from None
        raise
    return public_user(row)


def get_user(user_id: uuid.UUID | str) -> dict[str, Any] | None:
    with get_engine().connect() as conn:
        row = conn.execute(text(f"SELECT {_USER_COLUMNS} FROM users WHERE id = :id"),
                           {"id": str(user_id)}).first()
    return public_user(row) if row else None


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


def password_hash_of(user_id: uuid.UUID) -> str | None:
    with get_engine().connect() as conn:
        value = conn.execute(text("SELECT password_hash FROM users WHERE id = :id"),
                             {"id": str(user_id)}).scalar()
    return str(value) if value is not None else None


def update_password_hash(user_id: uuid.UUID, password_hash: str) -> None:
    """A rehash with new parameters: same password, sessions untouched."""
    with transaction() as conn:
        conn.execute(text("UPDATE users SET password_hash = :h WHERE id = :id"),
                     {"h": password_hash, "id": str(user_id)})


def change_password(conn: Connection, user_id: uuid.UUID, password_hash: str) -> int:
    """New hash, every session ended (refresh tokens revoked, access tokens via the epoch).
    Returns the new auth epoch."""
    epoch = conn.execute(
        text("UPDATE users SET password_hash = :h, auth_epoch = auth_epoch + 1,"
             " updated_at = now() WHERE id = :id RETURNING auth_epoch"),
        {"h": password_hash, "id": str(user_id)},
    ).scalar_one()
    revoke_user_sessions(conn, user_id, "password_changed")
    return int(epoch)


def update_profile(user_id: uuid.UUID, changes: dict[str, Any]) -> dict[str, Any] | None:
    """Apply `company_name` (replace) and `notification_prefs` (merged key by key)."""
    sets = ["updated_at = now()"]
    params: dict[str, Any] = {"id": str(user_id)}
    if "company_name" in changes:
        sets.append("company_name = :company")
        params["company"] = changes["company_name"]
    if changes.get("notification_prefs"):
        sets.append("notification_prefs = notification_prefs || CAST(:prefs AS jsonb)")
        params["prefs"] = json.dumps(changes["notification_prefs"])
    with transaction() as conn:
        row = conn.execute(
            text(f"UPDATE users SET {', '.join(sets)} WHERE id = :id RETURNING {_USER_COLUMNS}"),
            params,
        ).first()
    return public_user(row) if row else None


def list_users(limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
    with get_engine().connect() as conn:
        total = int(conn.execute(text("SELECT count(*) FROM users")).scalar_one())
        rows = conn.execute(
            text(f"SELECT {_USER_COLUMNS} FROM users ORDER BY created_at, id"
                 f" LIMIT :limit OFFSET :offset"),
            {"limit": limit, "offset": offset},
        ).all()
    return [public_user(r) for r in rows], total


def admin_update_user(conn: Connection, user_id: uuid.UUID,
                      changes: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Set plan / role / is_active; returns (before, after) or None when no such user."""
    before = conn.execute(text(f"SELECT {_USER_COLUMNS} FROM users WHERE id = :id FOR UPDATE"),
                          {"id": str(user_id)}).first()
    if before is None:
        return None
    sets = ["updated_at = now()"]
    params: dict[str, Any] = {"id": str(user_id)}
    for column in ("plan", "role", "is_active"):
        if column in changes:
            sets.append(f"{column} = :{column}")
            params[column] = changes[column]
    after = conn.execute(
        text(f"UPDATE users SET {', '.join(sets)} WHERE id = :id RETURNING {_USER_COLUMNS}"),
        params,
    ).one()
    if changes.get("is_active") is False:
        revoke_user_sessions(conn, user_id, "deactivated")
    return public_user(before), public_user(after)


# ------------------------------------------------------------------ refresh tokens


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_refresh_token(conn: Connection, user_id: uuid.UUID, family_id: uuid.UUID | None = None,
                      *, ip: str | None = None, user_agent: str | None = None) -> str:
    token = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        text("INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at, ip,"
             " user_agent) VALUES (:user_id, :family, :hash, now() + :ttl, :ip, :ua)"),
        {"user_id": str(user_id), "family": str(family_id or uuid.uuid4()),
         "hash": hash_token(token), "ttl": REFRESH_TOKEN_TTL, "ip": ip,
         "ua": (user_agent or "")[:300] or None},
    )
    return token


@dataclass(frozen=True)
class Rotation:
    outcome: str  # ok | unknown | reused | revoked | expired | inactive
    user_id: uuid.UUID | None = None
    family_id: uuid.UUID | None = None
    auth_epoch: int = 0
    token: str | None = None


def rotate_refresh_token(conn: Connection, token: str, *, ip: str | None = None,
                         user_agent: str | None = None) -> Rotation:
    """Spend `token` and issue its successor in the same family.

    A token already spent is a reuse (stolen or replayed): the whole family is revoked,
    which is committed with the caller's transaction.
    """
    row = conn.execute(
        text("SELECT t.id, t.user_id, t.family_id, t.used_at, t.revoked_at,"
             " t.expires_at <= now() AS expired, u.is_active, u.auth_epoch"
             " FROM refresh_tokens t JOIN users u ON u.id = t.user_id"
             " WHERE t.token_hash = :hash FOR UPDATE OF t"),
        {"hash": hash_token(token)},
    ).first()
    if row is None:
        return Rotation("unknown")
    user_id, family_id = row.user_id, row.family_id
    if row.used_at is not None:
        revoke_family(conn, family_id, "reuse_detected")
        return Rotation("reused", user_id, family_id)
    if row.revoked_at is not None:
        return Rotation("revoked", user_id, family_id)
    if row.expired:
        return Rotation("expired", user_id, family_id)
    if not row.is_active:
        return Rotation("inactive", user_id, family_id)
    conn.execute(text("UPDATE refresh_tokens SET used_at = now() WHERE id = :id"),
                 {"id": row.id})
    successor = new_refresh_token(conn, user_id, family_id, ip=ip, user_agent=user_agent)
    return Rotation("ok", user_id, family_id, int(row.auth_epoch), successor)


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


def family_of(conn: Connection, token: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(user id, family id) of a refresh token, spent or not."""
    row = conn.execute(
        text("SELECT user_id, family_id FROM refresh_tokens WHERE token_hash = :hash"),
        {"hash": hash_token(token)},
    ).first()
    return (row.user_id, row.family_id) if row else None


def list_sessions(user_id: uuid.UUID) -> list[dict[str, Any]]:
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
    return [dict(r._mapping) for r in rows]


def session_owner(family_id: uuid.UUID) -> uuid.UUID | None:
    with get_engine().connect() as conn:
        value = conn.execute(
            text("SELECT user_id FROM refresh_tokens WHERE family_id = :family LIMIT 1"),
            {"family": str(family_id)},
        ).scalar()
    return value if value is None or isinstance(value, uuid.UUID) else uuid.UUID(str(value))


# ------------------------------------------------------------------ audit log


def audit(conn: Connection | None, action: str, *, user_id: uuid.UUID | str | None = None,
          actor_id: uuid.UUID | str | None = None, target: str | None = None,
          ip: str | None = None, request_id: str | None = None,
          details: dict[str, Any] | None = None) -> None:
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


def audit_entries(user_id: uuid.UUID | str, action: str | None = None) -> list[dict[str, Any]]:
    with get_engine().connect() as conn:
        rows = conn.execute(
            text("SELECT at, user_id, actor_id, action, target, ip, request_id, details"
                 " FROM audit_log WHERE user_id = :user_id"
                 " AND (CAST(:action AS text) IS NULL OR action = :action) ORDER BY id"),
            {"user_id": str(user_id), "action": action},
        ).all()
    return [dict(r._mapping) for r in rows]


def utc_iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
