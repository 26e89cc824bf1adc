"""The ``adapter`` fixture: one panel's simulator (or sshd) started, registered as a server with
product 'starter'. Parametrised over every panel folder; a panel's own file narrows it with
``pytestmark = pytest.mark.parametrize("adapter", ["<panel>"], indirect=True)``.

The panel's wire is the subject here, not the store: these tests run on SQLite, the default
store. Every panel's whole lifecycle also runs on PostgreSQL (test_conformance asks for both),
and the core's own tests run every path of the store on both. That keeps each panel's
PostgreSQL proof and leaves out about a hundred runs that proved nothing more."""

from __future__ import annotations

import pytest

from tests.conftest import empty_database
from tests.integration.panels.adapters import all_adapters

ADAPTERS = all_adapters()


@pytest.fixture(params=["sqlite"])
def database_url(request, tmp_path):
    return empty_database(request, tmp_path, request.param)


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request, tmp_path, database, registry, vault):
    made = ADAPTERS[request.param](tmp_path)
    with made.start():
        made.register(registry, vault)
        yield made
