"""The ASGI app in process (``facegate.app.create_app`` over a real service graph, through
Starlette's test client, lifespan included): its routes and what each answers, step 1 of the
request path (the bounded body, before the pipeline), and the Rekognition endpoint end to end
with a SigV4-signed request as boto3 signs it."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from facegate.app import create_app
from facegate.audit.log import iter_entries
from facegate.config import Settings
from facegate.pipeline import RawRequest
from facegate.services import Services
from facegate.wire import protocol
from tests.signed import local_key, signed_request

with warnings.catch_warnings():
    # Starlette 1.x warns at import that its test client prefers httpx2; httpx is what we have.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient

MAX_BODY = 64 * 1024


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    graph = Services.open(
        Settings(data_dir=tmp_path / "data", engine_workers=1, max_body_bytes=MAX_BODY),
        start_engine=False,
    )
    yield graph
    graph.close()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services), base_url="http://127.0.0.1:8750") as test_client:
        yield test_client


def _post(client: TestClient, request: RawRequest) -> Any:
    return client.post("/", content=request.body, headers=request.headers)


def _events(services: Services) -> list[str]:
    return [
        e.record["action"]
        for e in iter_entries(services.settings.audit_dir)
        if e.record["kind"] in ("startup", "shutdown")
    ]


def test_the_routes(services: Services) -> None:
    app = create_app(services)
    paths = {getattr(route, "path", None) for route in app.routes}
    assert paths == {"/", "/healthz", "/metrics", "/transparency", "/admin", "/console"}


def test_the_lifespan_records_start_and_stop(services: Services) -> None:
    with TestClient(create_app(services)):
        assert _events(services)[-1] == "server.start"
    assert _events(services)[-2:] == ["server.start", "server.stop"]
    assert not services._closed  # the caller owns the graph unless close_on_shutdown


def test_a_signed_request_is_answered_and_recorded(client: TestClient, services: Services) -> None:
    response = _post(client, signed_request(local_key(services), "ListCollections", {}))
    assert response.status_code == 200
    assert response.headers["content-type"] == protocol.CONTENT_TYPE
    assert response.json()["CollectionIds"] == []
    request_id = response.headers["x-amzn-RequestId"]
    recorded = [
        e.record["request_id"]
        for e in iter_entries(services.settings.audit_dir)
        if e.record["kind"] == "request"
    ]
    assert recorded == [request_id]


def test_errors_are_modelled_in_rekognition_s_content_type(
    client: TestClient, services: Services
) -> None:
    unsigned = client.post(
        "/",
        content=b"{}",
        headers={
            "content-type": protocol.CONTENT_TYPE,
            "x-amz-target": "RekognitionService.ListCollections",
        },
    )
    assert unsigned.status_code == 403
    assert unsigned.headers["content-type"] == protocol.CONTENT_TYPE
    assert unsigned.json()["__type"] == "MissingAuthenticationTokenException"
    bad_json = _post(client, signed_request(local_key(services), "ListCollections", b"[1, 2"))
    assert bad_json.status_code == 400
    assert bad_json.headers["content-type"] == protocol.CONTENT_TYPE
    assert bad_json.json()["__type"] == "SerializationException"


def test_1_a_body_over_the_limit_is_refused_before_the_pipeline(
    client: TestClient, services: Services
) -> None:
    body = b'{"CollectionId": "' + b"x" * MAX_BODY + b'"}'
    response = _post(client, signed_request(local_key(services), "CreateCollection", body))
    assert response.status_code == 413
    assert response.headers["content-type"] == protocol.CONTENT_TYPE
    assert response.headers["connection"] == "close"
    assert response.json()["__type"] == "RequestEntityTooLargeException"
    # refused before the pipeline: no request record, no collection
    assert not [
        e for e in iter_entries(services.settings.audit_dir) if e.record["kind"] == "request"
    ]
    assert services.store.list_collections(0, 10) == []


def test_only_post_is_served_at_the_root(client: TestClient) -> None:
    assert client.get("/").status_code == 405


def test_health(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_metrics_count_the_requests_answered(client: TestClient, services: Services) -> None:
    _post(client, signed_request(local_key(services), "ListCollections", {}))
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert 'operation="ListCollections"' in response.text


def test_transparency_as_json_or_html(client: TestClient) -> None:
    as_json = client.get("/transparency")
    assert as_json.status_code == 200
    assert as_json.headers["content-type"] == "application/json"
    assert {"model", "deployment_gate", "policy"} <= set(as_json.json())
    as_html = client.get("/transparency", headers={"accept": "text/html"})
    assert as_html.headers["content-type"].startswith("text/html")
    # the same page either way, but for the instant it was generated at (ISO 8601, seconds)
    stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
    by_query = client.get("/transparency?format=html").text
    assert "<html" in as_html.text
    assert stamp.sub("T", by_query) == stamp.sub("T", as_html.text)


def test_the_admin_mount(client: TestClient) -> None:
    openapi = client.get("/admin/openapi.json")  # the one endpoint without a token
    assert openapi.status_code == 200
    assert openapi.json()["openapi"].startswith("3.")
    assert client.get("/admin/orgs").status_code == 401  # every other endpoint needs one
    missing = client.get("/admin/no-such-endpoint")
    assert missing.status_code == 404
    assert missing.json()["code"] == "ResourceNotFoundException"
    # a path no route pattern matches (a newline) is still the admin API's 404
    assert client.get("/admin/orgs/a%0A/x").json()["code"] == "ResourceNotFoundException"


def test_the_console_mount(client: TestClient) -> None:
    login = client.get("/console/login")
    assert login.status_code == 200
    assert login.headers["content-type"].startswith("text/html")
    home = client.get("/console/", follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (303, "/console/overview")
    page = client.get("/console/overview", follow_redirects=False)  # signed in only
    assert (page.status_code, page.headers["location"]) == (
        303,
        "/console/login?next=/console/overview",
    )


def test_an_unknown_path_is_not_found(client: TestClient) -> None:
    response = client.get("/nowhere")
    assert (response.status_code, response.text) == (404, "Not Found")
