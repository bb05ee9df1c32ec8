"""Lambda entry point of the competitors API function (FastAPI behind Mangum)."""

from amazon_pilot.competitors.router import router
from amazon_pilot.market.router import group_router
from amazon_pilot.platform.handler import make_api_handler

handler = make_api_handler("competitors", [router, group_router])
