"""Governance end to end with boto3: the default server enforces Amazon's 2020 moratorium on
police face comparison (with its missing-persons exemption), keys are bound to one purpose,
organisations cannot touch, nor learn of, each other's collections (ids are per organisation: a
foreign id answers as a missing one), and every answer carries its decision id."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.e2e.governance import register, send_headers
from tests.e2e.server import Credentials, LiveServer

Image = Callable[[str], dict[str, bytes]]


@pytest.fixture(scope="module")
def police(server: LiveServer) -> dict[str, Credentials]:
    return register(
        server, "e2e-police", "law_enforcement", ["investigation", "missing_persons"],
        country="US", region="US-WA",
    )  # fmt: skip


@pytest.fixture(scope="module")
def ngo(server: LiveServer) -> dict[str, Credentials]:
    return register(server, "e2e-ngo", "ngo", ["trafficking_victims"], country="US")


@pytest.fixture(scope="module")
def police_collection(server: LiveServer, police: dict[str, Credentials], samples: Path) -> str:
    client = server.client(police["missing_persons"])
    client.create_collection(CollectionId="e2e-police-mp")
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg"):
        client.index_faces(
            CollectionId="e2e-police-mp",
            Image={"Bytes": (samples / name).read_bytes()},
            ExternalImageId=name,
        )
    return "e2e-police-mp"


def _denied(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as info:
        call()
    error = info.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    return str(error["Message"])


def test_police_investigation_is_denied_face_comparison(
    server: LiveServer, police: dict[str, Credentials], police_collection: str, image: Image
) -> None:
    client = server.client(police["investigation"])
    message = _denied(
        lambda: client.search_faces_by_image(
            CollectionId=police_collection, Image=image("obama3.jpg")
        )
    )
    assert message.startswith("Access denied by policy (decision dec-")
    _denied(
        lambda: client.compare_faces(
            SourceImage=image("obama.jpg"), TargetImage=image("obama2.jpg")
        )
    )
    # Detection is not face comparison: the moratorium does not cover it.
    assert len(client.detect_faces(Image=image("obama.jpg"))["FaceDetails"]) == 1


def test_every_operation_that_compares_faces_is_face_comparison_for_the_moratorium(
    server: LiveServer, police: dict[str, Credentials], image: Image
) -> None:
    """The attack of issue 18: a police key denied CompareFaces and the searches indexes
    photos, creates a user and asks AssociateFaces to score gallery faces against it, which
    compares faces (it answers each face's similarity to the user). It is denied like any other
    face comparison, as are the user searches; enrolling faces is not comparison and stays."""
    client = server.client(police["investigation"])
    collection_id = "e2e-police-inv"
    client.create_collection(CollectionId=collection_id)
    ids = [
        client.index_faces(CollectionId=collection_id, Image=image(name))["FaceRecords"][0]["Face"][
            "FaceId"
        ]
        for name in ("obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg")
    ]
    client.create_user(CollectionId=collection_id, UserId="suspect")
    message = _denied(
        lambda: client.associate_faces(
            CollectionId=collection_id, UserId="suspect", FaceIds=ids, UserMatchThreshold=100
        )
    )
    assert message.startswith("Access denied by policy (decision dec-")
    _denied(lambda: client.search_users(CollectionId=collection_id, FaceId=ids[0]))
    _denied(lambda: client.search_users(CollectionId=collection_id, UserId="suspect"))
    _denied(
        lambda: client.search_users_by_image(CollectionId=collection_id, Image=image("obama.jpg"))
    )
    _denied(lambda: client.search_faces(CollectionId=collection_id, FaceId=ids[0]))
    # nothing was associated, and nothing in any answer scored a face against another
    faces = client.list_faces(CollectionId=collection_id)["Faces"]
    assert all("UserId" not in face for face in faces)


def test_police_missing_persons_is_allowed(
    server: LiveServer, police: dict[str, Credentials], police_collection: str, image: Image
) -> None:
    client = server.client(police["missing_persons"])
    found = client.search_faces_by_image(CollectionId=police_collection, Image=image("obama3.jpg"))
    names = {m["Face"]["ExternalImageId"] for m in found["FaceMatches"]}
    assert names == {"obama.jpg", "obama2.jpg"}
    assert found["ResponseMetadata"]["HTTPHeaders"]["x-facegate-decision-id"].startswith("dec-")


def test_ngo_rescuing_trafficking_victims_is_allowed(
    server: LiveServer, ngo: dict[str, Credentials], image: Image
) -> None:
    client = server.client(ngo["trafficking_victims"])
    client.create_collection(CollectionId="e2e-ngo-victims")
    client.index_faces(CollectionId="e2e-ngo-victims", Image=image("obama.jpg"))
    found = client.search_faces_by_image(CollectionId="e2e-ngo-victims", Image=image("obama2.jpg"))
    assert len(found["FaceMatches"]) == 1
    assert found["FaceMatches"][0]["Similarity"] >= 80


def test_purpose_must_be_the_keys_registered_use_case(
    server: LiveServer, police: dict[str, Credentials], police_collection: str, image: Image
) -> None:
    client = send_headers(
        server.client(police["investigation"]), {"X-Facegate-Purpose": "missing_persons"}
    )
    _denied(
        lambda: client.search_faces_by_image(
            CollectionId=police_collection, Image=image("obama3.jpg")
        )
    )


def test_unsigned_governance_headers_are_refused(
    server: LiveServer, police: dict[str, Credentials], police_collection: str, image: Image
) -> None:
    client = send_headers(
        server.client(police["missing_persons"]),
        {"X-Facegate-Case": "MP-1"},
        signed=False,
    )
    message = _denied(lambda: client.describe_collection(CollectionId=police_collection))
    assert message == "Header X-Facegate-Case must be signed (add it before signing the request)."


def test_signed_case_reference_is_accepted(
    server: LiveServer, police: dict[str, Credentials], police_collection: str
) -> None:
    client = send_headers(
        server.client(police["missing_persons"]),
        {"X-Facegate-Case": "MP-2026/0042", "X-Facegate-Purpose": "missing_persons"},
    )
    assert client.describe_collection(CollectionId=police_collection)["FaceCount"] == 3


def _missing(call: Callable[[], Any]) -> str:
    with pytest.raises(ClientError) as info:
        call()
    error = info.value.response["Error"]
    assert error["Code"] == "ResourceNotFoundException", error
    return str(error["Message"])


def test_organisations_are_isolated(
    server: LiveServer,
    ngo: dict[str, Credentials],
    police: dict[str, Credentials],
    police_collection: str,
    image: Image,
) -> None:
    client = server.client(ngo["trafficking_victims"])
    _missing(lambda: client.describe_collection(CollectionId=police_collection))
    _missing(
        lambda: client.search_faces_by_image(
            CollectionId=police_collection, Image=image("obama3.jpg")
        )
    )
    _missing(lambda: client.delete_collection(CollectionId=police_collection))
    listed = set(client.list_collections()["CollectionIds"])
    assert police_collection not in listed
    police_client = server.client(police["missing_persons"])
    assert police_collection in set(police_client.list_collections()["CollectionIds"])
    assert police_client.describe_collection(CollectionId=police_collection)["FaceCount"] == 3


FACE_ID = "00000000-0000-4000-8000-000000000001"


def _collection_calls(client: Any, cid: str, image: Image) -> dict[str, Callable[[], Any]]:
    """Every operation on a collection (by id, or by ARN for tags), with parameters that are
    valid for a collection of that id."""
    arn = f"arn:aws:rekognition:us-east-1:000000000000:collection/{cid}"
    user = {"CollectionId": cid, "UserId": "u1"}
    return {
        "DescribeCollection": lambda: client.describe_collection(CollectionId=cid),
        "DeleteCollection": lambda: client.delete_collection(CollectionId=cid),
        "IndexFaces": lambda: client.index_faces(CollectionId=cid, Image=image("obama.jpg")),
        "ListFaces": lambda: client.list_faces(CollectionId=cid),
        "DeleteFaces": lambda: client.delete_faces(CollectionId=cid, FaceIds=[FACE_ID]),
        "SearchFaces": lambda: client.search_faces(CollectionId=cid, FaceId=FACE_ID),
        "SearchFacesByImage": lambda: client.search_faces_by_image(
            CollectionId=cid, Image=image("obama3.jpg")
        ),
        "CreateUser": lambda: client.create_user(**user),
        "DeleteUser": lambda: client.delete_user(**user),
        "ListUsers": lambda: client.list_users(CollectionId=cid),
        "AssociateFaces": lambda: client.associate_faces(**user, FaceIds=[FACE_ID]),
        "DisassociateFaces": lambda: client.disassociate_faces(**user, FaceIds=[FACE_ID]),
        "SearchUsers": lambda: client.search_users(**user),
        "SearchUsersByImage": lambda: client.search_users_by_image(
            CollectionId=cid, Image=image("obama3.jpg")
        ),
        "TagResource": lambda: client.tag_resource(ResourceArn=arn, Tags={"k": "v"}),
        "UntagResource": lambda: client.untag_resource(ResourceArn=arn, TagKeys=["k"]),
        "ListTagsForResource": lambda: client.list_tags_for_resource(ResourceArn=arn),
    }


def _refusal(call: Callable[[], Any]) -> tuple[int, str, str, frozenset[str], str]:
    """What a caller sees of a refused request: status, code, message, header names and the
    body's length."""
    with pytest.raises(ClientError) as info:
        call()
    response = info.value.response
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    return (
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Code"],
        response["Error"]["Message"],
        frozenset(headers) - {"date"},
        headers.get("content-length", ""),
    )


def test_a_foreign_collection_is_indistinguishable_from_a_missing_one(
    server: LiveServer,
    ngo: dict[str, Credentials],
    police: dict[str, Credentials],
    police_collection: str,
    image: Image,
) -> None:
    """Another organisation's collection id answers exactly as an id nobody holds (same
    length, so messages and bodies can be compared byte for byte): no existence oracle."""
    client = server.client(ngo["trafficking_victims"])
    nobody = police_collection[:-2] + "zz"
    assert len(nobody) == len(police_collection)
    foreign = _collection_calls(client, police_collection, image)
    missing = _collection_calls(client, nobody, image)
    for operation in foreign:
        seen = _refusal(foreign[operation])
        expected = _refusal(missing[operation])
        assert seen[1] == "ResourceNotFoundException", (operation, seen)
        assert seen == (
            expected[0],
            expected[1],
            expected[2].replace(nobody, police_collection),
            expected[3],
            expected[4],
        ), operation
    police_client = server.client(police["missing_persons"])
    assert police_client.describe_collection(CollectionId=police_collection)["FaceCount"] == 3
    tags = police_client.list_tags_for_resource(
        ResourceArn=f"arn:aws:rekognition:us-east-1:000000000000:collection/{police_collection}"
    )
    assert tags["Tags"] == {}


def test_collection_ids_are_per_organisation(
    server: LiveServer,
    ngo: dict[str, Credentials],
    police: dict[str, Credentials],
    police_collection: str,
    image: Image,
) -> None:
    """Creating a collection under an id another organisation holds neither fails nor reveals
    it: ids are per organisation, as Rekognition's are per account."""
    client = server.client(ngo["trafficking_victims"])
    created = client.create_collection(CollectionId=police_collection)
    assert created["StatusCode"] == 200
    try:
        assert client.describe_collection(CollectionId=police_collection)["FaceCount"] == 0
        client.index_faces(CollectionId=police_collection, Image=image("obama.jpg"))
        assert client.describe_collection(CollectionId=police_collection)["FaceCount"] == 1
        error = _refusal(lambda: client.create_collection(CollectionId=police_collection))
        assert error[1] == "ResourceAlreadyExistsException"  # its own, now
    finally:
        client.delete_collection(CollectionId=police_collection)
    police_client = server.client(police["missing_persons"])
    assert police_client.describe_collection(CollectionId=police_collection)["FaceCount"] == 3


def test_list_collections_tokens_carry_no_counter_and_one_organisation(
    server: LiveServer, ngo: dict[str, Credentials], police: dict[str, Credentials]
) -> None:
    client = server.client(ngo["trafficking_victims"])
    ids = ["e2e-ngo-page-1", "e2e-ngo-page-2"]
    for cid in ids:
        client.create_collection(CollectionId=cid)
    try:
        first = client.list_collections(MaxResults=1)
        token = first["NextToken"]
        # No row number of the server in the clear, and not even a stable encoding of one.
        assert not re.match(r"[0-9]+[.]", token)
        assert client.list_collections(MaxResults=1)["NextToken"] != token
        rest = client.list_collections(NextToken=token)
        listed = first["CollectionIds"] + rest["CollectionIds"]
        assert set(ids) <= set(listed)
        assert len(listed) == len(set(listed))
        # Another organisation cannot use it (nor learn anything from it).
        error = _refusal(
            lambda: server.client(police["missing_persons"]).list_collections(NextToken=token)
        )
        assert error[1] == "InvalidPaginationTokenException"
    finally:
        for cid in ids:
            client.delete_collection(CollectionId=cid)


def test_a_stored_decision_is_explained(
    server: LiveServer, police: dict[str, Credentials], police_collection: str, image: Image
) -> None:
    import io
    import re

    from facegate.cli import main

    client = server.client(police["investigation"])
    message = _denied(
        lambda: client.search_faces_by_image(
            CollectionId=police_collection, Image=image("obama3.jpg")
        )
    )
    match = re.search(r"dec-[0-9a-f]+", message)
    assert match is not None
    out = io.StringIO()
    with server.environment():  # the decision is in the server's store
        code = main(
            ["policy", "explain", "--decision", match.group(0), "--data-dir", str(server.data_dir)],
            out=out,
        )
    text = out.getvalue()
    assert code == 1
    assert f"decision    {match.group(0)}  DENY" in text
    assert "SearchFacesByImage on e2e-police-mp by key" in text
    assert "amazon-2020-police-moratorium.forbid-police-face-comparison  (forbid, pack" in text
    assert "reason: Amazon's moratorium" in text
