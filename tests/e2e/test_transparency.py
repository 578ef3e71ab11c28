"""GET /transparency on the live server: public, calibrated table, gate status, policies."""

from __future__ import annotations

import httpx

from facegate.engine.matching import default_matcher
from tests.e2e.server import LiveServer


def test_json_document(server: LiveServer) -> None:
    response = httpx.get(server.endpoint + "/transparency")  # no credentials: public
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    doc = response.json()
    model = doc["model"]
    assert model["model_version"] == "dlib-resnet-v1"
    assert model["similarity_version"] == default_matcher().version
    assert model["calibrated"] is True
    assert model["score"]["kind"] == "cohort-normalised"
    assert model["score"]["cohort"]["smallest_centroid"] >= 20
    rows = {r["similarity_pct"]: r for r in model["table"]}
    assert sorted(rows) == [80.0, 90.0, 95.0, 99.0, 99.9]
    assert rows[99.0]["target_fmr"] == 1e-4
    assert rows[80.0]["distance"] > rows[99.0]["distance"]
    assert set(rows[80.0]["datasets"]) == {"lfw", "fairface_val"}
    held = model["held_out"]  # the leave-one-population-out check of this very mapping
    assert held["similarity_version"] == model["similarity_version"]
    assert set(held["worst_held_out"]) == {"80", "90", "99"}
    gate = doc["deployment_gate"]
    assert gate["audit"] is None
    assert gate["status"]["registered"] is False
    assert doc["policy"]["packs"][0] == "base"
    ids = {p["id"] for p in doc["policy"]["policies"]}
    assert any(i.startswith("amazon-2020-police-moratorium.") for i in ids)
    attributes = doc["attributes"]
    estimated = {a["attribute"]: a for a in attributes["estimated"]}
    assert set(estimated) == {
        "EYES_OPEN", "MOUTH_OPEN", "SMILE", "EYEGLASSES", "SUNGLASSES", "BEARD", "MUSTACHE",
        "FACE_OCCLUDED", "AGE_RANGE", "GENDER",
    }  # fmt: skip
    assert "held-out" in estimated["GENDER"]["measured"]["summary"]
    assert estimated["SMILE"]["member"] == "Smile"
    assert estimated["SMILE"]["measured"]["n"] > 500  # the classifier's held-out people
    assert estimated["EYES_OPEN"]["measured"]["held_out_random"]["faces"] > 50  # geometry
    assert "EMOTIONS" in attributes["not_estimated"]


def test_html_page_for_a_browser(server: LiveServer) -> None:
    response = httpx.get(server.endpoint + "/transparency", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "What a Similarity means" in page
    assert "normalised without demographic labels" in page
    assert "Checked where it was not fitted" in page
    assert default_matcher().version in page
    assert "Facial attributes" in page
    assert "EyesOpen" in page
    assert "<script" not in page
    assert "http://" not in page
    assert "https://" not in page
    forced = httpx.get(
        server.endpoint + "/transparency?format=json", headers={"Accept": "text/html"}
    )
    assert forced.headers["content-type"].startswith("application/json")
