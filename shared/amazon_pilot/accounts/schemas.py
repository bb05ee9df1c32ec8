"""Request and response models of the auth and admin routes."""

import uuid
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from amazon_pilot.domain.plans import PLAN_NAMES
from amazon_pilot.domain.seller_identity import MAX_BRAND_LENGTH, MAX_BRANDS, MAX_SELLER_IDS
from amazon_pilot.platform.models import Strict

_CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class QuietHoursPrefs(Strict):
    """A daily window in the seller's time zone (start > end wraps past midnight)
    during which non-critical alerts wait for the next digest; critical ones still go."""

    enabled: bool = True
    start: str = Field("22:00", pattern=_CLOCK, examples=["22:00"])
    end: str = Field("07:00", pattern=_CLOCK, examples=["07:00"])


def _check_timezone(value: str | None) -> str | None:
    from amazon_pilot.domain.notifications import InvalidQuietHours, validate_timezone

    if value is None:
        return None
    try:
        return validate_timezone(value)
    except InvalidQuietHours as exc:
        raise ValueError(str(exc)) from None


class NotificationPrefs(BaseModel):
    digest: Literal["off", "daily", "weekly"] = "off"
    max_notifications_per_product_per_day: int = Field(5, ge=0, le=100)
    email: bool = True
    timezone: str = Field("UTC", description="IANA time zone of quiet hours")
    quiet_hours: QuietHoursPrefs | None = None


class NotificationPrefsPatch(Strict):
    digest: Literal["off", "daily", "weekly"] | None = Field(
        None, description="off: a message per alert (capped); daily: one digest a day; "
        "weekly: one digest on Mondays")
    max_notifications_per_product_per_day: int | None = Field(None, ge=0, le=100)
    email: bool | None = None
    timezone: str | None = Field(None, max_length=64, examples=["Europe/Berlin"],
                                 description="IANA time zone name")
    quiet_hours: QuietHoursPrefs | None = None

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str | None) -> str | None:
        return _check_timezone(value)


class FetchBudget(BaseModel):
    """What the daily plan found for a seller with a budget. Every result fetched for a
    product you track counts (as GET /v1/scrape-runs attributes runs' costs); the rest of
    the month is projected at your products' cadences."""

    budget_usd: float
    month_to_date_usd: float = Field(description="results fetched for your products this "
                                     "month x price_per_result_usd")
    projected_usd: float = Field(description="the month at the cadences applied now")
    unstretched_usd: float = Field(description="the month at the cadences you chose")
    stretched_products: int = Field(description="products fetched weekly to fit the budget "
                                    "(shown as budget_stretched on each); none is dropped")
    stretched_stable: int = Field(description="of those, products with no price/Buy Box/BSR "
                                  "alert for 7 days (stretched first)")
    reason: str | None = Field(description="why products were stretched; null when the "
                               "month fits")
    price_per_result_usd: float
    planned_at: datetime


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from store.User

    id: uuid.UUID
    email: str
    company_name: str | None
    role: Literal["seller", "admin"]
    plan: Literal["free", "pro", "enterprise"]
    is_active: bool
    notification_prefs: NotificationPrefs
    seller_ids: list[str] = Field(
        description="the seller's Amazon seller (merchant) ids: a Buy Box held by one of them "
        "is theirs. Empty: Buy Box ownership is unknown, and alerts say so")
    brands: list[str] = Field(description="the seller's brand names: a new seller on a "
                              "listing of one of them raises new_seller_on_listing")
    created_at: datetime
    updated_at: datetime
    mfa_enabled: bool = Field(False, description="two-step sign-in (TOTP) is on")
    monthly_fetch_budget_usd: float | None = Field(
        None, description="your monthly budget for product fetches (USD); null: none")
    fetch_budget: FetchBudget | None = Field(
        None, description="the last daily plan's reading of your budget (null without a "
        "budget, or before the first plan with one)")


class RegisterIn(Strict):
    email: str = Field(max_length=320, examples=["seller@example.com"])
    password: str = Field(max_length=1024, description="at least 10 characters, mixing at "
                          "least two of lower-case, upper-case, digits and symbols")
    company_name: str | None = Field(None, max_length=200)


class RegisterAccepted(BaseModel):
    """The same answer for a new e-mail and for one that has an account already."""

    status: Literal["accepted"] = "accepted"
    message: str


