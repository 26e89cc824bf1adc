"""Ansible's coloured output shown in the console: colours as classes, everything else text."""

from __future__ import annotations

import pytest
from markupsafe import Markup

from provisiond import ansi

RED, GREEN, BOLD, RESET = "\x1b[0;31m", "\x1b[0;32m", "\x1b[1m", "\x1b[0m"


def test_colours_become_the_stylesheets_classes():
    html = ansi.to_html(f"{GREEN}ok: [job_1]{RESET}\n{RED}{BOLD}fatal: [job_1]{RESET} done")
    assert isinstance(html, Markup)
    assert html == ('<span class="ansi-32">ok: [job_1]</span>\n'
                    '<span class="ansi-31 ansi-bold">fatal: [job_1]</span> done')


def test_markup_in_the_text_is_escaped_never_passed_through():
    html = ansi.to_html(f'{RED}<script>alert("x")</script>{RESET} & <b onclick=\'y\'>')
    assert "<script" not in html and "<b" not in html
    assert html == ('<span class="ansi-31">&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;</span>'
                    ' &amp; &lt;b onclick=&#39;y&#39;&gt;')
    # Markup inserted into a template stays what it is: nothing in it is unescaped later.
    assert Markup("<pre>{}</pre>").format(html).count("<") == html.count("<") + 2


@pytest.mark.parametrize("text, html", [
    ("\x1b[31", "[31"),                      # a cut sequence: its ESC goes, the rest is text
    ("a\x1bb", "ab"),                         # a lone ESC
    ("\x1b[2Kcleared", "cleared"),           # not a colour: dropped
    ("\x1b]0;title\x07after", "after"),      # an OSC (window title)
    ("\x1b[38;5;196mred256\x1b[0m", "red256"),  # 256 colours: no class for it
    ("\x1b[<script>", "cript&gt;"),          # eaten as a sequence, never turned into markup
    ("\x1b[31m<img src=x>", '<span class="ansi-31">&lt;img src=x&gt;</span>'),
    ("nul\x00bell\x07cr\r\nend", "nulbellcr\nend"),
])
def test_broken_and_unknown_sequences_leave_only_escaped_text(text, html):
    assert ansi.to_html(text) == html
    assert "\x1b" not in ansi.strip(text) and "\x00" not in ansi.strip(text)


def test_unknown_codes_keep_the_colour_and_reset_ends_it():
    html = ansi.to_html("\x1b[31;4mred\x1b[22;39mplain\x1b[94mbright")
    assert html == '<span class="ansi-31">red</span>plain<span class="ansi-94">bright</span>'


def test_strip_gives_plain_text():
    assert ansi.strip(f"{GREEN}ok: [job_1]{RESET}\r\n{RED}x\x1b[K{RESET}\x1b") == "ok: [job_1]\nx"
    assert ansi.strip(None) == "" and ansi.to_html("") == ""
