"""A search of one or two characters (no trigram, so a scan): its page is right, its total is
exact up to ``listing.COUNTED`` matches and said to be "more than" past it, never a guess; paging
goes on to the last match. The bound is made small here so a dozen services cross it."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from provisiond import api, listing, tokens
from provisiond.ui import services_list
from tests.helpers import add_services

SITES = [(f"S-{n}", f"site{n}.example.com", "active") for n in range(1, 13)]


@pytest.fixture
def twelve(cpanel_setup, vault, monkeypatch):
    """Twelve services site1..site12 (S-12 the newest); at most 5 matches counted."""
    server, product = cpanel_setup
    add_services(vault, product, server, SITES)
    monkeypatch.setattr(listing, "COUNTED", 5)


@pytest.fixture
def billing(twelve, settings, vault):
    with TestClient(api.create_app(settings, vault),
                    headers={"Authorization": f"Bearer {tokens.create('shop')}"}) as client:
        yield client


def page(client, query: str) -> tuple[list[str], int | None, bool]:
    answer = client.get(f"/v1/services?{query}")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return [s["ref"] for s in body["services"]], body["total"], body["more"]


def test_api_short_search_counts_up_to_the_bound_and_pages_on(billing):
    # 12 match "SI" (any case), more than 5: not counted, said so, and the pages go on
    assert page(billing, "q=SI&limit=3") == (["S-12", "S-11", "S-10"], None, True)
    assert page(billing, "q=si&limit=3&offset=6") == (["S-6", "S-5", "S-4"], None, True)
    # the last page: nothing after it, so its total is exact however many there were
    assert page(billing, "q=si&limit=3&offset=9") == (["S-3", "S-2", "S-1"], 12, False)
    assert page(billing, "q=si&limit=3&offset=30") == ([], 12, False)
    assert page(billing, "q=si&limit=20") == ([f"S-{n}" for n in range(12, 0, -1)], 12, False)
    # fewer matches than the bound: exact on every page ("1": S-1, S-10, S-11, S-12)
    assert page(billing, "q=1&limit=2") == (["S-12", "S-11"], 4, True)
    assert page(billing, "q=1&limit=2&offset=2") == (["S-10", "S-1"], 4, False)
    assert page(billing, "q=zq&limit=2") == ([], 0, False)
    # three characters or more: counted in full as before
    assert page(billing, "q=sit&limit=3") == (["S-12", "S-11", "S-10"], 12, True)


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-ref="([^"]+)">', html)


def test_console_says_more_than_and_pages_to_the_end(twelve, console, monkeypatch):
    monkeypatch.setattr(services_list, "PAGE_SIZE", 3)
    first = console.get("/ui/services?q=si")
    assert first.status_code == 200 and rows(first.text) == ["S-12", "S-11", "S-10"]
    count = re.search(r'<p class="muted" id="services-count">([^<]*)</p>', first.text).group(1)
    assert count.startswith("More than 5 services") and count.endswith("page 1")
    assert re.search(r'<a rel="next" href="/ui/services\?q=si&amp;page=2"', first.text)
    last = console.get("/ui/services?q=si&page=4")
    assert rows(last.text) == ["S-3", "S-2", "S-1"] and 'rel="next"' not in last.text
    assert "12 services; page 4 of 4" in last.text and "More than" not in last.text
    few = console.get("/ui/services?q=1")
    assert rows(few.text) == ["S-12", "S-11", "S-10"] and "4 services; page 1 of 2" in few.text
