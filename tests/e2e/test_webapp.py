"""The web app, driven in a real Chromium against a real `pairscope serve`: a wide-field lab
uploads its fields, the reference lab sees what it still owes, the lab reviews pairs (accepting
a channel-swapped field by hand, rejecting a good one with a reason and accepting it again),
snapshots, trains, watches progress reach 100 %, promotes (an admin overrides the gate if it
refuses), enhances, opens the before/after viewer, zooms, draws a line profile and downloads
the output. An outsider's key sees none of it. Every page is
photographed at 1400 and 420 px wide, under a self-only Content-Security-Policy, and no request
leaves the service's host."""

from __future__ import annotations

import json
import re
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np
import pytest
import tifffile

from models.synthetic import make_pair
from pairscope.testing.flow import FAST, Network, build_network, train, wait_job
from tests.worker.conftest import EmbeddedService

pytestmark = pytest.mark.slow

STATIC = Path(__file__).resolve().parents[2] / "api" / "static"
CSP = "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'"
FIELDS = ("cell-00", "cell-01", "cell-02", "swapped")
WIDE, NARROW = {"width": 1400, "height": 900}, {"width": 420, "height": 860}
MINUTE = 60_000


def _write_fields(folder: Path) -> dict[str, Path]:
    """Both sides of each field as CYX TIFFs; the confocal channels of `swapped` are swapped,
    so the aligner rejects that pair."""
    paths = {}
    for i, field in enumerate(FIELDS):
        lq, hq, _ = make_pair((128, 128), seed=i, shift=(2.0, -3.0))
        for side, data in (("lq", lq), ("hq", hq[[1, 0, 2]] if field == "swapped" else hq)):
            path = folder / side / f"{field}.tif"
            path.parent.mkdir(parents=True, exist_ok=True)
            tifffile.imwrite(path, data, photometric="minisblack", metadata={"axes": "CYX"})
            paths[f"{side}/{field}"] = path
    return paths


class Session:
    """One signed-in browser tab; records every request and console complaint."""

    def __init__(self, browser, url: str, key: str, shots: Path, downloads: bool = False) -> None:  # type: ignore[no-untyped-def]
        self.context = browser.new_context(viewport=WIDE, accept_downloads=downloads)
        self.page = self.context.new_page()
        self.url, self.shots = url, shots
        self.requests: list[str] = []
        self.console: list[str] = []
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: m.type == "error" and self.console.append(m.text))
        self.page.on("pageerror", lambda e: self.console.append(str(e)))

        def with_csp(route) -> None:  # type: ignore[no-untyped-def]
            response = route.fetch()
            headers = {**response.headers, "content-security-policy": CSP}
            route.fulfill(response=response, headers=headers)

        self.page.route(re.compile(r"^[^?#]+/(\?.*)?$"), with_csp)  # the shell document
        self.page.goto(url + "/")
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.get_by_role("link", name="Pairings", exact=True).wait_for()

    def open(self, path: str) -> None:
        self.page.goto(f"{self.url}/#{path}")

    def shoot(self, name: str) -> None:
        """The page at 1400 px and at 420 px wide."""
        self.page.wait_for_timeout(300)
        self.page.screenshot(path=self.shots / f"{name}-1400.png", full_page=True)
        self.page.set_viewport_size(NARROW)
        self.page.wait_for_timeout(400)
        self.page.screenshot(path=self.shots / f"{name}-420.png", full_page=True)
        width = self.page.evaluate("document.documentElement.scrollWidth")
        assert width <= NARROW["width"] + 2, f"{name} scrolls sideways at 420 px ({width} px)"
        self.page.set_viewport_size(WIDE)
        self.page.wait_for_timeout(200)

    def close(self) -> None:
        self.context.close()


def _override(admin: Session, pairing: int, version: int) -> None:
    """The admin promotes `version` to production over the gate's refusal, with a reason."""
    admin.open(f"/p/{pairing}/enhance")
    admin.open(f"/p/{pairing}/versions")
    admin.page.get_by_role("button", name=f"Promote v{version} to production").click()
    reason = f"web test: version {version} goes out anyway"
    admin.page.get_by_label("Override reason").fill(reason)
    admin.page.get_by_role("button", name="Override the gate and promote").click()
    admin.page.get_by_text("gate overridden by an admin").wait_for()
    admin.page.get_by_text(reason).wait_for()  # in the audit log


