"""Query parameters shared by the list routes (each route keeps its own page-size bound)."""

from typing import Annotated, Any

from fastapi import Query

Offset = Annotated[int, Query(ge=0, le=1_000_000)]


# CSV exports: `?format=csv` or `Accept: text/csv` asks a list or history route for CSV.
ExportFormat = Annotated[str | None, Query(pattern="^(json|csv)$",
                                           description="csv: the export (or Accept: text/csv)")]
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}},
          "description": "JSON, or CSV with `format=csv` / `Accept: text/csv`"}}


def wants_csv(format: str | None, accept: str | None) -> bool:
    """An explicit format wins; otherwise an Accept header naming text/csv before (or
    without) application/json."""
    if format is not None:
        return format == "csv"
    if not accept:
        return False
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    if "text/csv" not in kinds:
        return False
    return "application/json" not in kinds or kinds.index("text/csv") < kinds.index(
        "application/json")


def attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store"}
