"""/v1/docs in a real browser: Swagger UI renders the served OpenAPI 3.1 document
(4.x, the version the PyPI bundle ships, shows "Unable to render this definition" for it)."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import shoot


def test_the_api_reference_renders_its_operations(page: Any) -> None:
    page.goto("/v1/docs")
    login = page.locator(".opblock-summary-path[data-path='/v1/auth/login']")
    login.first.wait_for()
    assert page.locator(".opblock").count() > 20
    assert page.get_by_text("Unable to render this definition").count() == 0
    # an operation opens and shows its request body schema
    login.first.click()
    page.locator(".opblock.is-open .opblock-section-request-body").first.wait_for()
    assert page.watch.errors == []
    shoot(page, "api-docs", full_page=False)
