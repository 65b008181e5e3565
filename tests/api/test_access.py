"""The authorization matrix: every endpoint × role × own/foreign resource.

Roles: the network admin; the wide-field lab and its confocal partner (one pairing between
them); an outsider lab with its own pairing. "Foreign" answers 404 exactly like "missing".
"""

from __future__ import annotations

import pytest

from pairscope.testing.flow import microscope_body
from tests.api.conftest import Network

ROLES = ("none", "outsider", "partner", "lab", "admin")  # admin last: its writes succeed

# (method, path, body, {role: status}); {name} in paths and bodies is filled from network ids.
READ = {"none": 401, "admin": 200}
MATRIX = [
    (
        "GET",
        "/api/v1/institutions/{lab}",
        None,
        {**READ, "lab": 200, "partner": 200, "outsider": 404},
    ),
    (
        "GET",
        "/api/v1/institutions/{partner}",
        None,
        {**READ, "lab": 200, "partner": 200, "outsider": 404},
    ),
    (
        "GET",
        "/api/v1/institutions/{outsider}",
        None,
        {**READ, "lab": 404, "partner": 404, "outsider": 200},
    ),
    (
        "GET",
        "/api/v1/institutions/{ops}",
        None,
        {**READ, "lab": 404, "partner": 404, "outsider": 404},
    ),
    (
        "GET",
        "/api/v1/institutions/987654",
        None,
        {**READ, "admin": 404, "lab": 404, "partner": 404, "outsider": 404},
    ),
    (
        "GET",
        "/api/v1/microscopes/{lab_scope}",
        None,
        {**READ, "lab": 200, "partner": 200, "outsider": 404},
    ),
    (
        "GET",
        "/api/v1/microscopes/{partner_scope}",
        None,
        {**READ, "lab": 200, "partner": 200, "outsider": 404},
    ),
    (
        "GET",
        "/api/v1/microscopes/{outsider_wf}",
        None,
        {**READ, "lab": 404, "partner": 404, "outsider": 200},
    ),
    (
        "GET",
        "/api/v1/pairings/{pairing}",
        None,
        {**READ, "lab": 200, "partner": 200, "outsider": 404},
    ),
    (
        "GET",
        "/api/v1/pairings/{outsider_pairing}",
        None,
        {**READ, "lab": 404, "partner": 404, "outsider": 200},
    ),
    (
        "POST",
        "/api/v1/pairings/{pairing}/readiness",
        None,
        {"none": 401, "admin": 202, "lab": 202, "partner": 202, "outsider": 404},
    ),
    (
        "POST",
        "/api/v1/pairings/{outsider_pairing}/readiness",
        None,
        {"none": 401, "admin": 202, "lab": 404, "partner": 404, "outsider": 202},
    ),
    (
        "GET",
        "/api/v1/me",
        None,
        {"none": 401, "admin": 200, "lab": 200, "partner": 200, "outsider": 200},
    ),
]
ADMIN_ONLY = {"none": 401, "lab": 403, "partner": 403, "outsider": 403}
MATRIX += [
    (
        "POST",
        "/api/v1/institutions",
        {"name": "New", "country": "IT", "contact_email": "n@x.org"},
        {**ADMIN_ONLY, "admin": 201},
    ),
    ("PATCH", "/api/v1/institutions/{lab}", {"country": "CZ"}, {**ADMIN_ONLY, "admin": 200}),
    ("PATCH", "/api/v1/institutions/{outsider}", {"country": "CZ"}, {**ADMIN_ONLY, "admin": 200}),
    ("POST", "/api/v1/microscopes", "new_scope", {**ADMIN_ONLY, "admin": 201}),
    (
        "PATCH",
        "/api/v1/microscopes/{lab_scope}",
        {"make_model": "Olympus IX83"},
        {**ADMIN_ONLY, "admin": 200},
    ),
    ("DELETE", "/api/v1/microscopes/{outsider_wf}", None, {**ADMIN_ONLY, "admin": 409}),
    ("POST", "/api/v1/pairings", "new_pairing", {**ADMIN_ONLY, "admin": 201}),
    ("PATCH", "/api/v1/pairings/{pairing}", {"status": "archived"}, {**ADMIN_ONLY, "admin": 200}),
    (
        "PATCH",
        "/api/v1/pairings/{outsider_pairing}",
        {"name": "renamed"},
        {**ADMIN_ONLY, "admin": 200},
    ),
    (
        "POST",
        "/api/v1/keys",
        {"institution_id": "{lab}", "role": "lab"},
        {**ADMIN_ONLY, "admin": 201},
    ),
    ("GET", "/api/v1/keys", None, {**ADMIN_ONLY, "admin": 200}),
    ("DELETE", "/api/v1/institutions/{outsider}", None, {**ADMIN_ONLY, "admin": 409}),
    # The admin check comes before the lookup: a non-admin learns nothing about which ids exist.
    ("DELETE", "/api/v1/microscopes/424242", None, {**ADMIN_ONLY, "admin": 404}),
]


