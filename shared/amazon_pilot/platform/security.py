"""Who is calling, and may they: the security dependency every API route uses.

Usage in any router::

    from fastapi import Depends
    from amazon_pilot.platform.security import CurrentUser, current_user, require_admin

    @router.get("/v1/products/{product_id}")
    async def get_product(product_id: uuid.UUID,
                          user: CurrentUser = Depends(current_user)) -> ProductOut:
        row = fetch_tracked_product(product_id)          # by id only
        ensure_owner(row and row["user_id"], user, "product")  # missing or foreign: 404
        ...

    @router.get("/v1/admin/things")
    async def admin_only(admin: CurrentUser = Depends(require_admin)) -> ...: ...

- ``CurrentUser`` (frozen): ``id: uuid.UUID``, ``email: str``, ``role: str`` ("seller" |
  "admin"), ``plan: str`` ("free" | "pro" | "enterprise"), ``session_id``, ``mfa``;
  ``is_admin`` property (role admin *and* a two-factor session).
  Plan limits: ``settings().plan(user.plan)`` (amazon_pilot.platform.settings).
- ``current_user``: verifies the ``Authorization: Bearer <access token>`` header (JWT
  HS256, 15 minutes, claim ``type == "access"``) and loads the user; answers 401
  UNAUTHORIZED with a message saying why for a missing, malformed, tampered, expired,
  wrong-type or ``alg: none`` token, and for a deactivated or deleted account or a
  session ended by a password change. The per-user rate limit of the user's plan is
  applied (429 RATE_LIMITED with Retry-After) — in the shared middleware, which does the
  token check, the user lookup and the counter increment in one database round trip.
- ``require_admin``: ``current_user`` plus role ``admin``, else 403 FORBIDDEN; an admin
  whose session was not started with a second factor gets 403 MFA_REQUIRED.
- ``ensure_owner(owner_id, user, what)``: 404 NOT_FOUND ("<what> not found") when the
  resource does not exist (``owner_id`` None) or belongs to someone else — a seller
  never learns that another user's id exists. Admins get no bypass here; admin routes
  are separate. ``owns(owner_id, user)`` is the boolean form.

The signing key comes from Secrets Manager (``JWT_SECRET_ARN``, read once per cold
start), or ``JWT_SECRET``; only when neither is set is a fixed development key used,
with a warning (and never outside the local/dev/test stages). The key is never logged.
"""

import logging
import time
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from amazon_pilot.domain.plans import DEFAULT_PLAN
from amazon_pilot.platform import (
    fastapi_v1_check,  # noqa: F401  (before any route: cold start)
    ratelimit,
)
from amazon_pilot.platform.errors import (
    Forbidden,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unauthorized,
    error_body,
)
from amazon_pilot.platform.settings import settings

log = logging.getLogger("amazon_pilot.security")

ACCESS_TOKEN_TTL_SECONDS = 15 * 60
TOKEN_ISSUER = "amazon-pilot"
TOKEN_AUDIENCE = "amazon-pilot-api"
ALGORITHM = "HS256"
_DEV_KEY = "amazon-pilot-local-development-signing-key-not-for-production"
_DEV_STAGES = {"local", "dev", "test"}

MISSING_TOKEN = "authentication required: send the header 'Authorization: Bearer <access token>'"


@dataclass(frozen=True, slots=True)
class CurrentUser:
    id: uuid.UUID
    email: str
    role: str
    plan: str
    # the session (refresh-token family) the access token belongs to, and whether it
    # was started with a second factor; None / False for tokens issued before either
    session_id: uuid.UUID | None = None
    mfa: bool = False

    @property
    def is_admin(self) -> bool:
        """An administrator acting as one: role admin and a two-factor session. An admin
        signed in with a password only is treated as a seller until they enrol."""
        return self.role == "admin" and self.mfa


# ------------------------------------------------------------------ signing key

_warned = False


