"""Ansible's coloured output as safe HTML for the console, or as plain text.

``to_html`` escapes every piece of text between escape sequences, and turns SGR colour codes (``ESC[0;31m``) into
``<span class="ansi-31 ansi-bold">`` whose classes are in ``ui/static/console.css``; every
other escape sequence, broken or unknown, and every other control character is dropped. The
result is ``markupsafe.Markup`` because it is HTML built only from escaped text.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

# A CSI sequence (ESC [ params intermediates final), an OSC one (ESC ] ... BEL or ESC \),
# a two-character escape, or an ESC with nothing valid after it.
ESCAPE = re.compile(r"\x1b\[([0-?]*)[ -/]*([@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]?")
CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")   # all but tab and newline
FOREGROUND = set(range(30, 38)) | set(range(90, 98))


def strip(text: str | None) -> str:
    """The text without escape sequences or stray control characters (``\\r\\n`` → ``\\n``)."""
    if not text:
        return ""
    return CONTROLS.sub("", ESCAPE.sub("", text.replace("\r\n", "\n")))


def to_html(text: str | None) -> Markup:
    """Escaped text with its colours as ``<span class="ansi-NN [ansi-bold]">``."""
    if not text:
        return Markup("")
    text = text.replace("\r\n", "\n")
    out: list[str] = []
    colour, bold = None, False
    position = 0
    for match in ESCAPE.finditer(text):
        out.append(_span(text[position:match.start()], colour, bold))
        position = match.end()
        if match.group(2) == "m":
            colour, bold = _apply(match.group(1), colour, bold)
    out.append(_span(text[position:], colour, bold))
    return Markup("".join(out))


def _apply(params: str, colour: int | None, bold: bool) -> tuple[int | None, bool]:
    """The colour and boldness after one SGR sequence; codes the stylesheet has no class for
    (backgrounds, 256 colours, underline, ...) change nothing."""
    codes = [int(p) if p.isdigit() else 0 for p in params.split(";")] if params else [0]
    index = 0
    while index < len(codes):
        code = codes[index]
        if code == 0:
            colour, bold = None, False
        elif code == 1:
            bold = True
        elif code == 22:
            bold = False
        elif code == 39:
            colour = None
        elif code in FOREGROUND:
            colour = code
        elif code in (38, 48):   # 38;5;n or 38;2;r;g;b: skip the arguments
            index += 2 if index + 1 < len(codes) and codes[index + 1] == 5 else 4
        index += 1
    return colour, bold


def _span(text: str, colour: int | None, bold: bool) -> str:
    text = str(escape(CONTROLS.sub("", text)))
    classes = ([f"ansi-{colour}"] if colour else []) + (["ansi-bold"] if bold else [])
    if not text or not classes:
        return text
    return f'<span class="{" ".join(classes)}">{text}</span>'
