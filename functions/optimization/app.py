"""Lambda entry point of the optimization API function (FastAPI behind Mangum)."""

from amazon_pilot.api.handler import make_api_handler
from amazon_pilot.api.optimization import router

handler = make_api_handler("optimization", [router])
