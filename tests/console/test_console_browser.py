"""The console in a real headless browser (Debian's chromium, Playwright) against a live server:
sign-in, keys used with boto3, the decision simulator, two-person review delivering results to the
caller, audit verification and reports, bias audits, roles, CSRF and session expiry."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError

from facegate.engine.matching import default_matcher
from facegate.store.db import Database
from tests.admin.live import with_header
from tests.audit_reports import verification_report
from tests.console.conftest import PASSWORD, Console, set_password, shot, sign_in
from tests.e2e.server import Credentials

pytestmark = pytest.mark.slow


def _issue_key(page: Any, console: Console, org_id: str) -> Credentials:
    """Register ``org_id`` (a German access-control company: an EU deployer) and issue a key
    in the console; returns the key read from the page."""
    page.goto(console.url + "/orgs")
    page.get_by_label("Id", exact=True).fill(org_id)
    page.get_by_label("Name", exact=True).fill("Berlin Access GmbH")
    page.get_by_label("Sector").select_option("commercial")
    page.get_by_label("Use cases (comma separated)").fill("access_control")
    page.get_by_label("Country (ISO 3166-1, e.g. US)").fill("DE")
    page.get_by_role("button", name="Register").click()
    assert f"Organisation {org_id} registered." in page.get_by_role("status").inner_text()
    page.get_by_label("Organisation", exact=True).select_option(org_id)
    page.get_by_label("Description").fill("browser test")
    page.get_by_role("button", name="Issue key").click()
    key_id = page.get_by_test_id("new-key-id").inner_text()
    secret = page.get_by_test_id("new-key-secret").inner_text()
    return Credentials(key_id, secret)


def test_sign_in_issue_rotate_and_use_a_key_with_boto3(console: Console, context: Any) -> None:
    page = sign_in(context, console, "root")
    assert page.get_by_test_id("role").inner_text() == "admin"
    assert "eu-ai-act-art5" in page.locator("#h-packs + ul").inner_text()
    # beside each threshold's nominal rate, the rate the size-aware bounds use: the promise curve
    thresholds = page.get_by_role("table", name="Similarity thresholds and their false match rates")
    promised = default_matcher().similarity.fmr_at(80.0)
    assert promised is not None
    assert f"{promised:.2e}" in thresholds.inner_text()
    shot(page, "overview")
    org_id = f"berlin-{uuid.uuid4().hex[:6]}"
    creds = _issue_key(page, console, org_id)
    shot(page, "orgs-key-issued")
    rek = console.server.client(creds)
    assert rek.list_collections()["CollectionIds"] == []
    # the secret is shown once: the listing never shows it again
    page.goto(console.url + "/orgs")
    assert creds.secret_access_key not in page.content()
    page.get_by_role("button", name=f"Rotate key {creds.access_key_id}").click()
    rotated = Credentials(
        page.get_by_test_id("new-key-id").inner_text(),
        page.get_by_test_id("new-key-secret").inner_text(),
    )
    assert rotated.access_key_id != creds.access_key_id
    with pytest.raises(ClientError) as info:
        rek.list_collections()
    assert info.value.response["Error"]["Code"] == "UnrecognizedClientException"
    console.server.client(rotated).list_collections()
    page.get_by_role("button", name=f"Revoke key {rotated.access_key_id}").click()
    assert f"Key {rotated.access_key_id} revoked." in page.get_by_role("status").inner_text()
    with pytest.raises(ClientError):
        console.server.client(rotated).list_collections()


def test_simulate_a_decision(console: Console, context: Any) -> None:
    page = sign_in(context, console, "root")
    org_id = f"sim-{uuid.uuid4().hex[:6]}"
    _issue_key(page, console, org_id)
    page.goto(console.url + "/policies")
    assert "eu-ai-act-art5" in page.get_by_role("heading", level=3).all_inner_texts()
    page.get_by_label("Organisation", exact=True).select_option(org_id)
    page.get_by_label("Operation", exact=True).select_option("SearchFacesByImage")
    page.get_by_label("Collection").fill("staff")
    page.get_by_label("Time (ISO 8601, empty: now)").fill("2026-09-01T08:00:00Z")
    page.get_by_role("button", name="Decide").click()
    decision = page.get_by_test_id("decision")
    assert page.get_by_test_id("decision-value").inner_text() == "Allow"
    text = decision.inner_text()
    assert "eu-ai-act-art5.permit-identification-two-person-verification" in text
    assert "reviewers" in text  # the obligation: two-person human review
    shot(page, "policies-simulator")


def test_two_reviewers_release_held_results_to_the_caller(
    console: Console, browser: Any, context: Any, samples: Path
) -> None:
    admin = sign_in(context, console, "root")
    creds = _issue_key(admin, console, f"held-{uuid.uuid4().hex[:6]}")
    rek = console.server.client(creds)
    collection_id = f"c-{uuid.uuid4().hex[:8]}"
    rek.create_collection(CollectionId=collection_id)
    for name in ("obama.jpg", "obama2.jpg", "biden.jpg"):
        image = {"Bytes": (samples / name).read_bytes()}
        rek.index_faces(CollectionId=collection_id, Image=image, ExternalImageId=name)
    search = {
        "CollectionId": collection_id,
        "Image": {"Bytes": (samples / "obama3.jpg").read_bytes()},
    }
    held = rek.search_faces_by_image(**search)
    assert held.get("FaceMatches", []) == []
    review_id = held["ResponseMetadata"]["HTTPHeaders"]["x-facegate-review-id"]
    crop_url = console.url + f"/reviews/{review_id}/crop"

    def confirm(reviewer: str) -> Any:
        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        page = sign_in(ctx, console, reviewer)
        page.get_by_role("link", name="Review queue").click()
        page.get_by_role("link", name=review_id).click()
        assert page.get_by_test_id("review-status").inner_text() == "pending"
        candidates = page.get_by_role("table").inner_text()
        assert "obama.jpg" in candidates
        assert "biden.jpg" not in candidates
        # the probe's face crop, loaded from the console (decoded by the browser: size > 0)
        crop = page.get_by_role("img", name=f"cropped from the probe image of review {review_id}")
        assert crop.count() == 1
        page.wait_for_function(
            "() => { const i = document.querySelector('[data-testid=review-crop-img]');"
            " return i !== null && i.complete && i.naturalWidth > 0; }",
            timeout=10_000,
        )
        size = crop.evaluate("i => [i.naturalWidth, i.naturalHeight]")
        assert 0 < max(size) <= 256, size
        served = page.request.get(crop_url)
        assert served.status == 200
        assert served.headers["content-type"] == "image/jpeg"
        assert served.headers["cache-control"] == "no-store"
        assert "img-src 'self'" in served.headers["content-security-policy"]
        assert served.body()[:2] == b"\xff\xd8"
        if reviewer == "rev-one":
            shot(page, "review-pending")
        page.get_by_label("Note (what you checked, or why you reject)").fill(
            f"{reviewer}: matches the enrolment photo on file"
        )
        page.get_by_role("button", name="Confirm").click()
        return ctx, page

    first_ctx, first = confirm("rev-one")
    assert "the review is pending" in first.get_by_role("status").inner_text()
    first.goto(console.url + f"/reviews/{review_id}")
    assert first.get_by_role("button", name="Confirm").count() == 0  # one vote per person
    assert "a different reviewer" in first.content()
    # auditors see no biometric images: no crop on the page, 403 on its URL
    aud_ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    auditor = sign_in(aud_ctx, console, "aud")
    auditor.goto(console.url + f"/reviews/{review_id}")
    assert auditor.get_by_test_id("review-status").inner_text() == "pending"
    assert auditor.get_by_test_id("review-crop-img").count() == 0
    assert auditor.request.get(crop_url).status == 403
    aud_ctx.close()
    second_ctx, second = confirm("rev-two")
    assert second.get_by_test_id("review-status").inner_text() == "released"
    assert second.get_by_test_id("review-crop-img").count() == 0
    assert second.request.get(crop_url).status == 404  # deleted when the review closed
    shot(second, "review-released")
    first_ctx.close()
    second_ctx.close()

    collector = console.server.client(creds)
    with_header(collector, "SearchFacesByImage", "X-Facegate-Review", review_id)
    released = collector.search_faces_by_image(**search)
    assert released["ResponseMetadata"]["HTTPHeaders"]["x-facegate-review-status"] == "released"
    names = [m["Face"]["ExternalImageId"] for m in released["FaceMatches"]]
    assert names
    assert set(names) <= {"obama.jpg", "obama2.jpg"}

    admin.goto(console.url + "/audit?kind=review")
    log = admin.get_by_role("table").inner_text()
    assert "review.confirm" in log
    assert "review.crop_view" in log  # each view of the crop is recorded (ids only)
    assert "rev-one" in log
    assert "rev-two" in log


def test_audit_verify_search_and_report(console: Console, browser: Any) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = sign_in(ctx, console, "aud")  # auditors may verify and download
    page.goto(console.url + "/audit")
    page.get_by_role("button", name="Verify the chain now").click()
    assert page.get_by_test_id("verify-result").inner_text().startswith("Verified: ")
    page.get_by_label("Kind (request, review, registry, console...)").fill("console")
    page.get_by_role("button", name="Search").click()
    log = page.get_by_role("table").inner_text()
    assert "console.sign_in" in log
    assert "console.audit_verify" in log
    shot(page, "audit")
    page.get_by_label("Format").select_option("page")
    page.get_by_role("button", name="Make report").click()
    page.wait_for_url("**/console/audit/report**")
    assert page.get_by_test_id("report-verified").inner_text() == "verified"
    assert page.locator("svg.chart").count() >= 3
    shot(page, "audit-report")
    with page.expect_download() as info:
        page.get_by_role("link", name="JSON").click()
    report = json.loads(Path(info.value.path()).read_text())
    assert report["integrity"]["verified"] is True
    assert report["totals"]["requests"] >= 1
    with page.expect_download() as info:
        page.get_by_role("link", name="HTML").click()
    assert "<svg" in Path(info.value.path()).read_text()
    with page.expect_download() as info:
        page.get_by_role("link", name="CSV (zip)").click()
    assert info.value.suggested_filename.endswith(".zip")
    ctx.close()


def test_bias_report_and_collections(console: Console, context: Any, tmp_path: Path) -> None:
    path = tmp_path / "verification.json"
    path.write_text(json.dumps(verification_report()))
    out = console.server.facegate("model-audit", "register", str(path), "--note", "console e2e")
    audit_id = out.splitlines()[0].split()[1]
    page = sign_in(context, console, "root")
    page.goto(console.url + "/bias")
    gate = page.get_by_test_id("gate-status").inner_text()
    assert gate.startswith("Open"), gate
    page.get_by_role("link", name=audit_id).click()
    assert page.locator("svg.chart").count() == 3
    assert "FMR Max/GeoMean" in page.get_by_role("table").inner_text()
    shot(page, "bias-audit")
    page.goto(console.url + "/bias")
    shot(page, "bias")
    page.goto(console.url + "/collections")
    assert page.get_by_role("columnheader", name="Faces", exact=True).count() == 1
    shot(page, "collections")
    page.goto(console.url + "/overview")  # in file order, after the other tests' requests
    traffic = page.locator("#h-traffic + p").inner_text()
    denied = int(traffic.split(" allowed, ")[1].split(" denied")[0])
    # requests per day over all 14 days; denials drawn only when there were any
    assert page.locator("svg.chart").count() == (2 if denied else 1)
    assert page.locator("svg.chart rect").count() >= 1
    if not denied:
        assert page.get_by_text("No request was denied by policy in these 14 days.").count() == 1
    shot(page, "overview-traffic")


def test_roles_reviewer_and_auditor(console: Console, browser: Any) -> None:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = sign_in(ctx, console, "rev-one")
    nav = page.get_by_role("navigation").inner_text()
    assert "Review queue" in nav
    assert "Organisations" not in nav
    assert "Audit" not in nav
    for path in ("/orgs", "/policies", "/audit", "/bias", "/collections"):
        response = page.goto(console.url + path)
        assert response is not None
        assert response.status == 403, path
        assert "may not open this page" in page.get_by_role("alert").inner_text()
    shot(page, "reviewer-forbidden")
    ctx.close()

    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = sign_in(ctx, console, "aud")
    page.goto(console.url + "/orgs")
    assert page.get_by_role("button", name="Issue key").count() == 0  # read-only
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value")
    refused = page.request.post(
        console.url + "/keys", form={"csrf_token": csrf or "", "org_id": "local"}
    )
    assert refused.status == 403
    page.goto(console.url + "/reviews?status=all")
    assert page.get_by_role("button", name="Confirm").count() == 0
    ctx.close()


def test_csrf_sign_out_and_session_expiry(console: Console, context: Any) -> None:
    page = sign_in(context, console, "root")
    csrf = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    missing = page.request.post(console.url + "/orgs", form={"org_id": "x", "name": "x"})
    assert missing.status == 403
    assert "CSRF" in missing.text()
    wrong = page.request.post(console.url + "/orgs", form={"csrf_token": "x" * 43})
    assert wrong.status == 403
    cookies = {c["name"]: c for c in context.cookies()}
    session = cookies["fg_session"]
    assert session["httpOnly"] is True
    assert session["sameSite"] == "Strict"
    assert len(session["value"]) == 43  # 32 random bytes
    # the database keeps only the SHA-256 of the session id
    db = Database(console.server.data_dir / "facegate.sqlite3")
    try:
        with db.read() as conn:
            stored = [r[0] for r in conn.execute("SELECT session_sha256 FROM console_sessions")]
        assert session["value"] not in stored
        # idle for an hour: the session has expired
        with db.transaction() as conn:
            conn.execute("UPDATE console_sessions SET last_seen_at = last_seen_at - 3600")
    finally:
        db.close()
    page.goto(console.url + "/overview")
    assert "/console/login" in page.url
    assert page.request.post(console.url + "/logout", form={"csrf_token": csrf}).status == 401

    # sign-out deletes the session: its cookie no longer works
    page = sign_in(context, console, "root")
    old = next(c for c in context.cookies() if c["name"] == "fg_session")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/login")
    context.add_cookies([old])
    page.goto(console.url + "/overview")
    assert "/console/login" in page.url
    shot(page, "sign-in")


def test_wrong_passwords_are_throttled(console: Console, context: Any) -> None:
    page = context.new_page()
    page.goto(console.url + "/login")
    statuses = []
    for _ in range(6):
        page.get_by_label("Operator id").fill("rev-two")
        page.get_by_label("Password").fill("not the password at all")
        with page.expect_response("**/console/login") as info:
            page.get_by_role("button", name="Sign in").click()
        statuses.append(info.value.status)
    assert statuses == [401] * 5 + [429]
    assert "Too many failed sign-ins" in page.get_by_role("alert").inner_text()


def test_pages_work_at_400px(console: Console, browser: Any) -> None:
    ctx = browser.new_context(viewport={"width": 400, "height": 800})
    page = sign_in(ctx, console, "root")
    for name in ("overview", "orgs", "policies", "reviews", "audit"):
        page.goto(console.url + "/" + name)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 400, (name, width)
    page.goto(console.url + "/overview")
    shot(page, "overview-narrow")
    ctx.close()


def test_your_account_shows_who_controls_it_and_changes_your_password(
    console: Console, browser: Any
) -> None:
    """An operator an admin created through the admin API holds the admin's token: the
    account page says their confirmations do not count yet; they change their own password
    (issue 18, item 2)."""
    server = console.server
    out = server.facegate("operators", "create", "boss", "--name", "Boss", "--role", "admin")
    boss = out.split("token:")[1].split()[0]
    created = httpx.post(
        server.endpoint + "/admin/operators",
        json={"operator_id": "mal", "display_name": "Mal", "role": "reviewer"},
        headers={"Authorization": f"Bearer {boss}"},
        timeout=30,
    )
    assert created.status_code == 201, created.text
    set_password(server, "mal")
    ctx = browser.new_context(viewport={"width": 400, "height": 800})
    page = sign_in(ctx, console, "mal")
    page.get_by_role("link", name="Mal").click()
    assert page.get_by_test_id("token-set-by").inner_text() == "boss"
    standing = page.get_by_test_id("standing").inner_text()
    assert "do not count yet" in standing
    assert "mal holds a token boss set" in page.content()
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    shot(page, "account")
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_label("New password (12-1024 characters)").fill(PASSWORD + " of my own")
    page.get_by_label("New password again").fill(PASSWORD + " of my own")
    page.get_by_role("button", name="Change password").click()
    page.wait_for_url("**/console/account?changed=1")
    assert "Your password is changed" in page.get_by_role("status").inner_text()
    assert page.get_by_test_id("password-set-by").inner_text() == "mal"
    ctx.close()
    sign_in(browser.new_context(), console, "mal", PASSWORD + " of my own").context.close()


def test_audit_verify_says_what_it_cannot_establish(console: Console, browser: Any) -> None:
    """Issue 18 item 16: the verify button says, as the CLI does, that a rollback cannot be
    detected without a trusted head, and checks one pasted into the form."""
    import base64

    from facegate.audit.checkpoint import signed_message
    from facegate.audit.head import HeadStatement
    from facegate.audit.signing_key import key_id, load_signing_key

    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    page = sign_in(ctx, console, "aud")
    page.goto(console.url + "/audit")
    page.get_by_role("button", name="Verify the chain now").click()
    assert page.get_by_test_id("verify-result").inner_text().startswith("Verified: ")
    limit = page.get_by_test_id("verify-limit").inner_text()
    assert "rolled back to an earlier signed state" in limit
    assert "facegate audit verify --trusted-head FILE" in limit
    # a head the log does not reach (as kept before someone cut the log back): FAILED
    key = load_signing_key(console.server.data_dir, None)
    seq = 10**6
    digest = "ab" * 32
    future = HeadStatement(
        seq, digest, seq + 1, "cd" * 32, 0.0, key_id(key.public_key()),
        base64.b64encode(key.sign(signed_message(seq, digest))).decode(),
    )  # fmt: skip
    page.get_by_label("Trusted head (optional: a statement kept elsewhere)").fill(
        future.to_bytes().decode()
    )
    page.get_by_role("button", name="Verify the chain now").click()
    result = page.get_by_test_id("verify-result").inner_text()
    assert result.startswith("FAILED: rollback"), result
    page.get_by_label("Trusted head (optional: a statement kept elsewhere)").fill("{not json")
    page.get_by_role("button", name="Verify the chain now").click()
    assert "not a head statement" in page.get_by_role("alert").inner_text()
