"""Audit records: what is written for every request and every governance event.

A record is plain data with a fixed set of fields per ``kind``; it holds ids, names, counts,
policy ids, hashes and numbers, never images, descriptors or secrets. ``to_json`` gives the
record's fields as a JSON-ready dict; the chain (``audit.chain``) wraps it with its sequence
number and hashes and serialises it canonically.

Kinds:

* ``request``: one per Rekognition API request that reached the server, allowed, denied or failed
  (also requests refused before a decision, e.g. a bad signature: principal fields empty).
* ``review``: an operator's vote on a held result (and the resulting status).
* ``registry``: an organisation, key or operator created, changed, revoked or disabled.
* ``retention``: a face deleted because its retention deadline passed.
* ``startup`` / ``shutdown``: the server started (with its policy packs and the hash of the
  active policy set) or stopped.
* ``checkpoint``: written by the chain itself (signed); not built by callers.
* ``console``: the operator console: sign-ins (failed and throttled ones too), sign-outs,
  refused CSRF tokens and pages a role may not open, simulations, verifications, reports.
* ``intent``: written (and fsynced) before an allowed request first changes the store, with the
  request's id, operation, organisation, key, collection, decision and input hashes nested
  under ``request`` (so searches by those fields find the request record, not the intent); the
  request's own ``request`` record follows when it ends. An intent without its request record
  is a change that may have happened without its outcome recorded (a crash, or the log refusing
  the second append): ``audit verify`` and the report count them.
* ``refusals``: requests refused at authentication (no or bad signature, unknown key, stale
  date, or an address over its unauthenticated-refusal rate) are counted, not recorded one by
  one: one record per flush gives, per (client address, key claimed, reason), the count and the
  first and last time; ``total`` is the exact number of refusals it covers (rows beyond the
  table's bound are summed in ``other``).
* ``integrity``: the server's findings about its own files: ``audit.tamper_suspected`` (the
  log's tail failed verification at start and the operator told the server to continue),
  ``datadir.permissions_fixed`` (files of the data directory were readable by group or others).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

KINDS = (
    "request", "review", "registry", "retention", "startup", "shutdown", "checkpoint", "console",
    "intent", "refusals", "integrity",
)  # fmt: skip
INTENT = "intent"
REFUSALS = "refusals"
INTEGRITY = "integrity"
DECISIONS = ("allow", "deny", "error", "none")
"""``none``: refused before any policy decision (authentication, validation)."""


@dataclass(frozen=True)
class ResultSummary:
    """What a response carried, never the biometrics: counts, the top similarity, FaceIds."""

    faces_detected: int | None = None
    faces_indexed: int | None = None
    candidates: int | None = None
    top_similarity_pct: float | None = None
    face_ids: tuple[str, ...] = ()
    held_for_review: bool = False
    # 1:N searches: the collection's size x the per-pair false match rate at the threshold used
    expected_false_candidates: float | None = None
    # a threshold an obligation raised (e.g. the bound on expected false candidates): the
    # threshold used, and the one the request asked for (its parameter or the default)
    threshold_raised_to: float | None = None
    threshold_requested_pct: float | None = None
    # how expected_false_candidates was estimated: "tail" (the larger of the calibrated
    # per-pair rate x N and the probe's own score tail, engine/tail.py; the tail's own number
    # beside it) or "calibrated" (the collection was too small for a tail fit); "" otherwise
    false_candidate_estimate: str = ""
    expected_false_candidates_tail: float | None = None
    expected_false_candidates_calibrated: float | None = None
    # DetectFaces / IndexFaces: the facial attributes the answer carries for at least one face
    # (names such as "SMILE", never their values)
    attributes_inferred: tuple[str, ...] = ()
    # the descriptor model whose vectors the request used (the collection's FaceModelVersion;
    # the server's default for CompareFaces) and the Similarity version of its numbers
    face_model_version: str = ""
    similarity_version: str = ""
    # the promise curve whose per-pair rate the expected false candidates and the size-aware
    # threshold used (engine/promise.py; "" where the nominal scale was the promise)
    promise_version: str = ""


@dataclass(frozen=True)
class RequestRecord:
    """One Rekognition API request. Times are epoch seconds (UTC); ``latency_ms`` is the
    server's time from receipt to response; ``input_sha256`` lists the SHA-256 of each input
    image (Image, SourceImage, TargetImage), never the bytes; ``client_address`` is the caller's
    IP address (the TCP peer, or what a trusted proxy forwarded: ``facegate.wire.peers``)."""

    at: float
    request_id: str
    operation: str
    decision: str
    latency_ms: float
    org_id: str = ""
    sector: str = ""
    access_key_id: str = ""
    use_case: str = ""
    collection_id: str = ""
    purpose: str = ""
    case_ref: str = ""
    authorization_ref: str = ""
    authorization_issuer: str = ""
    realtime: bool = False
    exigent: bool = False
    decision_id: str = ""
    policy_ids: tuple[str, ...] = ()
    obligations: dict[str, Any] = field(default_factory=dict)
    review_id: str = ""
    error_code: str = ""
    input_sha256: tuple[str, ...] = ()
    result: ResultSummary = field(default_factory=ResultSummary)
    client_address: str = ""
    # DetectFaces / IndexFaces: the facial attributes asked for (ALL expanded) and those a
    # policy obligation dropped before inference (names only; what was inferred is in result)
    attributes_requested: tuple[str, ...] = ()
    attributes_dropped: tuple[str, ...] = ()

    kind = "request"

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class EventRecord:
    """A governance event (``review``, ``registry``, ``retention``, ``startup``,
    ``shutdown``): who (``actor``: an operator id, ``cli``, ``server`` or ``sweeper``) did what
    (``action``, e.g. ``key.create``, ``review.confirm``, ``face.delete``) to what
    (``subject``: an id), with a few named details (ids, counts, policy hashes: no secrets)."""

    at: float
    kind: str
    action: str
    actor: str
    subject: str = ""
    org_id: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


EventSink = Callable[[EventRecord], None]
"""Where event records go: the server's audit chain, or the outbox for commands run beside it.
A sink raises when it cannot record (the change is then reported as failed)."""