def _fill(value, ids):  # type: ignore[no-untyped-def]
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return ids[value[1:-1]]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _body(spec, net: Network):  # type: ignore[no-untyped-def]
    if spec == "new_scope":
        return microscope_body(net.ids["lab"], "WF-new", "widefield")
    if spec == "new_pairing":
        return {
            "name": "new",
            "lq_microscope_id": net.ids["outsider_wf"],
            "hq_microscope_id": net.ids["partner_scope"],
        }
    return _fill(spec, net.ids)


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"), MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX]
)
def test_authorization_matrix(network: Network, method, path, body, expected) -> None:  # type: ignore[no-untyped-def]
    url = path.format(**network.ids)
    for role in ROLES:
        who = None if role == "none" else role
        response = network.call(method, url, who=who, json=_body(body, network))
        assert response.status_code == expected[role], (role, method, url, response.text)
        if response.status_code == 404:
            error = response.json()["error"]
            assert error["code"] == "not_found" and "does not exist" in error["message"]


def test_foreign_404_is_indistinguishable_from_missing(network: Network) -> None:
    foreign = network.call("GET", f"/api/v1/pairings/{network.ids['outsider_pairing']}", who="lab")
    missing = network.call("GET", "/api/v1/pairings/424242", who="lab")
    assert foreign.status_code == missing.status_code == 404
    assert set(foreign.json()["error"]) == set(missing.json()["error"])


@pytest.mark.parametrize(
    ("who", "institutions", "microscopes", "pairings"),
    [
        (
            "admin",
            {"Network Operations", "Lab Institute", "Partner Institute", "Outsider Institute"},
            {"WF-1", "LSM-880", "WF-X", "CF-X"},
            {"lab-to-partner", "outsider-internal"},
        ),
        ("lab", {"Lab Institute", "Partner Institute"}, {"WF-1", "LSM-880"}, {"lab-to-partner"}),
        (
            "partner",
            {"Lab Institute", "Partner Institute"},
            {"WF-1", "LSM-880"},
            {"lab-to-partner"},
        ),
        ("outsider", {"Outsider Institute"}, {"WF-X", "CF-X"}, {"outsider-internal"}),
    ],
)
def test_lists_show_only_what_a_pairing_grants(
    network: Network, who, institutions, microscopes, pairings
) -> None:  # type: ignore[no-untyped-def]
    def names(path: str) -> set[str]:
        page = network.call("GET", path, who=who).json()
        assert page["total"] == len(page["items"])
        return {item["name"] for item in page["items"]}

    assert names("/api/v1/institutions") == institutions
    assert names("/api/v1/microscopes") == microscopes
    assert names("/api/v1/pairings") == pairings
    filtered = network.call(
        "GET", "/api/v1/microscopes", who=who, params={"institution_id": network.ids["outsider"]}
    ).json()
    assert ({m["name"] for m in filtered["items"]} == {"WF-X", "CF-X"}) == (
        who in ("admin", "outsider")
    )
