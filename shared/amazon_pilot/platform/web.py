"""Routes of the web function: the dashboard's page and its static assets.

The dashboard is plain ES modules and CSS committed under ``web/`` (no build step).
The package reaches them through ``amazon_pilot/web_assets``, a link to that folder,
so the shared layer carries them to Lambda; see docs/dashboard.md.

- ``GET /`` and every page path (``/products/<id>``, ``/alerts``, ...) answer the one
  HTML page; the page's script routes on the client.
- ``GET /static/<path>`` answers a file of the folder (known types only, no dotfiles,
  nothing outside it), with an ETag (304 on a match) and gzip when the client takes it.
- A path with a file extension outside ``/static/`` (``/favicon.ico``) answers 404.
- ``/v1/...`` is never answered here with HTML: a path the API does not have reaches
  this catch-all only because API Gateway picks the most specific route, so it gets
  the API's JSON 404.

Every answer carries the dashboard's Content-Security-Policy (no inline script or
style; connections to this origin only). EdgeMiddleware adds its own strict default
only when a response has none, so this one is kept.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

from amazon_pilot.platform import fastapi_v1_check  # noqa: F401  (before any route: cold start)
from amazon_pilot.platform.errors import NotFound

router = APIRouter(tags=["web"])

CSP = ("default-src 'self'; img-src 'self' https: data:; style-src 'self'; "
       "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'; object-src 'none'")

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
    ".json": "application/json",
}
# The vendored library's folder carries its version: its files never change under one URL.
IMMUTABLE_PREFIX = "vendor/"
MIN_GZIP_BYTES = 1024


def asset_root() -> Path:
    """The dashboard's folder: inside the package (Lambda), else the repository's web/."""
    packaged = Path(__file__).resolve().parents[1] / "web_assets"
    if (packaged / "index.html").is_file():
        return packaged.resolve()
    return (Path(__file__).resolve().parents[3] / "web").resolve()


def cache_control(relative: str) -> str:
    """The Cache-Control of a dashboard file (also what scripts/deploy.sh stores on the
    edge bucket's copy): the page is revalidated, versioned vendor files never change."""
    if relative == "index.html":
        return "no-cache"
    if relative.startswith(IMMUTABLE_PREFIX):
        return "public, max-age=31536000, immutable"
    return "public, max-age=0, must-revalidate"


@dataclass(frozen=True)
class Asset:
    body: bytes
    gzipped: bytes | None
    etag: str
    content_type: str
    cache_control: str


class AssetStore:
    """Keeps each file read and compressed in memory; a file whose size or modification
    time changed is read again (an edit shows on reload under `pilot run`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, tuple[tuple[int, int], Asset]] = {}
        self._lock = threading.Lock()

    def _path(self, relative: str) -> Path | None:
        parts = relative.split("/")
        if not relative or any(p in ("", ".", "..") or p.startswith(".") for p in parts):
            return None
        path = self.root.joinpath(*parts)
        if path.suffix.lower() not in CONTENT_TYPES:
            return None
        try:
            resolved = path.resolve()
            resolved.relative_to(self.root)
        except (OSError, ValueError):
            return None
        return resolved

    def get(self, relative: str) -> Asset | None:
        path = self._path(relative)
        if path is None:
            return None
        try:
            info = path.stat()
        except OSError:
            return None
        stamp = (info.st_mtime_ns, info.st_size)
        cached = self._cache.get(relative)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        asset = self._load(relative, path)
        if asset is None:
            return None
        with self._lock:
            self._cache[relative] = (stamp, asset)
        return asset

    def _load(self, relative: str, path: Path) -> Asset | None:
        kind = CONTENT_TYPES[path.suffix.lower()]
        try:
            body = path.read_bytes()
        except OSError:
            return None
        packed = gzip.compress(body, 9, mtime=0) if len(body) >= MIN_GZIP_BYTES else None
        if packed is not None and len(packed) >= len(body):
            packed = None
        cache = cache_control(relative)
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        return Asset(body, packed, etag, kind, cache)


_store: AssetStore | None = None


def store() -> AssetStore:
    global _store
    if _store is None:
        _store = AssetStore(asset_root())
    return _store


def _answer(request: Request, asset: Asset) -> Response:
    headers = {"content-security-policy": CSP, "cache-control": asset.cache_control,
               "etag": asset.etag, "vary": "accept-encoding",
               "x-content-type-options": "nosniff"}
    match = request.headers.get("if-none-match", "")
    if asset.etag in [tag.strip().removeprefix("W/") for tag in match.split(",")]:
        return Response(status_code=304, headers=headers)
    body = asset.body
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body = asset.gzipped
        headers["content-encoding"] = "gzip"
    return Response(body, media_type=asset.content_type, headers=headers)


def _page(request: Request) -> Response:
    asset = store().get("index.html")
    if asset is None:
        raise NotFound("the dashboard's files are missing from this deployment")
    return _answer(request, asset)


@router.get("/", include_in_schema=False)
async def index(request: Request) -> Response:
    return _page(request)


@router.get("/{proxy:path}", include_in_schema=False)
async def web_path(proxy: str, request: Request) -> Response:
    if proxy == "v1" or proxy.startswith("v1/"):
        raise NotFound(f"no route for GET /{proxy}")
    if proxy.startswith("static/"):
        asset = store().get(proxy.removeprefix("static/"))
        if asset is None:
            raise NotFound(f"no dashboard file /{proxy}")
        return _answer(request, asset)
    if "." in proxy.rsplit("/", 1)[-1]:
        # page paths have no extension: a file name here is a wrong link, not a page
        raise NotFound(f"no dashboard file /{proxy} (files are under /static/)")
    return _page(request)
