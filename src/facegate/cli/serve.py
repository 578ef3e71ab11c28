"""``facegate serve`` and ``facegate keys``: run the server, manage access keys."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from facegate.config import Settings
from facegate.datadir import secure_data_dir
from facegate.governance import LOCAL_ORG
from facegate.services import Services, load_policy
from facegate.wire.keys import NewKey

CREDENTIALS_FILE = "credentials"
PROFILE = "facegate"


def write_credentials(path: Path, key: NewKey, region: str) -> None:
    """An AWS shared-credentials file (mode 0600) with a ``[facegate]`` profile."""
    text = (
        f"[{PROFILE}]\naws_access_key_id = {key.access_key_id}\n"
        f"aws_secret_access_key = {key.secret_access_key}\nregion = {region}\n"
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def bootstrap_key(settings: Settings) -> Path | None:
    """On a store without keys, create one and write it to DATA_DIR/credentials (0600); returns
    that path, or None when the store already had a key.

    The key belongs to the ``local`` organisation (research sector, use case ``research``): an
    operator evaluating the service. Real deployments register organisations and issue keys
    bound to their use cases (``facegate org create``, ``facegate keys create``).

    Safe when several servers start at once on one empty store: creating the organisation and
    the key each check and insert in one write transaction (the store's writer lock), so exactly
    one organisation and one key are created, by whichever server comes first; the others
    return None without an error (and write no credentials file)."""
    from facegate.cli.admin import admin_for  # the CLI's admin service; events go to the outbox

    with admin_for(settings, actor="serve") as admin:
        if admin.keys():
            return None
        admin.ensure_local_org()
        key = admin.create_first_key(
            LOCAL_ORG, "research", "bootstrap key created by the first `facegate serve`"
        )
    if key is None:  # another server bootstrapped the store a moment ago
        return None
    path = settings.data_dir / CREDENTIALS_FILE
    write_credentials(path, key, settings.region)
    return path


def usage_banner(settings: Settings, credentials: Path | None, out: TextIO) -> None:
    endpoint = f"http://{settings.host}:{settings.port}"
    creds = settings.data_dir.resolve() / CREDENTIALS_FILE
    lines = [
        f"facegate serving the Rekognition face API at {endpoint}",
        f"  data: {settings.data_dir.resolve()}",
        f"  policy packs: base, {', '.join(settings.policy_packs)} (FACEGATE_POLICY_PACKS)",
        f"  audit log: {settings.audit_dir.resolve()} (facegate audit verify)",
    ]
    if settings.database_url:  # the DSN without its password
        lines.append(f"  store: {settings.database_name} (FACEGATE_DATABASE_URL)")
    if credentials is not None:
        lines.append(f"  first access key written to {creds} (profile [{PROFILE}], mode 0600)")
    lines += [
        "",
        "Point the AWS CLI at it:",
        f"  export AWS_SHARED_CREDENTIALS_FILE={creds} AWS_PROFILE={PROFILE}",
        f"  aws rekognition list-collections --endpoint-url {endpoint}",
        "Point boto3 at it:",
        f"  boto3.Session(profile_name='{PROFILE}').client('rekognition', "
        f"endpoint_url='{endpoint}')",
        "More keys: facegate keys create --description '...'  (the secret is shown once)",
        "",
    ]
    out.write("\n".join(lines) + "\n")
    out.flush()


def run_server(settings: Settings, out: TextIO = sys.stdout) -> int:
    """Start the server and block until it is stopped (SIGINT / SIGTERM)."""
    import uvicorn

    from facegate.app import create_app
    from facegate.bodies import head_deadline_protocol
    from facegate.logs import configure_logging

    configure_logging()
    policy = load_policy(settings)  # an invalid pack stops start-up before anything is created
    os.umask(0o077)  # whatever this process and its workers create is private (docs/audit.md)
    fixed = secure_data_dir(settings.data_dir)  # before anything in it is opened
    credentials = bootstrap_key(settings)
    started = time.perf_counter()
    services = Services.open(settings, policy=policy, permissions_fixed=fixed)
    log = logging.getLogger("facegate")
    log.info("started", extra={"startup_s": round(time.perf_counter() - started, 2)})
    if settings.attribute_models:
        # the operator's opt-in (FACEGATE_ATTRIBUTE_MODELS), recorded where it is read
        log.info(
            "face attribute models enabled (%s): their training data's research-only terms "
            "apply to this deployment (docs/attributes.md)",
            ", ".join(sorted(settings.attribute_models)),
        )
    try:
        usage_banner(settings, credentials, out)
        config = uvicorn.Config(
            create_app(services, close_on_shutdown=True),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=10,
            # uvicorn believes X-Forwarded-For/-Proto from 127.0.0.1 by default, so any local
            # process could choose its client address; the app decides instead, trusting only
            # FACEGATE_TRUSTED_PROXIES (facegate.wire.peers)
            proxy_headers=False,
            forwarded_allow_ips=[],
            # a deadline for each request's head; the body's is BodyGuard's (facegate.bodies)
            http=head_deadline_protocol(settings.header_timeout_s),
        )
        uvicorn.Server(config).run()
    finally:
        services.close()
    return 0
