"""Lambda entry point of the system API function: health, the API contract, and the
operator console (/v1/admin/operations/*)."""

from amazon_pilot.operations.router import router as operations_router
from amazon_pilot.platform.handler import make_api_handler
from amazon_pilot.platform.system import router

handler = make_api_handler("system", [router, operations_router])
