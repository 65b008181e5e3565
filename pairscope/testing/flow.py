"""Shared steps of the end-to-end tests and the benchmarks: a network, synthetic cross-system
pairs uploaded from both sides, a snapshot, training, and waiting for jobs. Used against the API
over any client."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import tifffile

from api.auth import issue_key
from api.db import make_engine, make_session_factory, session_scope
from api.settings import Settings
from api.tables import Institution, Role
from models.synthetic import make_pair

CHANNELS = [
    {"name": "DAPI", "fluorophore": "Hoechst 33342", "excitation_nm": 350, "emission_nm": 461},
    {"name": "AF488", "fluorophore": "Alexa Fluor 488", "excitation_nm": 495, "emission_nm": 520},
    {"name": "AF555", "fluorophore": "Alexa Fluor 555", "excitation_nm": 555, "emission_nm": 565},
]


def microscope_body(institution_id: int, name: str, modality: str, **overrides) -> dict:
    body = {
        "institution_id": institution_id,
        "name": name,
        "modality": modality,
        "make_model": "test stand",
        "objective_magnification": 63,
        "numerical_aperture": 1.4,
        "immersion_index": 1.515,
        "pixel_size_um": 0.159 if modality == "confocal" else 0.0865,
        "channels": CHANNELS,
    }
    body.update(overrides)
    return body


def make_key(settings: Settings, institution: str, role: Role) -> tuple[int, str]:
    engine = make_engine(settings)
    with session_scope(make_session_factory(engine)) as session:
        inst = Institution(name=institution, country="PL", contact_email="ops@example.org")
        session.add(inst)
        session.flush()
        _, key = issue_key(session, inst, role)
        inst_id = inst.id
    engine.dispose()
    return inst_id, key


# Enough for the tiny network to learn something on synthetic data within seconds.
FAST = {
    "steps": 400,
    "base_filters": 16,
    "adv_weight": 0.001,
    "patch_size": 64,
    "depth": 3,
    "checkpoint_every": 50,
    "val_every": 50,
}
PAPER_OPTICS = {
    "objective_magnification": 63,
    "numerical_aperture": 1.4,
    "immersion_index": 1.515,
    "pixel_size_um": 0.1,
}


def tiff(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    tifffile.imwrite(out, array, metadata={"axes": "CYX"})
    return out.getvalue()


@dataclass
class Network:
    client: Any
    admin: dict[str, str]
    lab: dict[str, str]
    partner: dict[str, str]
    pairing: int

    def url(self, path: str) -> str:
        return f"/api/v1/pairings/{self.pairing}{path}"


def build_network(client: Any, admin_key: str, name: str = "flow") -> Network:
    admin = {"Authorization": f"Bearer {admin_key}"}
    keys, scopes = {}, []
    for inst, modality, role in (
        (f"{name} WF lab", "widefield", "lab"),
        (f"{name} confocal core", "confocal", "partner"),
    ):
        inst_id = client.post(
            "/api/v1/institutions",
            headers=admin,
            json={"name": inst, "country": "PL", "contact_email": "f@example.org"},
        ).json()["id"]
        scopes.append(
            client.post(
                "/api/v1/microscopes",
                headers=admin,
                json={**microscope_body(inst_id, inst, modality), **PAPER_OPTICS},
            ).json()["id"]
        )
        keys[role] = client.post(
            "/api/v1/keys", headers=admin, json={"institution_id": inst_id, "role": role}
        ).json()["key"]
    pairing = client.post(
        "/api/v1/pairings",
        headers=admin,
        json={"name": name, "lq_microscope_id": scopes[0], "hq_microscope_id": scopes[1]},
    ).json()["id"]
    return Network(
        client,
        admin,
        {"Authorization": f"Bearer {keys['lab']}"},
        {"Authorization": f"Bearer {keys['partner']}"},
        pairing,
    )


def upload_synthetic(net: Network, fields: int, shape: tuple[int, int] = (128, 128)) -> None:
    for seed in range(fields):
        lq, hq, _ = make_pair(shape, seed=seed, shift=(2.0, -3.0))
        for side, data, who in (("lq", lq, net.lab), ("hq", hq, net.partner)):
            response = net.client.post(
                net.url("/images"),
                headers=who,
                params={"side": side, "field_id": f"cell-{seed:02d}"},
                files={"file": (f"cell-{seed:02d}.tif", tiff(data), "image/tiff")},
            )
            assert response.status_code == 201, response.text


def wait(net: Network, path: str, done: callable, timeout: float = 240) -> Any:  # type: ignore[valid-type]
    deadline = time.monotonic() + timeout
    body = None
    while time.monotonic() < deadline:
        body = net.client.get(net.url(path), headers=net.admin).json()
        if done(body):
            return body
        time.sleep(0.5)
    raise TimeoutError(f"{path} not done after {timeout} s: {body}")


def accepted_snapshot(net: Network, fields: int) -> dict:
    wait(net, "/pairs?status=accepted", lambda b: b["total"] >= fields)
    response = net.client.post(
        net.url("/datasets"),
        headers=net.lab,
        json={"fractions": {"train": 0.5, "validation": 0.2, "test": 0.3}, "seed": 1},
    )
    assert response.status_code == 201, response.text
    return response.json()


def train(net: Network, dataset: int, overrides: dict | None = None, **extra: Any) -> dict:
    response = net.client.post(
        net.url("/training-jobs"),
        headers=net.lab,
        json={
            "dataset_id": dataset,
            "preset": "tiny",
            "overrides": {**FAST, **(overrides or {})},
            "seed": 3,
            **extra,
        },
    )
    assert response.status_code == 202, response.text
    return response.json()


def finished(job: dict) -> bool:
    return job["state"] in ("succeeded", "failed", "cancelled")


def wait_job(net: Network, job_id: int, timeout: float = 300) -> dict:
    return wait(net, f"/training-jobs/{job_id}", finished, timeout)


def start_pretraining(client: Any, admin: dict, seed: int = 0) -> int:
    """An admin's small pretraining job (tiny preset, two synthetic fields); its id."""
    response = client.post(
        "/api/v1/base-models/jobs",
        headers=admin,
        json={
            "preset": "tiny",
            "overrides": {"steps": 4, "val_every": 2, "patch_size": 32},
            "seed": seed,
            "synthetic": {"fields": 2, "shape": [64, 64], "seed": 2},
        },
    )
    assert response.status_code == 202, response.text
    return response.json()["id"]


def wait_pretraining(client: Any, admin: dict, job_id: int, timeout: float = 180) -> dict:
    """The pretraining job once it is no longer queued or running."""
    deadline = time.monotonic() + timeout
    path = f"/api/v1/base-models/jobs/{job_id}"
    while (job := client.get(path, headers=admin).json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.3)
    return job
