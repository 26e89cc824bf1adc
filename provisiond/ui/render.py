"""The console's templates (``templates/``, Jinja2 with autoescaping on) and the filters they
share. Everything a page shows passes through autoescaping; the one exception is HTML built
here from already-escaped text (``ansi.to_html``), marked safe where it is built."""

from __future__ import annotations

import datetime
import json
from typing import Any
from urllib.parse import quote, unquote

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from provisiond.models import utcnow

env = jinja2.Environment(loader=jinja2.PackageLoader("provisiond.ui", "templates"),
                         autoescape=True, undefined=jinja2.StrictUndefined,
                         trim_blocks=True, lstrip_blocks=True)


def ago(moment: datetime.datetime | None, now: datetime.datetime | None = None) -> str:
    """'3 min ago', '2 h 5 min ago', 'in 40 s' for a naive UTC time; '' for None."""
    if moment is None:
        return ""
    seconds = int(((now or utcnow()) - moment).total_seconds())
    if seconds == 0:
        return "just now"
    text = span(abs(seconds))
    return f"{text} ago" if seconds >= 0 else f"in {text}"


def span(seconds: float | None) -> str:
    """A duration as people read it: '850 ms', '42 s', '3 min 5 s', '2 h 5 min', '3 d 4 h'."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    seconds = int(seconds)
    for size, unit, small, small_unit in ((86400, "d", 3600, "h"), (3600, "h", 60, "min"),
                                          (60, "min", 1, "s")):
        if seconds >= size:
            rest = (seconds % size) // small
            return f"{seconds // size} {unit}" + (f" {rest} {small_unit}" if rest else "")
    return f"{seconds} s"


def iso(moment: datetime.datetime | None) -> str:
    """A naive UTC time as ISO 8601 with its zone, for <time datetime=...> and titles."""
    return "" if moment is None else moment.replace(tzinfo=datetime.timezone.utc).isoformat(timespec="seconds")


def when(moment: datetime.datetime | None) -> str:
    """A naive UTC time as people read it: '2026-11-28 13:05:09 UTC'."""
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def pretty(text: str | None) -> str:
    """JSON pretty-printed where ``text`` is JSON; else the text itself."""
    if text is None:
        return ""
    try:
        return json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False)
    except (ValueError, TypeError):
        return text


def first_line(text: str | None, limit: int = 160) -> str:
    """The first non-empty line of ``text`` (JSON compacted first), cut at ``limit``."""
    if not text:
        return ""
    try:
        text = json.dumps(json.loads(text), sort_keys=True, ensure_ascii=False)
    except (ValueError, TypeError):
        pass
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[:limit - 1] + "…"


env.filters.update(ago=ago, span=span, iso=iso, when=when, pretty=pretty, first_line=first_line)


FLASH = "provisiond_flash"


def page(request: Request, template: str, status_code: int = 200, **values: Any) -> HTMLResponse:
    """``template`` rendered with ``values`` as a page; ``admin`` (the signed-in ``Admin``, for
    the header and the forms' CSRF value) defaults to None. The message an action left for the
    next page (``redirect(flash=...)``) is shown once."""
    values.setdefault("admin", None)
    flash = request.cookies.get(FLASH, "")[:300]
    html = env.get_template(template).render(request=request, path=request.url.path,
                                             flash=unquote(flash), **values)
    response = HTMLResponse(html, status_code=status_code)
    if flash:
        response.delete_cookie(FLASH, path="/ui")
    return response


def redirect(url: str, flash: str = "") -> RedirectResponse:
    """After a form: 303 to ``url``, leaving ``flash`` ('Job 7 queued again') for that page.
    The message travels in a short-lived cookie, never in the address, so a link cannot make
    the console say something it did not."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(FLASH, quote(flash[:300]), max_age=60, path="/ui", httponly=True,
                            samesite="strict")
    return response
