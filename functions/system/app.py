"""Lambda entry point of the system API function: health and the API contract."""

from amazon_pilot.platform.handler import make_api_handler
from amazon_pilot.platform.system import router

handler = make_api_handler("system", [router])