def _load_key() -> str:
    cfg = settings()
    if cfg.jwt_secret:
        return cfg.jwt_secret
    arn = cfg.jwt_secret_arn
    if arn:
        from amazon_pilot.adapters.secrets import secret_field

        # read through the per-identity secret cache on every call (a dict lookup)
        return secret_field(arn, "key", "secret", "value", "jwt_secret")
    stage = cfg.stage
    if stage not in _DEV_STAGES:
        raise RuntimeError(f"no JWT signing key configured for stage {stage!r}: set "
                           "JWT_SECRET_ARN (or JWT_SECRET)")
    global _warned
    if not _warned:
        _warned = True
        log.warning("neither JWT_SECRET nor JWT_SECRET_ARN is set: signing tokens with "
                    "the built-in development key; never use this outside local "
                    "development")
    return _DEV_KEY


def signing_key() -> str:
    return _load_key()


# ------------------------------------------------------------------ access tokens


class TokenRejected(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def issue_access_token(user_id: uuid.UUID | str, auth_epoch: int = 0, *,
                       session_id: uuid.UUID | str | None = None, mfa: bool = False,
                       now: float | None = None,
                       ttl: int = ACCESS_TOKEN_TTL_SECONDS) -> str:
    """`ver` is the user's auth epoch and `sid` the session: the per-request lookup
    refuses the token as soon as either is ended (docs/security-accounts.md)."""
    import jwt

    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "type": "access",
        "ver": auth_epoch,
        "iat": issued,
        "exp": issued + ttl,
        "iss": TOKEN_ISSUER,
        "aud": TOKEN_AUDIENCE,
    }
    if session_id is not None:
        claims["sid"] = str(session_id)
    if mfa:
        claims["mfa"] = True
    return jwt.encode(claims, signing_key(), algorithm=ALGORITHM)


MFA_CHALLENGE_TTL_SECONDS = 5 * 60


def issue_mfa_challenge(user_id: uuid.UUID | str, auth_epoch: int, *,
                        now: float | None = None,
                        ttl: int = MFA_CHALLENGE_TTL_SECONDS) -> str:
    """The short-lived token between the password and the second factor. Its type is
    not "access": no API route accepts it as a bearer token."""
    import jwt

    issued = int(time.time() if now is None else now)
    claims = {"sub": str(user_id), "type": "mfa_challenge", "ver": auth_epoch,
              "jti": uuid.uuid4().hex, "iat": issued, "exp": issued + ttl,
              "iss": TOKEN_ISSUER, "aud": TOKEN_AUDIENCE}
    return jwt.encode(claims, signing_key(), algorithm=ALGORITHM)


def verify_mfa_challenge(token: str) -> dict[str, Any]:
    """The challenge's claims, or TokenRejected."""
    claims = _decode(token, "mfa challenge")
    if claims.get("type") != "mfa_challenge" or "jti" not in claims:
        raise TokenRejected("this is not an MFA challenge token")
    return claims


# Access tokens already verified, by (signing key, token), until they expire: a client
# sends the same token for up to 15 minutes, and PyJWT's checks (the signature and a
# per-character scan of the token) cost more than the rest of authenticating a request.
# Only the signature and the claims are remembered; the session, the account and the
# rate limit are still checked on every request (_load_user). Readers share the dicts.
_verified: dict[tuple[str, str], dict[str, Any]] = {}
_VERIFIED_MAX = 4096


def verify_access_token(token: str) -> dict[str, Any]:
    """The token's claims, or TokenRejected with a message a client can act on."""
    key = (signing_key(), token)
    claims = _verified.get(key)
    if claims is not None and claims["exp"] > time.time():  # PyJWT's own expiry rule
        return claims
    claims = _decode(token, "access")
    if claims.get("type") != "access":
        raise TokenRejected("this is not an access token")
    if "sid" in claims:
        try:
            claims["sid"] = str(uuid.UUID(str(claims["sid"])))
        except ValueError:
            raise TokenRejected("the access token is not valid (session)") from None
    if len(_verified) >= _VERIFIED_MAX:
        _verified.clear()  # a bound, not an LRU: refilling costs one decode a token
    _verified[key] = claims
    return claims


