"""Routes of the auth function."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["auth"])
