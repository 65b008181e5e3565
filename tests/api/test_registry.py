"""Registering institutions, microscopes and pairings, and the rules that guard them."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from api.db import make_engine
from api.tables import Base
from pairscope.testing.flow import CHANNELS, microscope_body
from tests.api.conftest import Network


def row_counts(settings) -> dict[str, int]:  # type: ignore[no-untyped-def]
    engine = make_engine(settings)
    with engine.connect() as connection:
        counts = {
            table.name: connection.scalar(select(func.count()).select_from(table))
            for table in Base.metadata.sorted_tables
        }
    engine.dispose()
    return counts


def test_walkthrough_creates_a_pairing_with_channel_map(network: Network) -> None:
    pairing = network.call("GET", f"/api/v1/pairings/{network.ids['pairing']}").json()
    assert pairing["status"] == "active"
    assert [p["lq_channel"] for p in pairing["channel_map"]] == ["DAPI", "AF488", "AF555"]
    scope = network.call("GET", f"/api/v1/microscopes/{network.ids['partner_scope']}").json()
    assert scope["numerical_aperture"] == 1.4
    assert [c["emission_nm"] for c in scope["channels"]] == [461, 520, 565]


def test_lists_paginate_and_filter(network: Network) -> None:
    page = network.call("GET", "/api/v1/microscopes", params={"limit": 2, "offset": 1}).json()
    assert page["total"] == 4 and page["limit"] == 2 and page["offset"] == 1
    assert len(page["items"]) == 2
    confocal = network.call("GET", "/api/v1/microscopes", params={"modality": "confocal"}).json()
    assert {m["name"] for m in confocal["items"]} == {"LSM-880", "CF-X"}
    by_scope = network.call(
        "GET", "/api/v1/pairings", params={"microscope_id": network.ids["partner_scope"]}
    ).json()
    assert [p["name"] for p in by_scope["items"]] == ["lab-to-partner"]
    french = network.call("GET", "/api/v1/institutions", params={"country": "FR"}).json()
    assert [i["name"] for i in french["items"]] == ["Outsider Institute"]


def test_archiving_a_pairing(network: Network) -> None:
    path = f"/api/v1/pairings/{network.ids['pairing']}"
    assert network.call("PATCH", path, json={"status": "archived"}).json()["status"] == "archived"
    active = network.call("GET", "/api/v1/pairings", params={"status": "active"}).json()
    assert [p["name"] for p in active["items"]] == ["outsider-internal"]


BAD_MICROSCOPES = [
    ({"numerical_aperture": 0}, "numerical_aperture"),
    ({"numerical_aperture": 1.8}, "numerical_aperture"),
    ({"numerical_aperture": 1.45, "immersion_index": 1.33}, "immersion_index"),
    ({"immersion_index": 0.9}, "immersion_index"),
    ({"immersion_index": 2.1}, "immersion_index"),
    ({"pixel_size_um": 0}, "pixel_size_um"),
    ({"pixel_size_um": -0.1}, "pixel_size_um"),
    ({"modality": "x-ray"}, "modality"),
    ({"channels": []}, "channels"),
    ({"channels": [{**CHANNELS[0], "emission_nm": 150}]}, "channels.0.emission_nm"),
    ({"channels": [{**CHANNELS[0], "excitation_nm": 1300}]}, "channels.0.excitation_nm"),
    ({"channels": [CHANNELS[0], CHANNELS[0]]}, "channels"),
    ({"unknown_field": 1}, "unknown_field"),
]


@pytest.mark.parametrize(("change", "field"), BAD_MICROSCOPES)
def test_bad_microscope_is_refused_naming_the_field_and_writes_nothing(
    network: Network, settings, change: dict, field: str
) -> None:  # type: ignore[no-untyped-def]
    before = row_counts(settings)
    body = {**microscope_body(network.ids["lab"], "New scope", "widefield"), **change}
    response = network.call("POST", "/api/v1/microscopes", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert field in error["message"]
    assert field in [f["field"] for f in error["fields"]]
    assert row_counts(settings) == before


def test_na_above_immersion_index_explains_why(network: Network) -> None:
    body = microscope_body(
        network.ids["lab"], "Water", "widefield", numerical_aperture=1.45, immersion_index=1.33
    )
    message = network.call("POST", "/api/v1/microscopes", json=body).json()["error"]["message"]
    assert "cannot exceed immersion_index" in message


def test_bad_pairings_are_refused_with_a_reason(network: Network, settings) -> None:  # type: ignore[no-untyped-def]
    before = row_counts(settings)
    lab_scope = network.ids["lab_scope"]
    second_wf = network.call(
        "POST",
        "/api/v1/microscopes",
        json=microscope_body(network.ids["lab"], "WF-2", "widefield"),
    ).json()["id"]
    before = row_counts(settings)
    cases = [
        ({"lq_microscope_id": lab_scope, "hq_microscope_id": lab_scope}, 422, "itself"),
        ({"lq_microscope_id": lab_scope, "hq_microscope_id": second_wf}, 422, "same institution"),
        ({"lq_microscope_id": lab_scope, "hq_microscope_id": 999999}, 422, "does not exist"),
        (
            {"lq_microscope_id": lab_scope, "hq_microscope_id": network.ids["partner_scope"]},
            409,
            "already paired",
        ),
        (
            {
                "lq_microscope_id": lab_scope,
                "hq_microscope_id": network.ids["outsider_cf"],
                "channel_map": [{"lq_channel": "DAPI", "hq_channel": "Cy5"}],
            },
            422,
            "no channel 'Cy5'",
        ),
        (
            {
                "lq_microscope_id": lab_scope,
                "hq_microscope_id": network.ids["outsider_cf"],
                "channel_map": [
                    {"lq_channel": "DAPI", "hq_channel": "DAPI"},
                    {"lq_channel": "DAPI", "hq_channel": "AF488"},
                ],
            },
            422,
            "only once",
        ),
    ]
    for i, (ids, status, reason) in enumerate(cases):
        response = network.call("POST", "/api/v1/pairings", json={"name": f"bad-{i}", **ids})
        assert response.status_code == status, (ids, response.text)
        assert reason in response.json()["error"]["message"], response.text
    assert row_counts(settings) == before


def test_explicit_channel_map_between_differently_named_channels(network: Network) -> None:
    other = microscope_body(
        network.ids["partner"],
        "SP8",
        "confocal",
        channels=[{"name": "405", "excitation_nm": 405, "emission_nm": 460}],
    )
    hq = network.call("POST", "/api/v1/microscopes", json=other).json()["id"]
    implicit = network.call(
        "POST",
        "/api/v1/pairings",
        json={
            "name": "no-common",
            "lq_microscope_id": network.ids["lab_scope"],
            "hq_microscope_id": hq,
        },
    )
    assert implicit.status_code == 422
    assert "no channel names in common" in implicit.json()["error"]["message"]
    explicit = network.call(
        "POST",
        "/api/v1/pairings",
        json={
            "name": "explicit",
            "lq_microscope_id": network.ids["lab_scope"],
            "hq_microscope_id": hq,
            "channel_map": [{"lq_channel": "DAPI", "hq_channel": "405"}],
        },
    )
    assert explicit.status_code == 201, explicit.text
    assert explicit.json()["channel_map"] == [{"lq_channel": "DAPI", "hq_channel": "405"}]


def test_duplicates_conflict(network: Network, settings) -> None:  # type: ignore[no-untyped-def]
    before = row_counts(settings)
    inst = network.call(
        "POST",
        "/api/v1/institutions",
        json={"name": "Lab Institute", "country": "PL", "contact_email": "a@b.org"},
    )
    assert inst.status_code == 409 and "already exists" in inst.json()["error"]["message"]
    scope = network.call(
        "POST", "/api/v1/microscopes", json=microscope_body(network.ids["lab"], "WF-1", "widefield")
    )
    assert scope.status_code == 409
    pairing = network.call(
        "POST",
        "/api/v1/pairings",
        json={
            "name": "lab-to-partner",
            "lq_microscope_id": network.ids["outsider_wf"],
            "hq_microscope_id": network.ids["partner_scope"],
        },
    )
    assert pairing.status_code == 409
    assert row_counts(settings) == before


def test_bad_institution_fields(network: Network) -> None:
    response = network.call(
        "POST",
        "/api/v1/institutions",
        json={"name": "", "country": "PL", "contact_email": "not-an-email"},
    )
    assert response.status_code == 422
    fields = {f["field"] for f in response.json()["error"]["fields"]}
    assert fields == {"name", "contact_email"}


def test_deleting_what_is_in_use_conflicts(network: Network) -> None:
    response = network.call("DELETE", f"/api/v1/microscopes/{network.ids['lab_scope']}")
    assert response.status_code == 409 and "pairing" in response.json()["error"]["message"]
    response = network.call("DELETE", f"/api/v1/institutions/{network.ids['lab']}")
    assert response.status_code == 409
    spare = network.call(
        "POST", "/api/v1/microscopes", json=microscope_body(network.ids["lab"], "Spare", "other")
    ).json()["id"]
    assert network.call("DELETE", f"/api/v1/microscopes/{spare}").status_code == 204
    assert network.call("GET", f"/api/v1/microscopes/{spare}").status_code == 404


def test_microscope_optics_can_be_corrected(network: Network) -> None:
    path = f"/api/v1/microscopes/{network.ids['lab_scope']}"
    updated = network.call("PATCH", path, json={"pixel_size_um": 0.1, "make_model": "Nikon Ti2"})
    assert updated.status_code == 200
    assert updated.json()["pixel_size_um"] == 0.1
    bad = network.call("PATCH", path, json={"numerical_aperture": 1.6})
    assert bad.status_code == 422 and "immersion_index" in bad.json()["error"]["message"]