def _decode(token: str, kind: str) -> dict[str, Any]:
    import jwt

    try:
        claims: dict[str, Any] = jwt.decode(
            token, signing_key(), algorithms=[ALGORITHM], audience=TOKEN_AUDIENCE,
            issuer=TOKEN_ISSUER, options={"require": ["exp", "iat", "sub", "type"]},
        )
    except jwt.ExpiredSignatureError:
        if kind == "access":
            raise TokenRejected("the access token has expired; get a new one from "
                                "POST /v1/auth/refresh") from None
        raise TokenRejected(f"the {kind} token has expired; sign in again") from None
    except jwt.InvalidAlgorithmError:
        raise TokenRejected(f"the {kind} token is not signed with an accepted "
                            "algorithm") from None
    except jwt.InvalidSignatureError:
        raise TokenRejected(f"the {kind} token signature is not valid") from None
    except jwt.DecodeError:
        raise TokenRejected(f"the {kind} token is malformed") from None
    except jwt.InvalidTokenError as exc:
        raise TokenRejected(f"the {kind} token is not valid ({type(exc).__name__})") from None
    try:
        claims["sub"] = str(uuid.UUID(str(claims["sub"])))
    except ValueError:
        raise TokenRejected(f"the {kind} token is not valid (subject)") from None
    return claims


# ------------------------------------------------------------------ per-request auth


@dataclass(slots=True)
class AuthState:
    user: CurrentUser | None = None
    error: str | None = None
    decision: ratelimit.RateDecision | None = None


def bearer_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return ""  # present but not a bearer token
    return None


def authenticate(scope: Scope) -> AuthState:
    """Verify the bearer token and count the request (once per request, cached in state)."""
    state = scope.setdefault("state", {})
    cached = state.get("auth")
    if cached is not None:
        return cached  # type: ignore[no-any-return,unused-ignore]
    result = AuthState()
    token = bearer_token(scope)
    if token == "":
        result.error = "the Authorization header must be 'Bearer <access token>'"
    elif token is not None:
        try:
            claims = verify_access_token(token)
        except TokenRejected as exc:
            result.error = exc.message
        else:
            _load_user(claims, result, ratelimit.client_ip(scope))
    if result.decision is None:
        result.decision = ratelimit.hit(f"ip:{ratelimit.client_ip(scope)}", ratelimit.ip_limit())
    state["auth"] = result
    return result


SESSION_ENDED = "this session has ended (signed out, or ended from another session); log in again"
EPOCH_MOVED = ("every session of this account has ended (password changed or all sessions "
               "signed out); log in again")


def _load_user(claims: dict[str, Any], result: AuthState, ip: str) -> None:
    count, reset_at, row = ratelimit.hit_with_user(claims["sub"], ip, session_id=claims.get("sid"))
    plan = row.plan or DEFAULT_PLAN
    plan_limit = settings().plan(plan).requests_per_minute
    result.decision = ratelimit.RateDecision(plan_limit, count, reset_at)
    ceiling = ratelimit.authenticated_ip_limit(plan_limit)
    if int(row.ip_hits) > ceiling and result.decision.allowed:
        # the user has room, the address has not: the address's ceiling decides
        result.decision = ratelimit.RateDecision(ceiling, int(row.ip_hits), reset_at,
                                                 per_address=True)
    if row.email is None:
        result.error = "the account of this access token no longer exists"
    elif not row.is_active:
        result.error = "this account is deactivated"
    elif int(row.auth_epoch) != int(claims.get("ver", 0)):
        result.error = EPOCH_MOVED
    elif row.session_revoked:
        result.error = SESSION_ENDED
    else:
        sid = claims.get("sid")
        result.user = CurrentUser(id=uuid.UUID(claims["sub"]), email=row.email,
                                  role=row.role, plan=plan,
                                  session_id=uuid.UUID(sid) if sid else None,
                                  mfa=claims.get("mfa") is True)


