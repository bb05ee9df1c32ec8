"""Lambda entry point of the products API function (FastAPI behind Mangum)."""

from amazon_pilot.api import products
from amazon_pilot.notifications import router as notifications
from amazon_pilot.platform.handler import make_api_handler

handler = make_api_handler("products", [products.router, notifications.router])
