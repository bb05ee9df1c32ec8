"""Lambda entry point of the products API function (FastAPI behind Mangum)."""

from amazon_pilot.api import notifications, products
from amazon_pilot.platform.handler import make_api_handler

handler = make_api_handler("products", [products.router, notifications.router])