class LoginIn(Strict):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str | None = Field(
        None, description="absent when the request asked for the session cookie "
        "(`X-Session-Cookie: 1`): the HttpOnly cookie carries it instead")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="seconds the access token stays valid")


class MfaChallengeOut(BaseModel):
    """The password was right and the account has two-step sign-in: send a code from the
    authenticator app (or a recovery code) with this token to POST /v1/auth/login/mfa."""

    mfa_required: Literal[True] = True
    mfa_token: str
    expires_in: int = Field(description="seconds the mfa_token stays valid")


class LoginMfaIn(Strict):
    mfa_token: str = Field(max_length=2000)
    code: str | None = Field(None, max_length=12, description="the 6-digit code of the "
                             "authenticator app")
    recovery_code: str | None = Field(None, max_length=40, description="one of the "
                                      "recovery codes, instead of `code` (each works once)")


class MfaStatusOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from service.MfaStatus

    enabled: bool
    pending: bool = Field(description="an enrolment was started and not confirmed")
    recovery_codes_left: int
    required: bool = Field(description="administrators must have it for admin routes")


class MfaEnrolmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from service.Enrolment

    secret: str = Field(description="base32, for typing into an app by hand")
    otpauth_uri: str
    qr_svg_data_uri: str = Field(description="the QR code of otpauth_uri as an SVG data URI")


class MfaCodeIn(Strict):
    code: str = Field(max_length=12, description="a 6-digit code of the authenticator app")


class MfaConfirmOut(BaseModel):
    recovery_codes: list[str] = Field(description="shown this once: each signs in once "
                                      "when the app is lost")
    tokens: TokenPair = Field(description="the session, re-issued as a two-factor one")


class MfaProofIn(Strict):
    password: str = Field(max_length=1024)
    code: str = Field(max_length=40, description="a current 6-digit code, or a recovery code")


class RecoveryCodesOut(BaseModel):
    recovery_codes: list[str]


_FROM_COOKIE = ("omit it to use the session cookie (with the `X-Session-Cookie: 1` "
                "header)")


class RefreshIn(Strict):
    refresh_token: str | None = Field(None, max_length=200, description=_FROM_COOKIE)


class LogoutIn(Strict):
    refresh_token: str | None = Field(None, max_length=200, description=_FROM_COOKIE)
    all_sessions: bool = Field(False, description="end every session of the account")


_IDS = (f"up to {MAX_SELLER_IDS} Amazon seller (merchant) ids, 10 to 20 letters and digits "
        "each, e.g. A294P4X9EWVXLJ (Seller Central: Settings > Account Info > Merchant Token)."
        " Trimmed, upper-cased and deduplicated; the list replaces the stored one; [] or "
        "null clears it")
_BRANDS = (f"up to {MAX_BRANDS} brand names of up to {MAX_BRAND_LENGTH} characters. "
           "Trimmed and deduplicated regardless of case; the list replaces the stored one; "
           "[] or null clears it")


class MeUpdate(Strict):
    company_name: str | None = Field(None, max_length=200)
    notification_prefs: NotificationPrefsPatch | None = None
    # lengths are checked by domain.seller_identity, which names the item at fault;
    # these bounds only keep absurd bodies out
    seller_ids: list[str] | None = Field(None, max_length=200, description=_IDS)
    brands: list[str] | None = Field(None, max_length=200, description=_BRANDS)
    monthly_fetch_budget_usd: float | None = Field(
        None, ge=0, le=1_000_000, description="USD a month for product fetches; the daily "
        "plan stretches your stable products to weekly when the month would exceed it. "
        "null removes the budget")


class PasswordChangeIn(Strict):
    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024)


class SessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)  # built from store.Session

    id: uuid.UUID
    started_at: datetime
    last_used_at: datetime
    expires_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool = Field(False, description="the session of the token making this request")


class UserPage(BaseModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: int


class AdminUserUpdate(Strict):
    plan: Literal["free", "pro", "enterprise"] | None = None
    role: Literal["seller", "admin"] | None = None
    is_active: bool | None = None


assert set(PLAN_NAMES) == {"free", "pro", "enterprise"}, "UserOut/AdminUserUpdate list the plans"
