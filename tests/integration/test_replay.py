"""APIFY_REPLAY: recorded actor exports answer the actor runs of the running stack, and
everything after the stand-in (apify-client, polling, paging, normalization, storage)
runs unchanged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from pilot_dev.runtime.stack import Stack
from pilot_dev.standins.replay import Recording, ReplayError
from tests.integration.replay import FIXTURES, replaying
from tests.integration.sellers import auth, new_seller
from tests.integration.test_runtime import wait_for

RECORDED = FIXTURES / "replay" / "recorded-run.json"


def _fetched(api: httpx.Client, seller: dict[str, Any], tracked_id: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body = api.get(f"/v1/products/{tracked_id}", headers=auth(seller)).json()
        return body if body["fetch_status"] != "pending" else None

    return dict(wait_for(done, 30, f"the first fetch of {tracked_id}"))


def test_a_recorded_export_answers_the_actor_runs_of_the_running_stack(
    api: httpx.Client, stack: Stack
) -> None:
    seller = new_seller(api)
    with replaying(stack, RECORDED):
        added = {}
        for asin in ("B0D2XRXNGY", "B07T5GBSDH", "B0NOTREC01"):
            response = api.post("/v1/products", json={"asin": asin}, headers=auth(seller))
            assert response.status_code == 202, response.text
            added[asin] = response.json()["id"]
        products = {asin: _fetched(api, seller, tid) for asin, tid in added.items()}
    # the real axesso item: its title and price, read through the whole path
    anker = products["B0D2XRXNGY"]
    assert anker["fetch_status"] == "ok" and anker["title"].startswith("Soundcore V20i")
    assert anker["latest"]["price"] == 23.49 and anker["latest"]["buy_box_seller"] == "AnkerDirect"
    # the real junglee item (another actor's format) in the same dataset
    pants = products["B07T5GBSDH"]
    assert pants["fetch_status"] == "ok" and pants["latest"]["price"] == 20.8
    # nothing was recorded for this one: the actor's not-found answer
    assert products["B0NOTREC01"]["fetch_status"] == "not_found"
    # replayed data is labelled: it did not come from Apify today
    assert anker["data_source"] == "sandbox"


def test_a_recording_matches_by_the_url_and_keeps_what_names_no_product(tmp_path: Path) -> None:
    items = json.loads(RECORDED.read_text())
    duplicate = dict(items[0], price=99.0)
    export = tmp_path / "export.json"
    export.write_text(json.dumps([items[0], duplicate, "<html>Robot Check</html>",
                                  {"error": "blocked"}]))
    recording = Recording([export])
    served = recording.items_for(["https://www.amazon.com/dp/B0D2XRXNGY",
                                  "https://www.amazon.de/dp/B0D2XRXNGY"])
    # both recorded copies for the .com page (actors do emit duplicates), the not-found
    # item for the .de page nobody recorded, then the items that name no product
    assert [i.get("price") if isinstance(i, dict) else i for i in served] == [
        23.49, 99.0, None, "<html>Robot Check</html>", None]
    assert served[2]["statusCode"] == 404 and served[2]["url"].startswith("https://www.amazon.de")
    assert served[4] == {"error": "blocked", "sandbox": True}


@pytest.mark.parametrize(("content", "message"), [
    (None, "does not exist"),
    ("not json", "is not a JSON dataset export"),
    ('{"items": []}', r"is not a dataset export \(a JSON array of items\), it is a JSON dict"),
])
def test_an_unusable_export_is_refused_with_its_reason(tmp_path: Path, content: str | None,
                                                       message: str) -> None:
    path = tmp_path / "export.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ReplayError, match=message):
        Recording([path])


def test_pilot_run_refuses_an_unusable_export_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "APIFY_REPLAY": str(tmp_path / "missing.json"),
           "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
    done = subprocess.run([sys.executable, "-m", "pilot_dev.cli", "run", "--port", "0"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "APIFY_REPLAY" in done.stderr and "does not exist" in done.stderr
    assert "Traceback" not in done.stderr
