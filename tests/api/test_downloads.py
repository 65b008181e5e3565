"""File names from uploads reach downloads intact and harmless: every download answers an
RFC 6266 Content-Disposition (an ASCII fallback and the exact name as filename*=UTF-8''), so a
non-Latin-1 name cannot break the header and a name with quotes cannot add parameters to it."""

from __future__ import annotations

import re
from urllib.parse import unquote

from api.upload_stream import safe_filename
from pairscope.testing.seeding import seed_version
from tests.api.conftest import Network
from tests.api.test_ingest import real, upload, w2s_pairing


def _names(header: str) -> tuple[str, str]:
    """The fallback name and the decoded filename* of a Content-Disposition, each exactly once."""
    assert header.startswith("attachment;"), header
    fallbacks = re.findall(r';\s*filename="([^"]*)"', header)
    extended = re.findall(r";\s*filename\*=UTF-8''([^;\s]+)", header)
    assert len(fallbacks) == 1 and len(extended) == 1, header
    assert len(re.findall(r";\s*filename", header)) == 2, header
    assert fallbacks[0].isascii()
    return fallbacks[0], unquote(extended[0])


def _download(network: Network, pairing: int, image: dict):  # type: ignore[no-untyped-def]
    return network.call("GET", f"/api/v1/pairings/{pairing}/images/{image['id']}/file", who="lab")


def test_a_non_latin1_file_name_downloads_with_rfc6266_names(network: Network) -> None:
    pairing = w2s_pairing(network)
    name = "Zdjęcie – 細胞 ☃.tif"
    response = upload(network, pairing, "lq", real("lq", 1), filename=name, field_id="f1")
    assert response.status_code == 201, response.text
    image = response.json()
    assert image["filename"] == name
    download = _download(network, pairing, image)
    assert download.status_code == 200 and download.content == real("lq", 1)
    fallback, exact = _names(download.headers["content-disposition"])
    assert exact == name and fallback.endswith(".tif")


def test_quotes_in_a_file_name_cannot_inject_parameters(network: Network) -> None:
    """The part header is written by hand: HTTP clients percent-encode quotes, attackers don't
    (the quoted-string escapes make the name `a"; filename="evil.exe"; x=".tif`)."""
    pairing = w2s_pairing(network)
    part = (
        b"--b0undary\r\n"
        b'Content-Disposition: form-data; name="file"; '
        b'filename="a\\"; filename=\\"evil.exe\\"; x=\\".tif"\r\n'
        b"Content-Type: image/tiff\r\n\r\n" + real("lq", 1) + b"\r\n--b0undary--\r\n"
    )
    response = network.call(
        "POST",
        f"/api/v1/pairings/{pairing}/images",
        who="lab",
        params={"side": "lq", "field_id": "f1"},
        headers={"content-type": "multipart/form-data; boundary=b0undary"},
        content=part,
    )
    assert response.status_code == 201, response.text
    image = response.json()
    assert image["filename"] == "a_; filename=_evil.exe_; x=_.tif"
    download = _download(network, pairing, image)
    assert download.status_code == 200
    fallback, exact = _names(download.headers["content-disposition"])
    assert exact == image["filename"] and "evil.exe" in fallback and '"' not in fallback


def test_stored_names_are_safe() -> None:
    assert safe_filename("C:\\Users\\me\\scan.tif") == "scan.tif"
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("a\r\nContent-Type: x\u202e.tif") == "aContent-Type_ x.tif"
    assert safe_filename("") == "upload.tif" and safe_filename("...") == "upload.tif"
    long = safe_filename("x" * 1000 + ".ome.tif")
    assert len(long) == 255 and long.endswith(".tif")


def test_a_version_artifact_missing_from_the_store_is_a_409_naming_it(
    network: Network, settings
) -> None:  # type: ignore[no-untyped-def]
    pairing = w2s_pairing(network)
    seed_version(settings, pairing)  # its object keys name nothing in the store
    for leaf in ("model", "report.json", "report.png"):
        response = network.call("GET", f"/api/v1/pairings/{pairing}/versions/1/{leaf}", who="lab")
        assert response.status_code == 409, (leaf, response.text)
        error = response.json()["error"]
        assert error["code"] == "artifact_unavailable" and "missing" in error["message"]
