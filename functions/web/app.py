"""Lambda entry point of the web function: the dashboard's page and assets (FastAPI
behind Mangum, like the API functions, on the same origin as the API)."""

from amazon_pilot.platform import web
from amazon_pilot.platform.handler import make_api_handler

handler = make_api_handler("web", [web.router])
