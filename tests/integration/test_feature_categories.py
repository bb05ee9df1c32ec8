"""Features for any category through the running stack: a group of water bottles from the
stand-in catalog gets a comparison whose feature matrix has capacity and material rows."""

from __future__ import annotations

import random

import httpx
from sqlalchemy import text

from amazon_pilot.platform.db import get_engine
from pilot_dev.runtime.stack import Stack
from pilot_dev.standins.apify_catalog import demo_asins
from tests.integration.sellers import auth, new_seller
from tests.integration.test_competitors import GROUPS, create, url, wait_fetched


def test_water_bottle_group_compares_capacity_and_material(
    api: httpx.Client, stack: Stack
) -> None:
    with get_engine().connect() as conn:
        known = set(conn.execute(text("SELECT asin FROM products")).scalars())
    asins = random.sample([a for a in demo_asins("drinkware", 60) if a not in known], 4)
    seller = new_seller(api)
    response = create(api, seller, url(asins[0], "Bottle"), [url(a, "Bottle") for a in asins[1:]],
                      name="Bottles")
    assert response.status_code == 201, response.text
    group = wait_fetched(api, seller, response.json()["id"])
    body = api.get(f"{GROUPS}/{group['id']}/comparison?window=7d", headers=auth(seller))
    assert body.status_code == 200, body.text
    features = body.json()["features"]
    for product in features["products"]:
        capacity = product["features"]["capacity_ml"]
        assert capacity["unit"] == "ml" and capacity["value"] > 0
        assert capacity["evidence"]["source"] == "details"
        assert capacity["evidence"]["row_name"] == "Capacity"
        assert "Fluid Ounces" in capacity["label"]
        assert product["features"]["materials"]["value"]
    comparison = features["comparison"]
    rows = {n["name"] for n in comparison["numeric"]} | set(comparison["shared"])
    assert {"capacity_ml", "materials"} <= rows
    assert "features.capacity_ml" in comparison["metric_keys"]
    assert "features.materials" in comparison["metric_keys"]
