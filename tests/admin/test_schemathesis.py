"""Property-based testing of the admin API against its own OpenAPI description (schemathesis).

For every operation of ``GET /admin/openapi.json``, schemathesis generates requests from the
description (valid ones, and invalid ones: wrong types, missing fields, bad path parameters),
sends them to the ASGI app with an admin operator's bearer token, and checks every answer: never
a 5xx, a documented status code and content type, and a body that validates against the
response schema. Each operation gets a few examples (``EXAMPLES`` per generation mode,
derandomised so a run is reproducible), which keeps the test well under a minute; the number
of cases tried is printed (``pytest -s``) and checked to be above a floor.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from facegate.admin.service import over_services
from facegate.app import create_app
from facegate.services import Services
from tests.admin.conftest import Tokens

EXAMPLES = 25  # per operation and generation mode
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _summary(exc: BaseException) -> str:
    """The failures schemathesis found in one operation, one line each (the first lines of each
    failure's message: its kind and what was wrong)."""
    parts = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
    lines = []
    for part in parts:
        text = [line.strip() for line in str(part).splitlines() if line.strip()]
        lines.append(" / ".join(text[:3])[:400])
    return "\n  ".join(lines)


def _property(operation: Any, mode: Any, headers: dict[str, str], tried: Counter[str]) -> Any:
    """A Hypothesis test of one operation in one generation mode (counts its cases)."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: report, do not minimise
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        tried[operation.label] += 1
        case.call_and_validate(headers=headers, checks=CHECKS)

    return check


@pytest.mark.slow
def test_every_admin_operation_conforms_to_the_openapi_description(
    services: Services, tokens: Tokens
) -> None:
    schema = schemathesis.openapi.from_asgi("/admin/openapi.json", create_app(services))
    headers = {"Authorization": f"Bearer {tokens.admin}"}
    tried: Counter[str] = Counter()
    failures: list[str] = []
    operations = 0
    # replacing your own token ends the token: that operation gets an operator of its own, so
    # the admin's token stays valid for every other operation
    _, spare = over_services(services).create_operator("spare", "Spare", "admin")
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]  # (an Err raises here)
        operations += 1
        own = {"Authorization": f"Bearer {spare}"}
        for mode in MODES:
            check = _property(
                operation, mode, own if operation.label.endswith("/whoami/token") else headers,
                tried,
            )  # fmt: skip
            try:
                check()
            except (Exception, FailureGroup) as exc:  # collected: every operation is tried
                failures.append(f"{operation.label} ({mode.value}): {_summary(exc)}")
    total = sum(tried.values())
    print(f"\nschemathesis: {total} cases over {len(tried)} admin operations")
    for label, count in sorted(tried.items()):
        print(f"  {count:4d}  {label}")
    assert not failures, "\n\n".join(failures)
    assert len(tried) == operations  # every operation of the description was tried
    assert total >= 10 * len(tried)


def test_a_path_with_a_newline_gets_the_admin_json_404(services: Services, tokens: Tokens) -> None:
    """Found by schemathesis: Starlette's path patterns never match a newline, so such a path
    missed the admin catch-all and got Starlette's text/plain 404."""
    from starlette.testclient import TestClient

    with TestClient(create_app(services)) as client:
        response = client.put(
            "/admin/orgs/a%0Ab/use-cases",
            headers={"Authorization": f"Bearer {tokens.admin}"},
            json={"use_cases": ["x"]},
        )
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert response.json()["code"] == "ResourceNotFoundException"
        assert client.get("/nowhere%0A").headers["content-type"].startswith("text/plain")
