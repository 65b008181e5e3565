"""`pairscope upload` against the embedded service: folders of real TIFFs from both sides,
aligned by the worker `serve` started, resumable by checksum, with a summary."""

from __future__ import annotations

import shutil

import httpx

from pairscope.testing.flow import microscope_body
from pairscope.testing.processes import W2S


def test_upload_folders_from_both_sides(embedded_service, tmp_path) -> None:  # type: ignore[no-untyped-def]
    admin = {"Authorization": f"Bearer {embedded_service.admin_key}"}
    keys, scopes = {}, []
    with httpx.Client(base_url=embedded_service.url + "/api/v1", headers=admin) as api:
        for name, modality, role in (
            ("Upload Lab", "widefield", "lab"),
            ("Upload Core", "other", "partner"),
        ):
            inst = api.post(
                "/institutions",
                json={"name": name, "country": "CH", "contact_email": "u@example.org"},
            ).json()["id"]
            scopes.append(
                api.post(
                    "/microscopes",
                    json={
                        **microscope_body(inst, name, modality),
                        "pixel_size_um": 0.1,
                        "numerical_aperture": 1.49,
                    },
                ).json()["id"]
            )
            keys[role] = api.post("/keys", json={"institution_id": inst, "role": role}).json()[
                "key"
            ]
        pairing = api.post(
            "/pairings",
            json={
                "name": "upload-cli",
                "lq_microscope_id": scopes[0],
                "hq_microscope_id": scopes[1],
            },
        ).json()["id"]
    folders = {}
    for side in ("lq", "hq"):
        folders[side] = tmp_path / side
        folders[side].mkdir()
        for field in (21, 22, 23):
            shutil.copy(W2S / side / f"field_{field:03d}.tif", folders[side])
    (folders["lq"] / "notes.txt").write_text("not an image: ignored")

    lq = embedded_service.cli(
        "upload",
        "--pairing",
        str(pairing),
        "--side",
        "lq",
        str(folders["lq"]),
        "--wait",
        "0",
        key=keys["lab"],
    )
    assert "3 TIFF files, 0 already on the server, 3 to upload" in lq.stdout
    assert "3 unpaired" in lq.stdout
    hq = embedded_service.cli(
        "upload",
        "--pairing",
        str(pairing),
        "--side",
        "hq",
        str(folders["hq"]),
        "--wait",
        "120",
        key=keys["partner"],
    )
    assert "pairs: 3 accepted" in hq.stdout, hq.stdout + hq.stderr
    again = embedded_service.cli(
        "upload",
        "--pairing",
        str(pairing),
        "--side",
        "lq",
        str(folders["lq"]),
        "--wait",
        "0",
        key=keys["lab"],
    )
    assert "3 already on the server, 0 to upload" in again.stdout

    wrong_side = embedded_service.cli(
        "upload",
        "--pairing",
        str(pairing),
        "--side",
        "hq",
        str(folders["lq"]),
        "--wait",
        "0",
        key=keys["lab"],
        check=False,
    )
    assert "refused" in wrong_side.stdout and "403" in wrong_side.stdout
    # Nothing was uploaded: the other side's accepted pairs are not this upload's, and a
    # script must see the failure.
    assert wrong_side.returncode == 1, wrong_side.stdout + wrong_side.stderr
    assert "3 of 3 file(s) refused" in wrong_side.stdout
    assert "accepted" not in wrong_side.stdout and "Traceback" not in wrong_side.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    nothing = embedded_service.cli(
        "upload",
        "--pairing",
        str(pairing),
        "--side",
        "lq",
        str(empty),
        key=keys["lab"],
        check=False,
    )
    assert nothing.returncode == 2 and "no TIFF files" in nothing.stderr


def test_bad_paths_are_one_line_and_exit_2(embedded_service, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A folder or mapping that is not there is the command's mistake: exit 2, one line that
    names it, no traceback, before anything is sent."""
    folder = tmp_path / "fields"
    folder.mkdir()
    shutil.copy(W2S / "lq" / "field_021.tif", folder)
    (tmp_path / "bad.csv").write_text("name,field\nfield_021.tif,a\n")
    cases = {
        "no such folder": (str(tmp_path / "missing"),),
        "not a folder": (str(folder / "field_021.tif"),),
        "cannot read the mapping": (str(folder), "--mapping", str(tmp_path / "none.csv")),
        "needs the columns filename,field_id": (
            str(folder),
            "--mapping",
            str(tmp_path / "bad.csv"),
        ),
    }
    for message, args in cases.items():
        run = embedded_service.cli(
            "upload", "--pairing", "1", "--side", "lq", *args, "--wait", "0", check=False
        )
        assert run.returncode == 2, (message, run.stdout, run.stderr)
        assert run.stderr.strip().count("\n") == 0 and message in run.stderr, run.stderr
        assert "Traceback" not in run.stderr
