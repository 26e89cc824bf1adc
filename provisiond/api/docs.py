"""``/docs`` (Swagger UI) served from the installed ``swagger-ui-bundle-v2`` package, not a CDN:
the API's manual must open on an isolated management network. ``/metrics`` for Prometheus."""

from __future__ import annotations

import swagger_ui_bundle
from fastapi import FastAPI, Request, Response
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.staticfiles import StaticFiles

from provisiond import metrics
from provisiond.api.base import connection

ASSETS = "/docs/assets"


def install(app: FastAPI) -> None:
    """Add ``/docs``, its assets and ``/metrics`` to ``app`` (created with ``docs_url=None``)."""
    app.mount(ASSETS, StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="provisiond API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon-32x32.png")

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request):
        """Prometheus text format; like /v1/health it needs no token (keep the API on a
        management network, as its loopback default does)."""
        with connection():
            body = metrics.render(request.app.state.context.settings)
        return Response(body, media_type=metrics.CONTENT_TYPE)
