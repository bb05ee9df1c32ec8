"""One error format for every function, and the exceptions domain code may raise.

Shape: {"error": {"code", "message", "details": [{"field", "message"}], "request_id"}}.
"""

from typing import Any


class ApiError(Exception):
    """An error a client can act on; anything else becomes a 500 with no internals."""

    status = 400
    code = "BAD_REQUEST"

    def __init__(
        self,
        message: str,
        *,
        details: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.headers = headers or {}


class ValidationFailed(ApiError):
    status, code = 422, "VALIDATION_ERROR"


class BadRequest(ApiError):
    status, code = 400, "BAD_REQUEST"


class Unauthorized(ApiError):
    status, code = 401, "UNAUTHORIZED"


class Forbidden(ApiError):
    status, code = 403, "FORBIDDEN"


class PlanLimitReached(ApiError):
    """The caller's plan allows no more of something (products, groups)."""

    status, code = 403, "PLAN_LIMIT_REACHED"


class NotFound(ApiError):
    status, code = 404, "NOT_FOUND"


class Conflict(ApiError):
    status, code = 409, "CONFLICT"


class PayloadTooLarge(ApiError):
    status, code = 413, "PAYLOAD_TOO_LARGE"


class TooManyRequests(ApiError):
    status, code = 429, "RATE_LIMITED"


class ServiceUnavailable(ApiError):
    status, code = 503, "SERVICE_UNAVAILABLE"


STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


def error_body(
    status: int,
    message: str,
    request_id: str | None,
    *,
    code: str | None = None,
    details: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    return {
        "error": {
            "code": code or STATUS_CODES.get(status, "ERROR"),
            "message": message,
            "details": details or [],
            "request_id": request_id,
        }
    }


# ------------------------------------------------------------------ the format, as a schema
# (used by the OpenAPI contract; routes never build these by hand)

from pydantic import BaseModel, Field  # noqa: E402  (kept next to its use)


class ErrorDetail(BaseModel):
    field: str = Field(description="the input the problem is about, e.g. 'email' or 'body'")
    message: str


class ErrorInfo(BaseModel):
    code: str = Field(description="stable, machine-readable: " + ", ".join(
        sorted(set(STATUS_CODES.values()))))
    message: str = Field(description="for people; never contains internals")
    details: list[ErrorDetail] = Field(default_factory=list)
    request_id: str | None = Field(description="also in the X-Request-Id header")


class ErrorResponse(BaseModel):
    error: ErrorInfo