def _rate_limited_message(decision: ratelimit.RateDecision) -> str:
    who = " from this address for all its accounts" if decision.per_address else ""
    return (f"rate limit exceeded: {decision.limit} requests per {ratelimit.window_seconds()} s"
            f"{who}; retry in {decision.reset_in()} s")


class AuthRateLimitMiddleware:
    """Authenticates (when a bearer token is sent) and rate-limits every non-exempt request,
    and puts the X-RateLimit-* headers on every response it lets through or refuses."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] == "OPTIONS" \
                or ratelimit.is_exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        rid = scope.setdefault("state", {}).get("request_id")
        try:
            auth = authenticate(scope)
        except Exception:
            log.exception("authentication or rate limiting failed")
            body = error_body(503, "the service is temporarily unavailable; retry shortly", rid)
            await JSONResponse(body, status_code=503, headers={"retry-after": "5"})(
                scope, receive, send)
            return
        decision = auth.decision
        assert decision is not None
        if not decision.allowed:
            body = error_body(429, _rate_limited_message(decision), rid)
            response = JSONResponse(body, status_code=429)
            response.raw_headers.extend(decision.headers())
            await response(scope, receive, send)
            return
        extra = decision.headers()

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_limits)


# ------------------------------------------------------------------ dependencies

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    bearerFormat="JWT",
    description="Access token from POST /v1/auth/login or /v1/auth/refresh (15 minutes).",
)


async def current_user(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> CurrentUser:
    """The authenticated caller; 401 UNAUTHORIZED otherwise (see the module docstring)."""
    try:
        auth = authenticate(request.scope)
    except Exception as exc:
        log.exception("authentication failed")
        raise ServiceUnavailable("the service is temporarily unavailable; retry shortly") from exc
    if auth.user is None:
        raise Unauthorized(auth.error or MISSING_TOKEN,
                           headers={"WWW-Authenticate": 'Bearer realm="amazon-pilot"'})
    decision = auth.decision
    if decision is not None and not decision.allowed:  # when no middleware already refused
        headers = {k.decode(): v.decode() for k, v in decision.headers()}
        raise TooManyRequests(_rate_limited_message(decision), headers=headers)
    return auth.user


class MfaRequired(Forbidden):
    code = "MFA_REQUIRED"


ADMIN_NEEDS_MFA = ("administrators must sign in with a second factor: enrol at "
                   "POST /v1/auth/mfa/enrol (dashboard: Settings), or sign in again "
                   "with your authenticator code")


async def require_admin(user: CurrentUser = Depends(current_user)) -> CurrentUser:
    """An administrator whose session was started (or re-issued on enrolment) with a
    second factor; an admin without one gets 403 MFA_REQUIRED and must enrol first."""
    if user.role != "admin":
        raise Forbidden("this route is for administrators")
    if not user.is_admin:
        raise MfaRequired(ADMIN_NEEDS_MFA)
    return user


def owns(owner_id: uuid.UUID | str | None, user: CurrentUser) -> bool:
    if owner_id is None:
        return False
    try:
        return uuid.UUID(str(owner_id)) == user.id
    except ValueError:
        return False


def ensure_owner(owner_id: uuid.UUID | str | None, user: CurrentUser,
                 what: str = "resource") -> None:
    """404 unless the resource exists and belongs to `user` (never 403: ids stay secret)."""
    if not owns(owner_id, user):
        raise NotFound(f"{what} not found")


# Route parameters: the signed-in caller, and the signed-in administrator.
Caller = Annotated[CurrentUser, Depends(current_user)]
AdminCaller = Annotated[CurrentUser, Depends(require_admin)]
