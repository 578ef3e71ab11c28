"""SigV4-signed Rekognition requests for the pipeline in process (``facegate.pipeline.handle``),
as boto3 would sign them, without a server."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from facegate.pipeline import RawRequest
from facegate.services import Services
from facegate.wire.keys import NewKey


def local_key(services: Services, use_case: str = "research") -> NewKey:
    """A new key of the local organisation (created if missing) for ``use_case``."""
    services.registry.ensure_local_org()
    return services.registry.create_key("local", use_case)


def signed_request(
    key: NewKey,
    operation: str,
    body: Mapping[str, Any] | bytes,
    headers: Mapping[str, str] | None = None,
    client_address: str = "-",
) -> RawRequest:
    """``operation`` with ``body`` (a JSON object, or exactly these bytes) and extra ``headers``
    (signed too), signed with ``key`` for us-east-1 as boto3 signs it, from ``client_address``."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = AWSRequest(
        method="POST",
        url="http://127.0.0.1:8750/",
        data=data,
        headers={
            "Host": "127.0.0.1:8750",
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"RekognitionService.{operation}",
            **(headers or {}),
        },
    )
    credentials = Credentials(key.access_key_id, key.secret_access_key)
    SigV4Auth(credentials, "rekognition", "us-east-1").add_auth(request)
    prepared = request.prepare()
    return RawRequest(
        method="POST",
        path="/",
        query="",
        headers={k.lower(): v for k, v in prepared.headers.items()},
        body=prepared.body if isinstance(prepared.body, bytes) else b"",
        client_address=client_address,
    )
