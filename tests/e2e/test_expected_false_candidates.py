"""Every 1:N search reports how many false candidates its collection's size leads to expect:
collection size x the calibrated per-pair false match rate at the threshold used, in the
x-facegate-expected-false-candidates header and the audit record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.e2e.server import LiveServer, audit_record


def test_search_reports_expected_false_candidates(
    server: LiveServer, rek: Any, image: Callable[[str], dict[str, bytes]]
) -> None:
    rek.create_collection(CollectionId="efc")
    for name in ("biden.jpg", "obama.jpg", "two_people.jpg"):
        rek.index_faces(CollectionId="efc", Image=image(name))
    faces = rek.describe_collection(CollectionId="efc")["FaceCount"]
    assert faces >= 3
    for threshold, per_pair in ((80.0, 1e-2), (99.0, 1e-4)):
        response = rek.search_faces_by_image(
            CollectionId="efc", Image=image("obama2.jpg"), FaceMatchThreshold=threshold
        )
        headers = response["ResponseMetadata"]["HTTPHeaders"]
        expected = float(headers["x-facegate-expected-false-candidates"])
        assert expected == pytest.approx(faces * per_pair)
        record = audit_record(server, headers["x-facegate-decision-id"])
        assert record["result"]["expected_false_candidates"] == pytest.approx(faces * per_pair)
    detect = rek.detect_faces(Image=image("obama.jpg"))
    assert "x-facegate-expected-false-candidates" not in detect["ResponseMetadata"]["HTTPHeaders"]
    rek.delete_collection(CollectionId="efc")
