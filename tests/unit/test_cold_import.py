"""Cold-start cost that type annotations add: every string annotation that pydantic,
FastAPI or typing.NamedTuple/TypedDict evaluates becomes a typing.ForwardRef, which
compiles its text (about 140,000 instructions each on Python 3.13). With `from __future__
import annotations` a schemas module made ~190 of them at import, and the API functions
made 420 to 520 each: about a quarter of the instructions a function's own code added to
its cold start (docs/benchmarks.md, "Cold start"). Schemas, routers and stores with NamedTuples or
TypedDicts therefore keep real annotations; this test keeps it that way."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
API_FUNCTIONS = ["products", "competitors", "optimization", "auth", "system", "web"]
MOST = 40  # what the remaining dataclasses and error models make; 420-520 before

COUNT_FORWARD_REFS = """
import collections, json, sys, traceback, typing
# the libraries first, as the bench's reference module loads them: only our modules count
import aws_xray_sdk.core, fastapi, mangum, sqlalchemy.engine
from aws_lambda_powertools import Logger, Metrics, Tracer
made = collections.Counter()
plain_init = typing.ForwardRef.__init__
def counting_init(self, *args, **kwargs):
    ours = [f.filename for f in traceback.extract_stack() if "amazon_pilot" in f.filename]
    made[ours[-1].split("amazon_pilot")[-1] if ours else "libraries"] += 1
    plain_init(self, *args, **kwargs)
typing.ForwardRef.__init__ = counting_init
import app
print(json.dumps(made))
"""


@pytest.mark.parametrize("function", API_FUNCTIONS)
def test_an_api_function_evaluates_few_string_annotations_at_import(function: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "functions" / function), str(ROOT / "shared")]),
        "POWERTOOLS_TRACE_DISABLED": "true", "AWS_REGION": "us-east-1"}
    out = subprocess.run([sys.executable, "-c", COUNT_FORWARD_REFS], env=env, check=True,
                         capture_output=True, text=True, timeout=120, cwd=ROOT)
    made = json.loads(out.stdout.strip().splitlines()[-1])
    ours = {module: n for module, n in made.items() if module != "libraries"}
    assert sum(ours.values()) <= MOST, (
        f"{function}: {sum(ours.values())} string annotations evaluated at import, by "
        f"module {ours}; drop `from __future__ import annotations` there (see this "
        f"test's docstring)")
