"""A realistic audit stream for the query and report tests, with every expected count written
down by hand (``EXPECTED``), not computed by the code under test.

The reporting period is 2026 Q4, ``[2026-10-01, 2027-01-01)``. In it, 500 requests from three
organisations and unauthenticated callers:

=====  ============  ==================================================  ========================
 n     org           what                                                 outcome
=====  ============  ==================================================  ========================
 60    metro-pd      SearchFacesByImage, investigation                    deny (moratorium)
 10    metro-pd      CompareFaces, investigation, real-time               deny (moratorium + EU)
 40    metro-pd      SearchFacesByImage, missing_persons, court order      allow (4 real-time)
  7    metro-pd      SearchFacesByImage, missing_persons, exigent          allow
  5    findkids      SearchFacesByImage, real-time, no authorisation       deny (EU)
120    findkids      SearchFacesByImage, trafficking / missing persons     allow (20 held)
 50    findkids      IndexFaces                                           allow
  8    shopco        SearchFaces, personalisation                         deny (default: no permit)
 80    shopco        DetectFaces                                          allow
 10    shopco        DetectFaces                                          error (bad image)
 57    shopco        CompareFaces, identity_verification                  allow
  3    shopco        CompareFaces                                         error
 30    shopco        IndexFaces                                           allow
  8    shopco        CreateCollection                                     allow
 12    (none)        bad signature, before any decision                   none
=====  ============  ==================================================  ========================

Around them: reviews of the 20 held results (12 released, 5 rejected, 2 expired, 1 decided after
the period), one result held before the period and released in it, retention deletions,
registry changes, start-ups, checkpoints and a recovery record, and requests just outside the
period on both sides (one exactly at its end, excluded; one of the 500 exactly at its start).
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from facegate.audit.record import EventRecord, RequestRecord, ResultSummary

MORATORIUM = "amazon-2020-police-moratorium.forbid-police-face-comparison"
EU_REALTIME = "eu-ai-act-art5.forbid-realtime-without-authorisation"
SINCE = datetime(2026, 10, 1, tzinfo=UTC).timestamp()
UNTIL = datetime(2027, 1, 1, tzinfo=UTC).timestamp()
DAY = 86400.0
HOUR = 3600.0
SECTORS = {"metro-pd": "law_enforcement", "findkids": "ngo", "shopco": "commercial"}
OPERATORS = ("op-alice", "op-bob", "op-carol")
PRE_HELD = "rev-pre-period-000000"
RETAINED_FACE_IDS = tuple(str(uuid.UUID(int=7 * 10**30 + k, version=4)) for k in range(15))
"""FaceIds deleted by the retention sweeper (the events' ``subject``, never reported)."""


def ts(text: str) -> float:
    """Epoch seconds of an ISO time (UTC)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class Spec:
    """One request before its time is known."""

    org: str
    operation: str
    decision: str
    purpose: str = ""
    policies: tuple[str, ...] = ()
    candidates: int | None = None
    top: float | None = None
    case_ref: str = ""
    authorization_ref: str = ""
    exigent: bool = False
    realtime: bool = False
    error: str = ""
    latency_ms: float = 15.0
    held_at: float | None = None
    review_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _face_ids(n: int, rng: random.Random) -> tuple[str, ...]:
    return tuple(str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n))


def request(spec: Spec, at: float, i: int, rng: random.Random) -> RequestRecord:
    """The record of ``spec`` at ``at``; FaceIds and image hashes are random but reproducible."""
    org = spec.org
    face_ids = _face_ids(min(spec.candidates or 0, 5), rng)
    return RequestRecord(
        at=at,
        request_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        operation=spec.operation,
        decision=spec.decision,
        latency_ms=spec.latency_ms,
        org_id=org,
        sector=SECTORS.get(org, ""),
        access_key_id=f"FGK{org.upper().replace('-', '')}{i % 2}" if org else "",
        use_case=spec.purpose,
        collection_id=f"{org}-gallery" if org and "Search" in spec.operation else "",
        purpose=spec.purpose,
        case_ref=spec.case_ref,
        authorization_ref=spec.authorization_ref,
        authorization_issuer="King County Superior Court" if spec.authorization_ref else "",
        realtime=spec.realtime,
        exigent=spec.exigent,
        decision_id=f"dec-{i:08d}" if spec.decision != "none" else "",
        policy_ids=spec.policies,
        obligations={"min_similarity_pct": 99.0} if org == "metro-pd" else {},
        review_id=spec.review_id,
        error_code=spec.error or ("AccessDeniedException" if spec.decision == "deny" else ""),
        input_sha256=(f"{rng.getrandbits(256):064x}",),
        result=ResultSummary(
            faces_detected=1 if spec.decision == "allow" else None,
            candidates=spec.candidates,
            top_similarity_pct=spec.top,
            face_ids=face_ids,
            held_for_review=spec.held_at is not None,
        ),
    )


def _period_specs() -> list[Spec]:
    """The 500 requests of the table in the module docstring, without times (held ones have
    theirs)."""
    out: list[Spec] = []
    add = out.extend
    add(
        Spec("metro-pd", "SearchFacesByImage", "deny", "investigation", (MORATORIUM,))
        for _ in range(60)
    )
    add(
        Spec(
            "metro-pd",
            "CompareFaces",
            "deny",
            "investigation",
            (MORATORIUM, EU_REALTIME),
            realtime=True,
        )
        for _ in range(10)
    )
    # 40 court-ordered missing-person searches: 10 x 1 candidate at 99.5, 10 x 2 at 96.0,
    # 10 x 4 at 91.0, 10 without candidates; 20 distinct cases; 4 real-time.
    for i in range(40):
        cands, top = [(1, 99.5), (2, 96.0), (4, 91.0), (0, None)][i // 10]
        out.append(
            Spec(
                "metro-pd",
                "SearchFacesByImage",
                "allow",
                "missing_persons",
                (("aws-public-safety-terms.permit-missing-persons"),),
                cands,
                top,
                case_ref=f"MP-2026-{i % 20:03d}",
                authorization_ref=f"CO-{i:04d}",
                realtime=i < 4,
            )
        )
    # 7 exigent searches, 1 candidate at 99.9 each, each its own case.
    add(
        Spec(
            "metro-pd",
            "SearchFacesByImage",
            "allow",
            "missing_persons",
            (),
            1,
            99.9,
            case_ref=f"EX-{i}",
            exigent=True,
        )
        for i in range(7)
    )
    add(
        Spec(
            "findkids",
            "SearchFacesByImage",
            "deny",
            "missing_persons",
            (EU_REALTIME,),
            realtime=True,
        )
        for _ in range(5)
    )
    # findkids: 20 held (3 candidates at 85.0), 60 with 12 candidates at 93.0, 40 without;
    # the first 60 (trafficking) carry 15 distinct case references.
    for i in range(100):
        cands, top = (12, 93.0) if i < 60 else (0, None)
        purpose = "trafficking_victims" if i < 60 else "missing_persons"
        out.append(
            Spec(
                "findkids",
                "SearchFacesByImage",
                "allow",
                purpose,
                (),
                cands,
                top,
                case_ref=f"TV-{i % 15:02d}" if i < 60 else "",
            )
        )
    add(Spec("findkids", "IndexFaces", "allow", "missing_persons") for _ in range(50))
    add(Spec("shopco", "SearchFaces", "deny", "personalisation") for _ in range(8))
    add(
        Spec("shopco", "DetectFaces", "allow", "access_control", latency_ms=20.0 + i % 10)
        for i in range(80)
    )
    add(
        Spec(
            "shopco",
            "DetectFaces",
            "error",
            "access_control",
            error="InvalidImageFormatException",
            latency_ms=5.0,
        )
        for _ in range(10)
    )
    add(
        Spec(
            "shopco",
            "CompareFaces",
            "allow",
            "identity_verification",
            (),
            1 if i < 50 else 0,
            99.2 if i < 50 else None,
        )
        for i in range(57)
    )
    add(
        Spec(
            "shopco",
            "CompareFaces",
            "error",
            "identity_verification",
            error="InvalidParameterException",
        )
        for _ in range(3)
    )
    add(Spec("shopco", "IndexFaces", "allow", "access_control") for _ in range(30))
    add(Spec("shopco", "CreateCollection", "allow", "access_control") for _ in range(8))
    add(Spec("", "-", "none", error="InvalidSignatureException", latency_ms=1.0) for _ in range(12))
    return out


def _held_specs() -> list[Spec]:
    """The 20 held findkids results: 19 held on 5-23 October at 10:00, one on 31 December."""
    out = []
    for j in range(20):
        held_at = ts(f"2026-10-{5 + j:02d}T10:00:00Z") if j < 19 else ts("2026-12-31T20:00:00Z")
        out.append(
            Spec(
                "findkids",
                "SearchFacesByImage",
                "allow",
                "missing_persons",
                (),
                3,
                85.0,
                case_ref="HELD-CASE",
                held_at=held_at,
                review_id=f"rev-{j:020x}",
            )
        )
    return out


def _vote(at: float, review_id: str, verdict: str, status: str, operator: str) -> EventRecord:
    return EventRecord(
        at=at,
        kind="review",
        action=f"review.{verdict}",
        actor=operator,
        subject=review_id,
        org_id="findkids",
        details={"operator": operator, "status": status, "decision_id": "dec-x"},
    )


def _review_events(held: list[tuple[Spec, float]]) -> list[EventRecord]:
    """12 released 2 h after the hold (two confirmations), 5 rejected after 30 min, 2 expired
    (one sweeper event with a count, a day after the later hold), 1 (the last) released on
    1 January, after the period."""
    out: list[EventRecord] = []
    for j, (spec, at) in enumerate(held):
        rid = spec.review_id
        if j < 12:
            out.append(_vote(at + HOUR, rid, "confirm", "pending", OPERATORS[j % 3]))
            out.append(_vote(at + 2 * HOUR, rid, "confirm", "released", OPERATORS[(j + 1) % 3]))
        elif j < 17:
            out.append(_vote(at + 0.5 * HOUR, rid, "reject", "rejected", OPERATORS[0]))
        elif j == 18:  # the sweeper's form: one event with a count, no review ids
            out.append(
                EventRecord(
                    at=at + DAY,
                    kind="review",
                    action="review.expire",
                    actor="sweeper",
                    details={"expired": 2},
                )
            )
        else:  # held 2026-12-31T20:00, decided after the period
            out.append(_vote(ts("2027-01-01T01:00:00Z"), rid, "confirm", "pending", "op-alice"))
            out.append(_vote(ts("2027-01-01T02:00:00Z"), rid, "confirm", "released", "op-bob"))
    return out


def _events() -> list[EventRecord]:
    """Registry, retention, start-up and shutdown events, all inside the period."""
    out: list[EventRecord] = []
    t = ts("2026-10-01T00:00:30Z")
    for k, org in enumerate(SECTORS):
        out.append(
            EventRecord(t + k, "registry", "org.create", "cli", org, org, {"sector": SECTORS[org]})
        )
    for k in range(5):
        org = list(SECTORS)[k % 3]
        out.append(EventRecord(t + 10 + k, "registry", "key.create", "cli", f"FGK{k}", org))
    out.append(
        EventRecord(
            ts("2026-11-15T09:00:00Z"), "registry", "key.revoke", "op-alice", "FGK4", "findkids"
        )
    )
    for k, op in enumerate(OPERATORS):
        out.append(
            EventRecord(
                t + 20 + k, "registry", "operator.create", "cli", op, details={"role": "reviewer"}
            )
        )
    out.append(
        EventRecord(
            ts("2026-10-02T08:00:00Z"),
            "registry",
            "org.use_cases",
            "cli",
            "shopco",
            "shopco",
            {"use_cases": ["access_control"]},
        )
    )
    # retention: 15 single deletions (findkids), one batch of 40 (shopco), 3 x 2 ids (metro-pd)
    for k in range(15):
        out.append(
            EventRecord(
                ts("2026-11-01T03:00:00Z") + k,
                "retention",
                "face.delete",
                "sweeper",
                RETAINED_FACE_IDS[k],
                "findkids",
                {"collection_id": "findkids-gallery", "retain_until": 0.0, "consent_ref": ""},
            )
        )
    out.append(
        EventRecord(
            ts("2026-12-01T03:00:00Z"),
            "retention",
            "face.delete",
            "sweeper",
            "",
            "shopco",
            {"count": 40},
        )
    )
    for k in range(3):
        out.append(
            EventRecord(
                ts("2026-12-02T03:00:00Z") + k,
                "retention",
                "face.delete",
                "sweeper",
                "",
                "metro-pd",
                {"face_ids": [f"f-{k}-a", f"f-{k}-b"]},
            )
        )
    out.append(
        EventRecord(
            ts("2026-10-01T00:00:05Z"),
            "startup",
            "server.start",
            "server",
            details={"packs": ["base", "amazon-2020-police-moratorium"]},
        )
    )
    out.append(EventRecord(ts("2026-11-20T22:00:00Z"), "shutdown", "server.stop", "server"))
    out.append(EventRecord(ts("2026-11-20T22:05:00Z"), "startup", "server.start", "server"))
    return out


def _outside(rng: random.Random) -> list[RequestRecord]:
    """Requests outside the period: 10 in late September (the last a millisecond before the
    start), 10 in January (the first exactly at the end, which is excluded); plus one result
    held on 30 September and released on 1 October."""
    out = []
    for k in range(10):
        at = SINCE - 0.001 - k * HOUR
        out.append(request(Spec("shopco", "DetectFaces", "allow", "access_control"), at, k, rng))
    for k in range(10):
        spec = Spec("metro-pd", "SearchFacesByImage", "deny", "investigation", (MORATORIUM,))
        out.append(request(spec, UNTIL + k * HOUR, k, rng))
    return out


def _pre_period_hold(rng: random.Random) -> tuple[RequestRecord, list[EventRecord]]:
    held_at = ts("2026-09-30T23:00:00Z")
    spec = Spec(
        "findkids",
        "SearchFacesByImage",
        "allow",
        "missing_persons",
        (),
        2,
        88.0,
        held_at=held_at,
        review_id=PRE_HELD,
    )
    votes = [
        _vote(held_at + HOUR, PRE_HELD, "confirm", "pending", "op-bob"),  # 2026-10-01T00:00Z
        _vote(held_at + 2 * HOUR, PRE_HELD, "confirm", "released", "op-carol"),
    ]
    return request(spec, held_at, 9999, rng), votes


def _log_records(t0: float, t1: float, n: int, kind: str) -> list[dict[str, Any]]:
    return [{"kind": kind, "at": t0 + (t1 - t0) * (k + 1) / (n + 1)} for k in range(n)]


def build_stream(*, json_round_trip: bool = True) -> list[dict[str, Any]]:
    """The whole stream in time order, as dicts after a JSON round trip (as read from a log;
    ``json_round_trip=False``: as ``to_json`` returns them, with tuples)."""
    rng = random.Random(20261001)
    grid = _period_specs()
    rng.shuffle(grid)
    step = (UNTIL - SINCE) / len(grid)
    records: list[Any] = [request(s, SINCE + k * step, k, rng) for k, s in enumerate(grid)]
    held = [(s, s.held_at) for s in _held_specs() if s.held_at is not None]
    records += [request(s, at, 1000 + j, rng) for j, (s, at) in enumerate(held)]
    records += _review_events(held)
    records += _events()
    records += _outside(rng)
    pre, votes = _pre_period_hold(rng)
    records += [pre, *votes]
    dicts = [r.to_json() for r in records]
    dicts += _log_records(SINCE - 30 * DAY, UNTIL + 5 * DAY, 4, "checkpoint")
    dicts.append({"kind": "recovery", "at": ts("2026-11-20T22:05:01Z"), "truncated_bytes": 17})
    dicts.sort(key=lambda r: r["at"])
    if not json_round_trip:
        return dicts
    loaded: list[dict[str, Any]] = json.loads(json.dumps(dicts))
    return loaded


def as_entries(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records wrapped as log entries, sequence numbers from 1."""
    return [
        {"seq": k + 1, "prev": f"{k:064x}", "hash": f"{k + 1:064x}", "record": r}
        for k, r in enumerate(records)
    ]


def face_ids_in(records: Iterable[Mapping[str, Any]]) -> set[str]:
    """Every FaceId in the stream: request results and retention subjects."""
    out: set[str] = set(RETAINED_FACE_IDS)
    for r in records:
        if r.get("kind") == "request":
            out.update(r["result"]["face_ids"])
    return out


@dataclass(frozen=True)
class Expected:
    """The counts of the period, by hand from the table in the module docstring."""

    requests: int = 500
    allowed: int = 40 + 7 + 120 + 50 + 80 + 57 + 30 + 8  # 392
    denied: int = 60 + 10 + 5 + 8  # 83
    failed: int = 10 + 3  # 13
    refused: int = 12
    searches_attempted: int = 60 + 10 + 40 + 7 + 5 + 120 + 8 + 57 + 3  # 310
    searches_performed: int = 40 + 7 + 120 + 57  # 224
    with_candidates: int = 30 + 7 + 20 + 60 + 50  # 167
    without_candidates: int = 10 + 40 + 7  # 57
    candidates_returned: int = 10 * 1 + 10 * 2 + 10 * 4 + 7 + 20 * 3 + 60 * 12 + 50  # 907
    with_case_ref: int = 40 + 7 + 60 + 20  # 127
    distinct_cases: int = 20 + 7 + 15 + 1  # 43
    faces_deleted: int = 15 + 40 + 6


EXPECTED = Expected()
