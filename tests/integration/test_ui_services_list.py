"""The console's services list: signed-in only, search by part of a domain, status and server
filters, pages of 50 with previous/next, and never a secret."""

from __future__ import annotations

import re

from tests.conftest import WHM_TOKEN
from tests.helpers import add_services


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-ref="([^"]+)">', html)


def test_the_list_needs_a_session(database, settings, vault):
    from fastapi.testclient import TestClient
    from provisiond import api
    with TestClient(api.create_app(settings, vault), follow_redirects=False) as client:
        answer = client.get("/ui/services?q=shop")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/ui/login?next=%2Fui%2Fservices%3Fq%3Dshop"


def test_search_by_domain_filters_and_no_secret(console, cpanel_setup, vault):
    server, product = cpanel_setup
    add_services(vault, product, server, [("INV-1", "alpha.example.com", "active"),
                                          ("INV-2", "Shop.Example.org", "suspended"),
                                          ("INV-3", "bakery.example.net", "active")])
    page = console.get("/ui/services?q=shop.example")
    assert page.status_code == 200 and rows(page.text) == ["INV-2"]
    row = re.search(r'<tr data-ref="INV-2">(.*?)</tr>', page.text, re.S).group(1)
    assert '<a href="/ui/services/INV-2">INV-2</a>' in row and "Shop.Example.org" in row
    assert "user2" in row and "whm1" in row and "starter" in row and "2026-12-03" in row
    assert '<span class="badge suspended">suspended</span>' in row
    assert 'value="shop.example"' in page.text  # the search box keeps what was typed
    assert rows(console.get("/ui/services?status=active").text) == ["INV-3", "INV-1"]
    narrowed = console.get("/ui/services?server=whm1&status=suspended").text
    assert rows(narrowed) == ["INV-2"]  # and the selects show what was chosen
    assert '<option value="suspended" selected>' in narrowed and '<option value="whm1" selected>' in narrowed
    every = console.get("/ui/services").text
    for secret in [WHM_TOKEN, console.token, *(f"canary-INV-{n}-pw" for n in (1, 2, 3))]:
        assert secret not in every
    refused = console.get("/ui/services?server=nowhere")
    assert refused.status_code == 422 and "server: no server has this name" in refused.text
    assert rows(refused.text) == []


def test_pages_of_fifty_with_previous_and_next(console, cpanel_setup, vault):
    server, product = cpanel_setup
    add_services(vault, product, server, [(f"S-{n}", f"site{n}.example.com", "active") for n in range(1, 121)])
    first = console.get("/ui/services?q=example.com")
    assert rows(first.text) == [f"S-{n}" for n in range(120, 70, -1)]
    assert "120 services; page 1 of 3" in first.text and 'rel="prev"' not in first.text
    next_url = re.search(r'<a rel="next" href="([^"]+)"', first.text).group(1).replace("&amp;", "&")
    assert next_url == "/ui/services?q=example.com&page=2"
    second = console.get(next_url)
    assert rows(second.text) == [f"S-{n}" for n in range(70, 20, -1)]
    last = console.get("/ui/services?q=example.com&page=3")
    assert rows(last.text) == [f"S-{n}" for n in range(20, 0, -1)] and 'rel="next"' not in last.text
    assert re.search(r'<a rel="prev" href="/ui/services\?q=example.com&amp;page=2"', last.text)
