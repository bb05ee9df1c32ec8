"""Lambda entry point of the products API function (FastAPI behind Mangum)."""

from amazon_pilot.market import router as market
from amazon_pilot.notifications import router as notifications
from amazon_pilot.platform.handler import make_api_handler
from amazon_pilot.tracking.router import router

handler = make_api_handler("products", [router, notifications.router, market.router])
