"""Human review end to end: boto3 searches whose results are held, operators who review them
(admin API and CLI), and the caller collecting them with a signed X-Facegate-Review header.

The server runs the packs ``aws-public-safety-terms`` (law-enforcement face comparison: minimum
similarity 99, one human reviewer) and ``eu-ai-act-art5`` (Art. 14(5): every identification by
an EU deployer confirmed by two people, applied from 2026-08-02).
"""

from __future__ import annotations

import io
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError
from cryptography.exceptions import InvalidTag
from PIL import Image as PILImage
from PIL import ImageOps

from facegate.admin.sweeper import sweep_once
from facegate.config import Settings
from facegate.services import _derive
from facegate.store.db import Database
from facegate.store.reviews import CropCipher, ReviewRepository
from facegate.store.store import FaceStore
from facegate.wire.keys import load_master_key
from tests.admin.live import AdminApi, create_operator, error_of, unique, with_header
from tests.e2e.governance import send_headers
from tests.e2e.server import Credentials, LiveServer

pytestmark = pytest.mark.slow  # a live server and its human-review round trips

PACKS = "aws-public-safety-terms,eu-ai-act-art5"
Image = Callable[[str], dict[str, bytes]]


@dataclass
class Reviewers:
    """Two reviewers with their own tokens (``one``, ``two``) and the admin API as each."""

    one: AdminApi
    two: AdminApi
    two_token: str


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(
        tmp_path_factory.mktemp("review") / "data", env={"FACEGATE_POLICY_PACKS": PACKS}
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def admin(live: LiveServer) -> Iterator[AdminApi]:
    with AdminApi(live, create_operator(live, "root", "admin")) as api:
        yield api


@pytest.fixture(scope="module")
def reviewers(live: LiveServer) -> Iterator[Reviewers]:
    two_token = create_operator(live, "rev-two", "reviewer")
    with (
        AdminApi(live, create_operator(live, "rev-one", "reviewer")) as one,
        AdminApi(live, two_token) as two,
    ):
        yield Reviewers(one, two, two_token)


def _collection(live: LiveServer, creds: Credentials, image: Image) -> tuple[Any, str]:
    """A boto3 client for ``creds`` and a new collection with obama, obama2 and biden."""
    rek = live.client(creds)
    collection_id = f"c-{uuid.uuid4().hex[:10]}"
    rek.create_collection(CollectionId=collection_id)
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg"):
        rek.index_faces(CollectionId=collection_id, Image=image(name), ExternalImageId=name)
    return rek, collection_id


def _headers(response: dict[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = response["ResponseMetadata"]["HTTPHeaders"]
    return headers


def _collect(live: LiveServer, creds: Credentials, review_id: str, **params: Any) -> dict[str, Any]:
    """The same search again, with X-Facegate-Review added before signing (so it is signed)."""
    rek = live.client(creds)
    with_header(rek, "SearchFacesByImage", "X-Facegate-Review", review_id)
    result: dict[str, Any] = rek.search_faces_by_image(**params)
    return result


@pytest.fixture(scope="module")
def eu_org(admin: AdminApi) -> Credentials:
    """A German company using face search for access control: an EU deployer."""
    org_id = unique("berlin-access")
    admin.create_org(org_id, sector="commercial", use_cases=["access_control"], country="DE")
    return admin.create_key(org_id)


def test_two_distinct_reviewers_release_an_identification(
    live: LiveServer,
    admin: AdminApi,
    reviewers: Reviewers,
    eu_org: Credentials,
    image: Image,
) -> None:
    rek, collection_id = _collection(live, eu_org, image)
    search = {"CollectionId": collection_id, "Image": image("obama3.jpg")}
    held = rek.search_faces_by_image(**search)
    assert held.get("FaceMatches", []) == []
    assert held["SearchedFaceConfidence"] > 90  # the rest of the response is there
    review_id = _headers(held)["x-facegate-review-id"]
    assert _headers(held)["x-facegate-review-status"] == "pending"

    # the reviewers see what they are asked to verify
    pending = reviewers.one.ok(reviewers.one.get("/reviews", status="pending"))["reviews"]
    assert review_id in [r["review_id"] for r in pending]
    shown = reviewers.one.ok(reviewers.one.get(f"/reviews/{review_id}"))
    assert shown["reviewers_required"] == 2
    assert shown["request"]["collection_id"] == collection_id
    held_names = {c["external_image_id"] for c in shown["held_candidates"]}
    assert "obama.jpg" in held_names
    assert "biden.jpg" not in held_names
    decision = admin.ok(admin.get(f"/decisions/{shown['decision_id']}"))
    assert "eu-ai-act-art5.permit-identification-two-person-verification" in decision["policy_ids"]
    assert decision["review_id"] == review_id

    # collecting while pending: still no candidates
    early = _collect(live, eu_org, review_id, **search)
    assert early.get("FaceMatches", []) == []
    assert _headers(early)["x-facegate-review-status"] == "pending"

    # one confirmation of two is not enough; the same person twice is refused
    note = {"note": "matches the enrolment photo on file"}
    first = reviewers.one.ok(reviewers.one.post(f"/reviews/{review_id}/confirm", note))
    assert first["status"] == "pending"
    assert first["confirmations"] == 1
    again = reviewers.one.post(f"/reviews/{review_id}/confirm", note)
    assert "a second reviewer must be a different person" in error_of(again, 409)
    still = _collect(live, eu_org, review_id, **search)
    assert still.get("FaceMatches", []) == []

    # a second, distinct reviewer (here through the CLI, with their own token) releases it
    out = live.facegate(
        "review",
        "confirm",
        review_id,
        "--note",
        "agree: same person",
        env={"FACEGATE_OPERATOR_TOKEN": reviewers.two_token},
    )
    assert "released (2 of 2 confirmations)" in out
    released = _collect(live, eu_org, review_id, **search)
    assert _headers(released)["x-facegate-review-status"] == "released"
    best = released["FaceMatches"][0]
    assert best["Face"]["ExternalImageId"] in ("obama.jpg", "obama2.jpg")
    assert best["Similarity"] >= 99
    names = [m["Face"]["ExternalImageId"] for m in released["FaceMatches"]]
    assert "biden.jpg" not in names
    votes = reviewers.two.ok(reviewers.two.get(f"/reviews/{review_id}"))["votes"]
    assert [(v["operator_id"], v["verdict"]) for v in votes] == [
        ("rev-one", "confirm"),
        ("rev-two", "confirm"),
    ]
    late = reviewers.two.post(f"/reviews/{review_id}/reject", {"note": "changed my mind"})
    assert "is released" in error_of(late, 409)


def test_a_rejected_review_is_refused_on_collect(
    live: LiveServer, reviewers: Reviewers, eu_org: Credentials, image: Image
) -> None:
    rek, collection_id = _collection(live, eu_org, image)
    search = {"CollectionId": collection_id, "Image": image("obama2.jpg")}
    held = rek.search_faces_by_image(**search)
    review_id = _headers(held)["x-facegate-review-id"]
    rejected = reviewers.two.ok(
        reviewers.two.post(f"/reviews/{review_id}/reject", {"note": "not the person on file"})
    )
    assert rejected["status"] == "rejected"
    assert rejected["held_candidates"] == []  # discarded
    with pytest.raises(ClientError) as info:
        _collect(live, eu_org, review_id, **search)
    error = info.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert f"Review {review_id} was rejected" in error["Message"]


def test_collect_needs_the_same_request(
    live: LiveServer, eu_org: Credentials, image: Image
) -> None:
    rek, collection_id = _collection(live, eu_org, image)
    held = rek.search_faces_by_image(CollectionId=collection_id, Image=image("obama3.jpg"))
    review_id = _headers(held)["x-facegate-review-id"]
    with pytest.raises(ClientError) as info:
        _collect(live, eu_org, review_id, CollectionId=collection_id, Image=image("obama.jpg"))
    assert info.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "send the same request" in info.value.response["Error"]["Message"]


def test_a_search_without_a_match_is_held_too(
    live: LiveServer, reviewers: Reviewers, eu_org: Credentials, image: Image
) -> None:
    """Being held must say nothing about the result: a search the policy subjects to review is
    held whether or not anyone matched, and its pending answer has the same form."""
    rek, collection_id = _collection(live, eu_org, image)
    miss = {
        "CollectionId": collection_id,
        "Image": image("astronaut.png"),
        "FaceMatchThreshold": 99,
    }
    hit = {"CollectionId": collection_id, "Image": image("obama3.jpg"), "FaceMatchThreshold": 99}
    held_miss, held_hit = rek.search_faces_by_image(**miss), rek.search_faces_by_image(**hit)
    for held in (held_miss, held_hit):
        assert _headers(held)["x-facegate-review-status"] == "pending"
        assert held["FaceMatches"] == []
    assert set(held_miss) == set(held_hit)
    miss_id = _headers(held_miss)["x-facegate-review-id"]
    shown = reviewers.one.ok(reviewers.one.get(f"/reviews/{miss_id}"))
    assert shown["held_candidates"] == []  # the reviewers see that nothing matched
    note = {"note": "no match, as expected"}
    reviewers.one.ok(reviewers.one.post(f"/reviews/{miss_id}/confirm", note))
    reviewers.two.ok(reviewers.two.post(f"/reviews/{miss_id}/confirm", note))
    released = _collect(live, eu_org, miss_id, **miss)
    assert _headers(released)["x-facegate-review-status"] == "released"
    assert released["FaceMatches"] == []


def test_a_released_review_is_collected_only_in_its_governance_context(
    live: LiveServer, reviewers: Reviewers, eu_org: Credentials, image: Image
) -> None:
    """The reviewers released the result of a request made for case A; the same request for
    case B (or with another purpose, authorisation...) cannot collect it."""
    rek, collection_id = _collection(live, eu_org, image)
    send_headers(rek, {"X-Facegate-Case": "case-A"})
    search = {"CollectionId": collection_id, "Image": image("obama3.jpg")}
    review_id = _headers(rek.search_faces_by_image(**search))["x-facegate-review-id"]
    note = {"note": "same person"}
    reviewers.one.ok(reviewers.one.post(f"/reviews/{review_id}/confirm", note))
    reviewers.two.ok(reviewers.two.post(f"/reviews/{review_id}/confirm", note))

    def collect(case: str | None) -> dict[str, Any]:
        client = live.client(eu_org)
        if case is not None:
            send_headers(client, {"X-Facegate-Case": case})
        with_header(client, "SearchFacesByImage", "X-Facegate-Review", review_id)
        result: dict[str, Any] = client.search_faces_by_image(**search)
        return result

    for other in ("case-B", None):
        with pytest.raises(ClientError) as info:
            collect(other)
        assert info.value.response["Error"]["Code"] == "InvalidParameterException"
        assert "same governance headers" in info.value.response["Error"]["Message"]
    released = collect("case-A")
    assert _headers(released)["x-facegate-review-status"] == "released"
    assert released["FaceMatches"]


def test_associate_faces_is_held_and_applied_only_when_released(
    live: LiveServer, reviewers: Reviewers, eu_org: Credentials, image: Image
) -> None:
    """AssociateFaces compares faces (it scores each face against the user's) and writes what
    it found: under review nothing is associated, and nothing about the scores is told, until
    the reviewers release it; collecting it then writes the plan they saw, once."""
    rek = live.client(eu_org)
    collection_id = f"c-{uuid.uuid4().hex[:10]}"
    rek.create_collection(CollectionId=collection_id)
    ids = {
        name: rek.index_faces(CollectionId=collection_id, Image=image(name))["FaceRecords"][0][
            "Face"
        ]["FaceId"]
        for name in ("obama.jpg", "obama2.jpg", "biden.jpg")
    }
    rek.create_user(CollectionId=collection_id, UserId="u1")
    request = {"CollectionId": collection_id, "UserId": "u1", "FaceIds": list(ids.values())}
    held = rek.associate_faces(**request)
    assert _headers(held)["x-facegate-review-status"] == "pending"
    assert held["AssociatedFaces"] == []
    assert held["UnsuccessfulFaceAssociations"] == []
    review_id = _headers(held)["x-facegate-review-id"]

    def users() -> dict[str, str | None]:
        faces = rek.list_faces(CollectionId=collection_id)["Faces"]
        return {f["FaceId"]: f.get("UserId") for f in faces}

    assert set(users().values()) == {None}  # nothing written while pending
    shown = reviewers.one.ok(reviewers.one.get(f"/reviews/{review_id}"))
    kinds = {c["face_id"]: c["kind"] for c in shown["held_candidates"]}
    assert kinds[ids["obama.jpg"]] == "association"
    assert kinds[ids["obama2.jpg"]] == "association"
    assert kinds[ids["biden.jpg"]] == "not_associated"
    note = {"note": "the same person"}
    reviewers.one.ok(reviewers.one.post(f"/reviews/{review_id}/confirm", note))
    reviewers.two.ok(reviewers.two.post(f"/reviews/{review_id}/confirm", note))
    assert set(users().values()) == {None}  # released, but applied only when collected

    collector = live.client(eu_org)
    with_header(collector, "AssociateFaces", "X-Facegate-Review", review_id)
    for _ in range(2):  # collecting twice writes once and answers the same
        done = collector.associate_faces(**request)
        assert _headers(done)["x-facegate-review-status"] == "released"
        assert {f["FaceId"] for f in done["AssociatedFaces"]} == {
            ids["obama.jpg"],
            ids["obama2.jpg"],
        }
        [refused] = done["UnsuccessfulFaceAssociations"]
        assert refused["FaceId"] == ids["biden.jpg"]
        assert refused["Reasons"] == ["LOW_MATCH_CONFIDENCE"]
    assert users() == {ids["obama.jpg"]: "u1", ids["obama2.jpg"]: "u1", ids["biden.jpg"]: None}


def test_law_enforcement_needs_one_reviewer_and_99_percent(
    live: LiveServer, admin: AdminApi, reviewers: Reviewers, image: Image, tmp_path: Path
) -> None:
    org_id = unique("nypd")
    admin.create_org(org_id, sector="law_enforcement", use_cases=["missing_persons"], country="US")
    creds = admin.create_key(org_id)
    rek, collection_id = _collection(live, creds, image)
    search = {"CollectionId": collection_id, "Image": image("obama3.jpg"), "FaceMatchThreshold": 50}
    held = rek.search_faces_by_image(**search)
    assert held.get("FaceMatches", []) == []
    review_id = _headers(held)["x-facegate-review-id"]
    shown = reviewers.one.ok(reviewers.one.get(f"/reviews/{review_id}"))
    assert shown["reviewers_required"] == 1
    token_file = tmp_path / "token"
    token_file.write_text(reviewers.two_token)
    out = live.facegate(
        "review", "confirm", review_id, "--note", "verified", "--token-file", str(token_file)
    )
    assert "released (1 of 1 confirmations)" in out
    released = _collect(live, creds, review_id, **search)
    assert released["FaceMatches"]
    # the caller asked for 50; the public-safety terms raised the threshold to 99
    assert all(m["Similarity"] >= 99 for m in released["FaceMatches"])
    assert released["FaceMatches"][0]["Face"]["ExternalImageId"] in ("obama.jpg", "obama2.jpg")


def test_the_log_names_operators_but_holds_no_token_or_secret(
    live: LiveServer, reviewers: Reviewers, eu_org: Credentials
) -> None:
    text = live.log_path.read_text()
    assert "by rev-one: 200" in text  # admin requests are logged with the operator id
    assert "fgop_" not in text
    assert reviewers.two_token not in text
    assert eu_org.secret_access_key not in text


# --- the probe's face crop -------------------------------------------------------------------


def _crop_rows(live: LiveServer, review_id: str) -> list[tuple[bytes, bytes]]:
    """The stored (nonce, ciphertext) rows of a review's crop, read from the server's file."""
    conn = sqlite3.connect(f"file:{live.data_dir / 'facegate.sqlite3'}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT nonce, ciphertext FROM review_crops WHERE review_id = ?", (review_id,)
        ).fetchall()
    finally:
        conn.close()
    return [(bytes(n), bytes(c)) for n, c in rows]


def _decrypt(live: LiveServer, review_id: str, row: tuple[bytes, bytes]) -> bytes:
    key = _derive(load_master_key(live.data_dir, None), "review-crops")
    return CropCipher(key).open(review_id, *row)


def _region(probe: bytes, box: dict[str, float], size: tuple[int, int], margin: float) -> Any:
    """The box (plus margin) of the upright probe, resized to ``size``, as a float array."""
    upright = ImageOps.exif_transpose(PILImage.open(io.BytesIO(probe))).convert("RGB")
    w, h = upright.size
    left, top = box["Left"] * w, box["Top"] * h
    bw, bh = box["Width"] * w, box["Height"] * h
    region = upright.crop(
        (
            max(0, round(left - margin * bw)),
            max(0, round(top - margin * bh)),
            min(w, round(left + bw + margin * bw)),
            min(h, round(top + bh + margin * bh)),
        )
    )
    return np.asarray(region.resize(size), dtype=np.float64)


def test_a_held_search_keeps_one_encrypted_face_crop_until_release(
    live: LiveServer, reviewers: Reviewers, eu_org: Credentials, image: Image
) -> None:
    rek, collection_id = _collection(live, eu_org, image)
    probe = image("obama3.jpg")
    held = rek.search_faces_by_image(CollectionId=collection_id, Image=probe)
    review_id = _headers(held)["x-facegate-review-id"]
    rows = _crop_rows(live, review_id)
    assert len(rows) == 1
    assert b"JFIF" not in rows[0][1]
    assert not rows[0][1].startswith(b"\xff\xd8")
    plain = _decrypt(live, review_id, rows[0])
    crop = PILImage.open(io.BytesIO(plain))
    assert crop.format == "JPEG"
    assert 0 < max(crop.size) <= 256
    box = held["SearchedFaceBoundingBox"]
    # it is the searched face (with its ~20% margin), not some other part of the image
    pixels = np.asarray(crop.convert("RGB"), dtype=np.float64)
    face = np.abs(pixels - _region(probe["Bytes"], box, crop.size, 0.2)).mean()
    corner = {"Left": 0.0, "Top": 0.0, "Width": box["Width"], "Height": box["Height"]}
    elsewhere = np.abs(pixels - _region(probe["Bytes"], corner, crop.size, 0.0)).mean()
    assert face < 12.0, face
    assert elsewhere > 2 * face, (face, elsewhere)
    # bound to its review id: it does not decrypt as another review's crop
    with pytest.raises(InvalidTag):
        _decrypt(live, review_id + "x", rows[0])

    note = {"note": "same person"}
    reviewers.one.ok(reviewers.one.post(f"/reviews/{review_id}/confirm", note))
    assert len(_crop_rows(live, review_id)) == 1  # one of two: still open
    released = reviewers.two.ok(reviewers.two.post(f"/reviews/{review_id}/confirm", note))
    assert released["status"] == "released"
    assert _crop_rows(live, review_id) == []


def test_a_rejected_review_loses_its_crop(
    live: LiveServer, reviewers: Reviewers, eu_org: Credentials, image: Image
) -> None:
    rek, collection_id = _collection(live, eu_org, image)
    held = rek.search_faces_by_image(CollectionId=collection_id, Image=image("obama2.jpg"))
    review_id = _headers(held)["x-facegate-review-id"]
    assert len(_crop_rows(live, review_id)) == 1
    reviewers.one.ok(reviewers.one.post(f"/reviews/{review_id}/reject", {"note": "not them"}))
    assert _crop_rows(live, review_id) == []


def test_an_expired_review_loses_its_crop(
    live: LiveServer, eu_org: Credentials, image: Image
) -> None:
    rek, collection_id = _collection(live, eu_org, image)
    held = rek.search_faces_by_image(CollectionId=collection_id, Image=image("obama3.jpg"))
    review_id = _headers(held)["x-facegate-review-id"]
    assert len(_crop_rows(live, review_id)) == 1
    db = Database(live.data_dir / "facegate.sqlite3")
    try:
        with db.transaction() as conn:  # its deadline passes
            conn.execute(
                "UPDATE reviews SET expires_at = :at WHERE review_id = :r",
                {"at": time.time() - 1.0, "r": review_id},
            )
        store = FaceStore(db, Settings(data_dir=live.data_dir).limits)
        result = sweep_once(store, ReviewRepository(db), time.time())
    finally:
        db.close()
    assert result.expired_reviews >= 1
    assert _crop_rows(live, review_id) == []
