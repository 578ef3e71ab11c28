"""Prometheus metrics, in a registry owned by the service graph (no process-global registry)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class Metrics:
    registry: CollectorRegistry
    requests: Counter
    latency: Histogram
    faces_indexed: Counter
    retention_deletions: Counter
    reviews_expired: Counter
    body_refusals: Counter
    body_bytes_reading: Gauge
    auth_refusals: Counter
    attributes: Counter

    @classmethod
    def create(cls) -> Metrics:
        registry = CollectorRegistry()
        return cls(
            registry=registry,
            requests=Counter(
                "facegate_requests",
                "Rekognition API requests by operation and outcome code",
                ["operation", "code"],
                registry=registry,
            ),
            latency=Histogram(
                "facegate_request_seconds",
                "Request latency by operation",
                ["operation"],
                buckets=LATENCY_BUCKETS_S,
                registry=registry,
            ),
            faces_indexed=Counter(
                "facegate_faces_indexed", "Faces stored by IndexFaces", registry=registry
            ),
            retention_deletions=Counter(
                "facegate_retention_deletions",
                "Faces deleted by the sweeper because their retention deadline passed",
                registry=registry,
            ),
            reviews_expired=Counter(
                "facegate_reviews_expired",
                "Reviews that expired pending; their held results were discarded",
                registry=registry,
            ),
            body_refusals=Counter(
                "facegate_body_refusals",
                "Request bodies refused while arriving: timeout, server or client (the body "
                "budget), size",
                ["reason"],
                registry=registry,
            ),
            body_bytes_reading=Gauge(
                "facegate_body_bytes_reading",
                "Bytes of request bodies being read now, as reserved in the body budget",
                registry=registry,
            ),
            auth_refusals=Counter(
                "facegate_auth_refusals",
                "Requests refused at authentication (or before it, for an address over its "
                "failure rate), by reason; counted in aggregate audit records",
                ["reason"],
                registry=registry,
            ),
            attributes=Counter(
                "facegate_face_attributes",
                "Facial attributes asked for by DetectFaces/IndexFaces, by what became of them: "
                "inferred (returned), dropped (by a policy obligation, before inference), "
                "not_estimated (asked for, faces found, but no estimate: not available in this "
                "server, or no face allowed one)",
                ["attribute", "outcome"],
                registry=registry,
            ),
        )

    def exposition(self) -> bytes:
        """The text exposition format for ``GET /metrics``."""
        return generate_latest(self.registry)
