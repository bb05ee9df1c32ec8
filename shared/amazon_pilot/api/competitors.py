"""Routes of the competitors function."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["competitors"])
