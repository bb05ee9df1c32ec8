"""Lambda entry point of the products API function (FastAPI behind Mangum)."""

from amazon_pilot.api.handler import make_api_handler
from amazon_pilot.api.products import router

handler = make_api_handler("products", [router])
