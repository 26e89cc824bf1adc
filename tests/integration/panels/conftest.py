"""The ``adapter`` fixture: one panel's simulator (or sshd) started, registered as a server with
product 'starter'. Parametrised over every panel folder; a panel's own file narrows it with
``pytestmark = pytest.mark.parametrize("adapter", ["<panel>"], indirect=True)``."""

from __future__ import annotations

import pytest

from tests.integration.panels.adapters import all_adapters

ADAPTERS = all_adapters()


@pytest.fixture(params=sorted(ADAPTERS))
def adapter(request, tmp_path, database, registry, vault):
    made = ADAPTERS[request.param](tmp_path)
    with made.start():
        made.register(registry, vault)
        yield made
