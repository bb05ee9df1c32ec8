"""Lambda entry point of the optimization API function (FastAPI behind Mangum)."""

from amazon_pilot.optimization.router import router
from amazon_pilot.platform.handler import make_api_handler

handler = make_api_handler("optimization", [router])