@pytest.fixture(scope="module")
def net(embedded_service: EmbeddedService) -> Network:
    client = httpx.Client(base_url=embedded_service.url, timeout=60)
    return build_network(client, embedded_service.admin_key, name="web")


def test_the_labs_work_in_the_web_app(  # noqa: PLR0915 (one story, told in order)
    embedded_service: EmbeddedService,
    net: Network,
    browser,
    screenshots: Path,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    url, pairing = embedded_service.url, net.pairing
    files = _write_fields(tmp_path)
    key = lambda headers: headers["Authorization"].split()[1]  # noqa: E731
    lab = Session(browser, url, key(net.lab), screenshots, downloads=True)
    page = lab.page
    sessions = [lab]
    try:
        # Home: the lab's pairing.
        page.get_by_role("link", name="web").wait_for()
        lab.shoot("01-home")

        # Upload the wide-field side by picking files; each shows progress and a verdict.
        lab.open(f"/p/{pairing}/upload")
        page.locator("#pick-files").set_input_files([str(files[f"lq/{f}"]) for f in FIELDS])
        for field in FIELDS:
            page.get_by_text(f"stored as field {field}").wait_for(timeout=MINUTE)
        page.locator("#waiting-for-partner").get_by_text("swapped").wait_for()
        lab.shoot("02-upload-lab")

        # The reference lab sees which fields it still owes, then its side goes in by API.
        partner = Session(browser, url, key(net.partner), screenshots)
        sessions.append(partner)
        partner.page.get_by_role("link", name="web").click()
        waiting = partner.page.locator("#waiting-for-you")
        waiting.get_by_text("waits for 4 field(s) from you").wait_for()
        assert all(f in waiting.inner_text() for f in FIELDS)
        assert partner.page.get_by_role("link", name="Training").count() == 0
        partner.shoot("03-upload-reference-lab")
        for field in FIELDS:
            with files[f"hq/{field}"].open("rb") as handle:
                sent = net.client.post(
                    net.url("/images"),
                    headers=net.partner,
                    params={"side": "hq"},
                    files={"file": (f"{field}.tif", handle, "image/tiff")},
                )
            assert sent.status_code == 201, sent.text
        partner.page.locator("#waiting-for-you").get_by_text("Nothing is waiting").wait_for(
            timeout=MINUTE
        )

        # Review: the swapped field is rejected with its reason; accept it by hand.
        lab.open(f"/p/{pairing}/pairs")
        swapped = page.locator('li[data-field="swapped"]')
        swapped.get_by_text("rejected", exact=True).wait_for(timeout=3 * MINUTE)
        page.get_by_text("3 accepted").wait_for(timeout=2 * MINUTE)
        assert "alignment score" in swapped.inner_text()
        assert swapped.locator("canvas").count() == 1  # LQ | aligned HQ preview
        lab.shoot("04-pairs-review")
        swapped.get_by_role("button", name="Accept swapped by hand").click()
        page.get_by_text("4 accepted").wait_for(timeout=MINUTE)

        # A field the gate let through is rejected by hand with a reason, then accepted again.
        cell = page.locator('li[data-field="cell-00"]')
        cell.get_by_role("button", name="Reject cell-00 by hand").click()
        cell.get_by_label("Rejection reason").fill("web test: out of focus")
        lab.shoot("04b-pairs-reject-reason")
        cell.get_by_role("button", name="Confirm rejection").click()
        cell.get_by_text("rejected", exact=True).wait_for(timeout=MINUTE)
        page.get_by_text("3 accepted").wait_for()
        assert "web test: out of focus" in cell.inner_text()
        assert "rejected by hand" in cell.inner_text()
        cell.get_by_role("button", name="Accept cell-00 by hand").click()
        cell.get_by_text("accepted", exact=True).wait_for(timeout=MINUTE)
        page.get_by_text("4 accepted").wait_for()
        assert "rejected by hand" not in cell.inner_text()

        # Snapshot, then train `tiny` briefly and watch it reach 100 %.
        lab.open(f"/p/{pairing}/training")
        page.get_by_label("train", exact=True).fill("0.5")
        page.get_by_label("validation").fill("0.25")
        page.get_by_label("test", exact=True).fill("0.25")
        page.get_by_role("button", name="Snapshot accepted pairs").click()
        page.get_by_text("2 train, 1 validation, 1 test").wait_for()
        page.get_by_label("Preset").select_option("tiny")
        page.get_by_text("Overrides (advanced)").click()
        page.get_by_label("Config overrides (JSON)").fill(json.dumps({**FAST, "steps": 200}))
        page.get_by_role("button", name="Start training").click()
        row = page.locator("table.jobs tbody tr").first
        row.get_by_text("running").or_(row.get_by_text("succeeded")).wait_for(timeout=MINUTE)
        lab.shoot("05-training-running")
        row.get_by_text("100 %").wait_for(timeout=3 * MINUTE)
        row.get_by_role("link", name="version 1").wait_for(timeout=2 * MINUTE)
        assert page.locator("figure.chart svg path").count() >= 2  # loss and validation curves
        lab.shoot("06-training-done")

        # Versions: promote version 1 (an admin overrides the gate if it refuses).
        admin = Session(browser, url, embedded_service.admin_key, screenshots)
        sessions.append(admin)
        lab.open(f"/p/{pairing}/versions")
        page.get_by_role("button", name="Promote v1 to production").click()
        verdict = page.locator("#verdict")
        verdict.get_by_text(re.compile("production now points at version 1|refuses")).wait_for()
        if "refuses" in verdict.inner_text():
            _override(admin, pairing, 1)

        # A one-step version 2 (trained by API) cannot beat version 1: the lab sees the gate's
        # refusal, an admin overrides it with a reason, the lab rolls production back.
        dataset = net.client.get(net.url("/datasets"), headers=net.lab).json()["items"][0]["id"]
        second = train(net, dataset, {"steps": 1}, seed=5)
        assert wait_job(net, second["id"])["state"] == "succeeded"
        lab.open(f"/p/{pairing}/enhance")
        lab.open(f"/p/{pairing}/versions")
        page.get_by_role("button", name="Promote v2 to production").click()
        verdict.get_by_text("The quality gate refuses version 2").wait_for()
        assert "administrator may override" in verdict.inner_text()
        assert "does not beat" in verdict.inner_text()
        lab.shoot("07-versions-gate-refused")
        _override(admin, pairing, 2)
        admin.shoot("08-versions-admin-override")
        lab.open(f"/p/{pairing}/enhance")
        lab.open(f"/p/{pairing}/versions")
        page.get_by_text("production → version 2").wait_for()
        page.get_by_role("button", name="Roll back production").click()
        page.get_by_text("production → version 1").wait_for()
        assert page.locator("table.versions tbody tr").count() == 2
        # each version says where it started (no base in this service: from scratch)
        assert page.locator(".started-from").first.inner_text() == "trained from scratch"
        assert page.get_by_label("compare version 2").is_checked()  # overlaid when it has curves
        assert page.locator("figure.chart svg path").count() >= 1  # (one step: no val points)
        # the learning curve: both versions at their snapshot's field count, and why no fit yet
        card = page.locator("#learning-curve")
        assert card.locator("circle.marker").count() >= 2
        assert "different numbers of fields" in card.locator(".fit").inner_text()
        lab.shoot("09-versions")

        # Enhance a stored wide-field image with the production version.
        lab.open(f"/p/{pairing}/enhance")
        page.get_by_label("cell-00").check()
        page.get_by_role("button", name="Enhance", exact=True).click()
        page.get_by_role("link", name="View cell-00.tif").wait_for(timeout=2 * MINUTE)
        lab.shoot("10-enhance")
        with page.expect_download() as download:
            page.get_by_role("button", name=re.compile("Download OME-TIFF")).first.click()
        saved = tmp_path / download.value.suggested_filename
        download.value.save_as(saved)
        assert saved.name == "cell-00_enhanced.ome.tif"
        output = tifffile.imread(saved)
        assert output.shape == (3, 128, 128) and np.isfinite(output).all()

        # The viewer: pixel data decoded in the browser, zoom, channel toggle, line profile.
        page.get_by_role("link", name="View cell-00.tif").click()
        page.get_by_text("Pixel data decoded in the browser").wait_for(timeout=MINUTE)
        zoom = page.locator("#zoom-level")
        before = zoom.inner_text()
        page.get_by_role("button", name="Zoom in").click()
        page.get_by_role("button", name="Zoom in").click()
        assert zoom.inner_text() != before
        canvas = page.locator("canvas.viewer-canvas").first
        canvas.focus()
        page.keyboard.press("ArrowLeft")  # pans by keyboard
        page.get_by_role("button", name="Line profile").click()
        page.locator("#profile figure.chart").nth(1).wait_for()
        box = canvas.bounding_box()
        page.mouse.move(box["x"] + 40, box["y"] + 60)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] - 40, box["y"] + box["height"] - 60, steps=5)
        page.mouse.up()
        page.get_by_label("AF488").uncheck()
        assert "AF488" not in page.locator("#profile").inner_text()
        # The trust checks: their verdict, the consistency and uncertainty maps over the output.
        assert "consistency RSP" in page.locator("#trust-summary").inner_text()
        page.get_by_label(re.compile("Consistency overlay")).check()
        page.get_by_label(re.compile("Uncertainty overlay")).check()
        lab.shoot("11-viewer")

        # Administration, as the admin sees it.
        admin.open("/admin")
        admin.page.get_by_role("heading", name="API keys").wait_for()
        admin.page.locator("#institutions").get_by_label("Name").fill("Web Test Institute")
        admin.page.locator("#institutions").get_by_label("Country").fill("DE")
        admin.page.locator("#institutions").get_by_label("Contact e-mail").fill("w@example.org")
        admin.page.get_by_role("button", name="Add institution").click()
        admin.page.locator("#institutions td", has_text="Web Test Institute").wait_for()
        admin.page.locator("#keys").get_by_label("Institution").select_option(
            label="Web Test Institute"
        )
        admin.page.get_by_role("button", name="Issue key").click()
        outsider_key = admin.page.locator("#new-key").inner_text()
        assert outsider_key.startswith("psk_")
        admin.shoot("12-admin")

        # An outsider (a lab of another institution) sees nothing of this pairing.
        outsider = Session(browser, url, outsider_key, screenshots)
        sessions.append(outsider)
        outsider.page.get_by_text("No pairing is visible to this key yet.").wait_for()
        outsider.open(f"/p/{pairing}/pairs")
        outsider.page.get_by_role("alert").get_by_text("does not exist").wait_for()
        outsider.open(f"/p/{pairing}/enhance/1/1")
        outsider.page.get_by_role("alert").wait_for()
        outsider.shoot("13-outsider")

        # Sign-out forgets the key; the key never appeared in a URL.
        page.get_by_role("button", name="Sign out").click()
        page.get_by_label("API key").wait_for()
        assert page.evaluate("sessionStorage.length") == 0
        lab.shoot("00-sign-in")
    finally:
        for session in sessions:
            session.close()

    host = urlparse(url).netloc
    for session in sessions:
        for requested in session.requests:
            assert urlparse(requested).netloc in (host, ""), requested
            assert "psk_" not in requested
        assert not [c for c in session.console if "Content Security Policy" in c], session.console


def test_no_asset_references_another_host() -> None:
    """Everything the app loads is served by the service itself: no CDN, no fonts, no scripts
    from elsewhere (the SVG namespace is a name, not a request)."""
    assets = [STATIC / "index.html", *sorted((STATIC / "app").rglob("*.*"))]
    assert len(assets) > 10
    for asset in assets:
        text = asset.read_text()
        found = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"')]*", text))
        assert found <= {"http://www.w3.org/2000/svg"}, (asset, found)
        assert "style=" not in text and "<style" not in text, asset  # CSP: no inline styles
        if asset.suffix == ".html":
            assert re.findall(r"<script[^>]*>([^<]*)</script>", text) == [""], asset
