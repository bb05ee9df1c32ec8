"""Lambda entry point of the auth API function (FastAPI behind Mangum)."""

from amazon_pilot.accounts.router import router
from amazon_pilot.audit.router import router as audit_router
from amazon_pilot.platform.handler import make_api_handler

handler = make_api_handler("auth", [router, audit_router])
