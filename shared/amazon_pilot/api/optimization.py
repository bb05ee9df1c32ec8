"""Routes of the optimization function."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["optimization"])
