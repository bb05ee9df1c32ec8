"""Users, sessions (refresh tokens) and the audit log, in Postgres: all of accounts' SQL.

Refresh tokens are stored by hash only; making and hashing them is the service's job.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, text
from sqlalchemy.exc import IntegrityError

from amazon_pilot.domain.accounts import DEFAULT_NOTIFICATION_PREFS
from amazon_pilot.platform.db import get_engine, transaction

_USER_COLUMNS = ("id, email, company_name, role, plan, is_active, notification_prefs,"
                 " seller_ids, brands, created_at, updated_at")
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


def update_profile(user_id: uuid.UUID, changes: ProfileChanges) -> User | None:
    sets = ["updated_at = now()"]
    params: dict[str, Any] = {"id": str(user_id)}
    if changes.company_name_given:
        sets.append("company_name = :company")
        params["company"] = changes.company_name
    if changes.notification_prefs:
        sets.append("notification_prefs = notification_prefs || CAST(:prefs AS jsonb)")
        params["prefs"] = json.dumps(changes.notification_prefs)
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
                         user_agent: str | None) -> None:
    conn.execute(
        text("INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at, ip,"
             " user_agent) VALUES (:user_id, :family, :hash, now() + :ttl, :ip, :ua)"),
        {"user_id": str(user_id), "family": str(family_id), "hash": token_hash, "ttl": ttl,
         "ip": ip, "ua": (user_agent or "")[:300] or None},
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


def lock_refresh_token(conn: Connection, token_hash: str) -> RefreshTokenState | None:
    """The token and its user, the token's row locked until the caller's transaction ends."""
    row = conn.execute(
        text("SELECT t.id, t.user_id, t.family_id, t.used_at IS NOT NULL AS used,"
             " t.revoked_at IS NOT NULL AS revoked, t.expires_at <= now() AS expired,"
             " u.is_active, u.auth_epoch"
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
