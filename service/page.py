"""The latent explorer: a static page at ``/``, its files in ``service/static/``.

The page is plain HTML, CSS and JavaScript (no build step, nothing loaded from
elsewhere). It calls only the public image API (``/models``, ``/generate``,
``/conditional``, ``/perturb``) with ``fetch``, sending the API key the user typed
as a Bearer header, so it is public itself: it holds no data and draws nothing
the API would not give the same caller.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.routing import Mount
from starlette.types import Receive, Scope, Send

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Only the page's own files and the images it fetched (blob: URLs); the empty
# data: icon keeps browsers from asking for /favicon.ico.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; "
    "base-uri 'self'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    # Revalidate on every load (cheap: ETag / Last-Modified), so a new release shows at once.
    "Cache-Control": "no-cache",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
}


class PageFiles(StaticFiles):
    """The page's static files, with the page's headers."""

    route: Mount | None = None  # set once mounted: its path labels these requests' metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.route is not None:
            scope.setdefault("route", self.route)
        await super().__call__(scope, receive, send)

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(PAGE_HEADERS)
        return response


async def read_page() -> FileResponse:
    """The latent explorer page."""
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


def add_page(app: FastAPI) -> None:
    """Serve the page at ``/`` and its files under ``/static/`` (neither is in the API schema)."""
    app.add_api_route("/", read_page, methods=["GET", "HEAD"], include_in_schema=False)
    files = PageFiles(directory=STATIC_DIR)
    app.mount("/static", files, name="static")
    files.route = next(r for r in app.routes if isinstance(r, Mount) and r.app is files)
