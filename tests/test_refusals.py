"""Issue 18 item 11: refusals at authentication are counted in bounded aggregate records.

The counter itself (rows, the bound and its ``other`` row, flushing, a sink that refuses, the
per-address bucket), then the request path in process on both store backends: hundreds of
unauthenticated requests cost a record or two, every one of them is counted (audit verify, the
transparency report, Prometheus), and an address that keeps failing is refused before its
signature is checked or its key looked up.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from facegate.audit.log import iter_entries
from facegate.audit.report import build_report
from facegate.audit.signing_key import read_public_key
from facegate.audit.verify import verify
from facegate.config import Settings
from facegate.pipeline import RawRequest, RawResponse, handle
from facegate.refusals import THROTTLED, RefusalCounter
from facegate.services import Services
from tests.conftest import BACKENDS

# --- the counter ---------------------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.fail = False

    def __call__(self, record: Any) -> None:
        if self.fail:
            raise OSError("the audit log refuses")
        self.records.append(dict(record))


def test_rows_per_address_key_and_reason() -> None:
    sink = Sink()
    counter = RefusalCounter(sink, rate_per_s=0)
    for _ in range(700):
        counter.count("10.0.0.1", "AKIAFAKE", "InvalidSignatureException")
    for _ in range(300):
        counter.count("10.0.0.2", "", "MissingAuthenticationTokenException")
    assert counter.pending() == 1000
    assert counter.flush()
    (record,) = sink.records
    assert record["kind"] == "refusals"
    assert record["total"] == 1000
    rows = [
        (r["client_address"], r["access_key_id"], r["reason"], r["count"]) for r in record["rows"]
    ]
    assert rows == [
        ("10.0.0.1", "AKIAFAKE", "InvalidSignatureException", 700),
        ("10.0.0.2", "", "MissingAuthenticationTokenException", 300),
    ]  # fmt: skip
    assert record["first_at"] <= record["last_at"]
    assert "other" not in record
    assert counter.flush()  # nothing pending: nothing written
    assert len(sink.records) == 1


def test_the_table_is_bounded_and_the_rest_still_counted() -> None:
    sink = Sink()
    counter = RefusalCounter(sink, max_rows=4, rate_per_s=0)
    for n in range(1000):  # 1000 distinct addresses
        counter.count(f"10.0.{n // 256}.{n % 256}", f"AKIA{n:06d}", "UnrecognizedClientException")
    counter.flush()
    (record,) = sink.records
    assert len(record["rows"]) == 4
    assert record["other"]["count"] == 996
    assert record["total"] == 1000
    assert len(json.dumps(record)) < 2000  # bounded, whatever the flood


def test_long_fields_are_cut() -> None:
    sink = Sink()
    counter = RefusalCounter(sink, rate_per_s=0)
    counter.count("a" * 5000, "K" * 5000, "InvalidSignatureException")
    counter.flush()
    row = sink.records[0]["rows"][0]
    assert len(row["client_address"]) == len(row["access_key_id"]) == 64


def test_counts_survive_a_refusing_log() -> None:
    sink = Sink()
    counter = RefusalCounter(sink, rate_per_s=0)
    counter.count("10.0.0.1", "", "IncompleteSignatureException")
    sink.fail = True
    assert not counter.flush()
    counter.count("10.0.0.1", "", "IncompleteSignatureException")
    sink.fail = False
    assert counter.flush()
    assert sink.records[0]["total"] == 2
    assert counter.flush_failures == 1


def test_one_record_per_flush_interval_and_a_lone_refusal_soon() -> None:
    sink = Sink()
    counter = RefusalCounter(sink, flush_s=0.6, settle_s=0.05, rate_per_s=0).start()
    try:
        counter.count("10.0.0.1", "", "InvalidSignatureException")
        deadline = time.monotonic() + 5
        while not sink.records and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(sink.records) == 1  # a lone refusal is on record within about settle_s
        first = time.monotonic()
        while time.monotonic() - first < 0.3:  # a flood right after: held until flush_s
            counter.count("10.0.0.1", "", "InvalidSignatureException")
            time.sleep(0.002)
        assert len(sink.records) == 1
        while len(sink.records) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(sink.records) == 2
    finally:
        counter.close()
    assert sum(r["total"] for r in sink.records) == 1 + sum(r["total"] for r in sink.records[1:])


def test_close_flushes_what_is_left() -> None:
    sink = Sink()
    counter = RefusalCounter(sink, flush_s=3600, settle_s=3600, rate_per_s=0).start()
    counter.count("10.0.0.1", "", "InvalidSignatureException")
    counter.close()
    assert sink.records[0]["total"] == 1


def test_an_address_bucket_is_charged_by_failures_only() -> None:
    counter = RefusalCounter(Sink(), rate_per_s=0.001, burst=3)
    for _ in range(50):
        assert counter.admit("10.0.0.1")  # successes are never charged
    for _ in range(3):
        counter.count("10.0.0.1", "", "InvalidSignatureException")
    assert not counter.admit("10.0.0.1")
    assert counter.admit("10.0.0.2")
    counter.count("10.0.0.1", "", THROTTLED)  # refusals for throttling do not charge again


# --- the request path ----------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def services(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Services]:
    url = request.getfixturevalue("pg_dsn") if request.param == "postgres" else None
    graph = Services.open(
        Settings(
            data_dir=tmp_path / "data",
            engine_workers=1,
            database_url=url,
            refusal_flush_s=3600,  # the test flushes itself
            auth_failure_rps=1.0,
            auth_failure_burst=100,
        ),
        start_engine=False,
    )
    yield graph
    graph.close()


def raw(
    headers: dict[str, str], address: str, body: bytes = b"{}", target: str = "ListCollections"
) -> RawRequest:
    return RawRequest(
        method="POST",
        path="/",
        query="",
        headers={
            "host": "127.0.0.1:8750",
            "content-type": "application/x-amz-json-1.1",
            "x-amz-target": f"RekognitionService.{target}",
            **headers,
        },
        body=body,
        client_address=address,
    )


def signed(key_id: str, secret: str, address: str) -> RawRequest:
    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:8750/",
        data=b"{}",
        headers={
            "Host": "127.0.0.1:8750",
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "RekognitionService.ListCollections",
        },
    )
    SigV4Auth(Credentials(key_id, secret), "rekognition", "us-east-1").add_auth(request)
    prepared = request.prepare()
    return raw({k.lower(): v for k, v in prepared.headers.items()}, address)


def send(services: Services, request: RawRequest) -> RawResponse:
    return asyncio.run(handle(services, request))


def test_unauthenticated_refusals_are_counted_not_recorded_one_by_one(
    services: Services,
) -> None:
    services.registry.ensure_local_org()
    key = services.registry.create_key("local", "research")
    before = len(list(iter_entries(services.settings.audit_dir)))
    codes: dict[str, int] = {}
    sent = 0
    for n in range(60):  # no signature at all
        response = send(services, raw({}, f"192.0.2.{n % 3}"))
        codes[json.loads(response.body)["__type"]] = 1
        sent += 1
    for _ in range(60):  # a real key, a wrong secret
        send(
            services,
            signed(key.access_key_id, "wrong-secret-0000000000000000000000000000", "198.51.100.7"),
        )
        sent += 1
    for n in range(60):  # an unknown key
        send(services, signed(f"AKIAUNKNOWN{n:05d}", "x" * 40, "203.0.113.9"))
        sent += 1
    assert set(codes) == {"MissingAuthenticationTokenException"}
    assert len(list(iter_entries(services.settings.audit_dir))) == before  # nothing yet
    assert services.refusals.pending() == sent
    services.refusals.flush()
    entries = list(iter_entries(services.settings.audit_dir))
    assert len(entries) == before + 1
    record = entries[-1].record
    assert record["kind"] == "refusals"
    assert record["total"] == sent
    by_reason: dict[str, int] = {}
    for row in record["rows"]:
        by_reason[row["reason"]] = by_reason.get(row["reason"], 0) + row["count"]
    assert by_reason == {
        "MissingAuthenticationTokenException": 60,
        "InvalidSignatureException": 60,
        "UnrecognizedClientException": 60,
    }
    wrong = [r for r in record["rows"] if r["reason"] == "InvalidSignatureException"]
    assert wrong == [
        {
            "client_address": "198.51.100.7",
            "access_key_id": key.access_key_id,
            "reason": "InvalidSignatureException",
            "count": 60,
            "first_at": wrong[0]["first_at"],
            "last_at": wrong[0]["last_at"],
        }
    ]
    # an authenticated request still gets its own full record
    assert (
        send(services, signed(key.access_key_id, key.secret_access_key, "198.51.100.7")).status
        == 200
    )
    services.audit.checkpoint()
    audit_dir = services.settings.audit_dir
    result = verify(audit_dir, read_public_key(audit_dir / "public.key"))
    assert result.ok, result.problem
    assert result.refusals == sent
    report = build_report(e.record for e in iter_entries(audit_dir))
    assert report.totals.refused == sent
    assert report.totals.requests == sent + 1
    assert report.integrity.refusals_counted == sent
    assert {c.key: c.count for c in report.errors}["InvalidSignatureException"] == 60
    exposition = services.metrics.exposition().decode()
    assert 'facegate_auth_refusals_total{reason="UnrecognizedClientException"} 60.0' in exposition


def test_an_address_that_keeps_failing_is_refused_before_any_key_lookup(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    services.registry.ensure_local_org()
    key = services.registry.create_key("local", "research")
    lookups = 0
    real = services.keys.secret_for

    def counted(access_key_id: str) -> Any:
        nonlocal lookups
        lookups += 1
        return real(access_key_id)

    monkeypatch.setattr(services.keys, "secret_for", counted)
    codes = []
    for n in range(300):
        response = send(services, signed(f"AKIAGUESS{n:07d}", "x" * 40, "203.0.113.66"))
        codes.append(json.loads(response.body)["__type"])
    assert codes[:100] == ["UnrecognizedClientException"] * 100  # the burst
    assert set(codes[100:]) <= {"ThrottlingException", "UnrecognizedClientException"}
    assert codes.count("ThrottlingException") >= 190
    assert lookups <= 110  # the throttled ones never reached the store
    # another address is not affected; the key's owner elsewhere authenticates fine
    response = send(services, signed(key.access_key_id, key.secret_access_key, "198.51.100.1"))
    assert response.status == 200
    services.refusals.flush()
    totals = sum(
        e.record["total"]
        for e in iter_entries(services.settings.audit_dir)
        if e.record["kind"] == "refusals"
    )
    assert totals == 300


def test_console_sign_in_floods_are_counted_too(services: Services) -> None:
    """The console's sign-in page is reachable without credentials as well: refused form
    tokens and throttled attempts are counted like API refusals; failed sign-ins, bounded by
    the throttle, keep their own records."""
    import re

    import httpx

    from facegate.app import create_app

    async def flood() -> None:
        transport = httpx.ASGITransport(app=create_app(services), client=("192.0.2.50", 4711))
        async with httpx.AsyncClient(transport=transport, base_url="http://facegate") as client:
            for _ in range(50):  # no form token at all
                response = await client.post("/console/login", data={"operator_id": "root"})
                assert response.status_code == 403
            page = await client.get("/console/login")
            for _ in range(30):  # 5 failures for the account, then the throttle
                token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
                assert token is not None
                page = await client.post(
                    "/console/login",
                    data={"csrf_token": token[1], "operator_id": "root", "password": "guess"},
                )

    before = len(list(iter_entries(services.settings.audit_dir)))
    asyncio.run(flood())
    services.refusals.flush()
    added = [e.record for e in iter_entries(services.settings.audit_dir)][before:]
    assert [r["action"] for r in added if r["kind"] == "console"] == ["console.sign_in_failed"] * 5
    # one aggregate record, or a few when the flood outlasted a flush interval (a slow machine)
    counted = [r for r in added if r["kind"] == "refusals"]
    assert 1 <= len(counted) <= 3
    assert sum(r["total"] for r in counted) == 75
    rows: Counter[tuple[str, str]] = Counter()
    for record in counted:
        for row in record["rows"]:
            rows[(row["client_address"], row["reason"])] += row["count"]
    assert rows == {
        ("192.0.2.50", "console.csrf_refused"): 50,
        ("192.0.2.50", "console.sign_in_throttled"): 25,
    }
    report = build_report(e.record for e in iter_entries(services.settings.audit_dir))
    assert report.integrity.refusals_counted == 75
    assert report.totals.refused == 0  # not API requests
