"""Negative tests: each asserts the error Code and Message boto3 sees."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest
from botocore.exceptions import ClientError

from facegate.cli import main
from tests.e2e.server import Credentials, LiveServer
from tests.e2e.test_collections_faces import error_of, new_id

Image = Callable[[str], dict[str, bytes]]


def test_bad_collection_id_pattern(rek: Any) -> None:
    with pytest.raises(rek.exceptions.InvalidParameterException) as info:
        rek.create_collection(CollectionId="bad/id")
    code, message = error_of(info)
    assert code == "InvalidParameterException"
    assert "CollectionId" in message


def test_missing_collection(rek: Any, image: Image) -> None:
    with pytest.raises(rek.exceptions.ResourceNotFoundException) as info:
        rek.index_faces(CollectionId=new_id("missing"), Image=image("obama.jpg"))
    assert "does not exist" in error_of(info)[1]


def test_non_image_bytes(rek: Any) -> None:
    with pytest.raises(rek.exceptions.InvalidImageFormatException) as info:
        rek.detect_faces(Image={"Bytes": b"this is not an image"})
    assert "JPEG or PNG" in error_of(info)[1]


def test_oversized_image(rek: Any) -> None:
    with pytest.raises(ClientError) as info:
        rek.detect_faces(Image={"Bytes": b"\xff\xd8\xff" + b"\0" * (5 * 1024 * 1024)})
    code, _ = error_of(info)
    assert code in {"ImageTooLargeException", "InvalidParameterException"}
    assert code == "ImageTooLargeException"


def test_no_face_in_search_image(rek: Any, image: Image) -> None:
    cid = new_id()
    rek.create_collection(CollectionId=cid)
    with pytest.raises(rek.exceptions.InvalidParameterException) as info:
        rek.search_faces_by_image(CollectionId=cid, Image=image("coffee.png"))
    assert "no faces" in error_of(info)[1]
    with pytest.raises(rek.exceptions.InvalidParameterException):
        rek.compare_faces(SourceImage=image("coffee.png"), TargetImage=image("obama.jpg"))


def test_threshold_out_of_range(rek: Any, image: Image) -> None:
    with pytest.raises(rek.exceptions.InvalidParameterException) as info:
        rek.compare_faces(
            SourceImage=image("obama.jpg"), TargetImage=image("obama2.jpg"), SimilarityThreshold=101
        )
    assert "SimilarityThreshold" in error_of(info)[1]


def test_s3_object_is_refused_clearly(rek: Any) -> None:
    with pytest.raises(ClientError) as info:
        rek.detect_faces(Image={"S3Object": {"Bucket": "bucket", "Name": "photo.jpg"}})
    code, message = error_of(info)
    assert code == "InvalidS3ObjectException"
    assert "Bytes" in message


def test_bad_signature(server: LiveServer) -> None:
    good = server.credentials()
    rek = server.client(Credentials(good.access_key_id, "wrong-secret-" + "x" * 27))
    with pytest.raises(ClientError) as info:
        rek.list_collections()
    code, message = error_of(info)
    assert code == "InvalidSignatureException"
    assert "signature" in message.lower()


def test_unknown_key(server: LiveServer) -> None:
    rek = server.client(Credentials("FGAKUNKNOWNUNKNOWN12", "s" * 40))
    with pytest.raises(ClientError) as info:
        rek.list_collections()
    assert error_of(info)[0] == "UnrecognizedClientException"


def test_expired_date(server: LiveServer) -> None:
    rek = server.client()
    stale = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=20)
    with (
        mock.patch("botocore.auth.get_current_datetime", return_value=stale),
        pytest.raises(ClientError) as info,
    ):
        rek.list_collections()
    code, message = error_of(info)
    assert code == "InvalidSignatureException"
    assert "Signature expired" in message


def test_revoked_key_is_refused(server: LiveServer) -> None:

    out = io.StringIO()
    with server.environment():  # the server's store (its FACEGATE_DATABASE_URL, if any)
        code = main(
            ["keys", "create", "--data-dir", str(server.data_dir), "--description", "t"], out=out
        )
    assert code == 0
    lines = dict(line.split(":", 1) for line in out.getvalue().splitlines() if ":" in line)
    creds = Credentials(lines["access key id"].strip(), lines["secret access key"].strip())
    rek = server.client(creds)
    assert "CollectionIds" in rek.list_collections()
    with server.environment():
        code = main(
            ["keys", "revoke", creds.access_key_id, "--data-dir", str(server.data_dir)], out=out
        )
    assert code == 0
    with pytest.raises(ClientError) as info:
        rek.list_collections()
    assert error_of(info)[0] == "UnrecognizedClientException"
