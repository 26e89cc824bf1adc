"""The admin console: server-rendered pages under ``/ui/`` on the API's own app, so ``provisiond
api`` and ``run --api`` serve it. Jinja2 templates and static files ship in this package; no
asset comes from another site (it must work on an isolated management network), and the one
script (``static/console.js``) only adds conveniences: every page works without it.

Sign-in with an admin API token starts a session (``session``); every page but the sign-in
redirects there without one, and every form that changes something carries a CSRF value. Pages
are answered with a Content-Security-Policy that allows scripts, styles and images from the
console itself only.

One module per page: ``login``, ``needs`` (``/ui/``), ``jobs``, ``services_list``, ``services``,
``servers``, ``overview``; ``job_actions`` holds the forms that act on jobs, ``timeline`` and
``chart`` what the service and overview pages compute, ``render`` the templates' environment and
filters, ``session`` the sign-in.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders

from provisiond.ui import job_actions, jobs, login, needs, overview, servers, services, services_list
from provisiond.ui.render import page
from provisiond.ui.session import BadCsrf, LoginRequired, login_url

STATIC = Path(__file__).parent / "static"
PAGES = (login, needs, job_actions, jobs, servers, overview, services, services_list)
HEADERS = {
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                                "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def install(app: FastAPI) -> None:
    """Add the console's pages, its static files and its error answers to ``app``."""
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    for module in PAGES:
        app.include_router(module.router, prefix="/ui", include_in_schema=False)

    @app.get("/ui", include_in_schema=False)
    def ui_root():
        return RedirectResponse("/ui/", status_code=307)

    @app.exception_handler(LoginRequired)
    def sign_in_first(request: Request, exc: LoginRequired):
        return RedirectResponse(login_url(exc.next_path), status_code=303)

    @app.exception_handler(BadCsrf)
    def refuse_form(request: Request, exc: BadCsrf):
        return page(request, "error.html", status_code=403, title="Form refused",
                    message="This form did not carry this session's CSRF value, so nothing was done. "
                            "Open the page again and repeat the action.")

    app.add_middleware(ConsoleHeaders)


class ConsoleHeaders:
    """ASGI middleware: the console's answers get ``HEADERS`` (those a page did not set itself).
    Plain ASGI rather than ``@app.middleware("http")``, whose wrapping costs every API request
    about half a millisecond of CPU (bench/console.py); the API's answers pass untouched."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/ui"):
            await self.app(scope, receive, send)
            return

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in HEADERS.items():
                    if name not in headers:
                        headers[name] = value
            await send(message)

        await self.app(scope, receive, with_headers)
