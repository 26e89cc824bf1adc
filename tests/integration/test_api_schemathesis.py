"""Property-based run of the HTTP API against its own OpenAPI document: no answer is a 5xx.

Schemathesis generates requests for every operation from /openapi.json (valid and invalid
bodies, paths and queries) and sends them to the app with a valid bearer token. SQLite only:
the PostgreSQL-specific failure modes (NUL bytes, integer ranges) are kept out at the door
and checked by the API tests on both databases.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings as hypothesis_settings
from schemathesis.checks import not_a_server_error

from provisiond import api, health, tokens
from provisiond.models import utcnow


@pytest.fixture
def database_url(tmp_path):
    return f"sqlite:///{tmp_path / 'provisiond.db'}"


@pytest.fixture
def token(cpanel_setup):
    return tokens.create("schemathesis", scope="admin")  # every operation, admin ones included


@pytest.fixture
def api_schema(cpanel_setup, settings, vault):
    health.beat("a-daemon", utcnow())  # a daemon works the queue: /v1/health answers 200, not 503
    return schemathesis.openapi.from_asgi("/openapi.json", api.create_app(settings, vault))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hypothesis_settings(max_examples=25, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                            HealthCheck.function_scoped_fixture])
def test_no_operation_answers_with_a_server_error(case, token):
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                           checks=[not_a_server_error])
