"""Client commands for the network's registry: institutions, microscopes (with their optics and
channels), pairings (with the readiness report a worker computes) and API keys. Each is a group
of verbs (`pairscope institutions list`); writes need an admin key, and a lab key's refusal is
the service's own 403 in one line (exit 2)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from pairscope.cli_support import (
    Subparsers,
    client_command,
    command_group,
    fields,
    make_client,
    option,
    print_json,
    reply,
    run_client,
    show_all,
    show_one,
    table,
    when,
)

MODALITIES = ("widefield", "confocal", "sim", "sted", "other")
ROLES = ("admin", "lab", "partner")
READINESS_POLL_S = 0.5


def _created(args: argparse.Namespace, what: str, value: dict[str, Any], line: str) -> None:
    """A create command's answer: the new object as JSON, or one line naming its id."""
    reply(args, value, f"{what} {value['id']} created: {line}")


# --------------------------------------------------------------------------- institutions


def _institutions_table(items: list[dict[str, Any]]) -> str:
    return table(
        ("id", "name", "country", "contact", "created"),
        [
            (i["id"], i["name"], i["country"], i["contact_email"], when(i["created_at"]))
            for i in items
        ],
    )


def _institution_fields(i: dict[str, Any]) -> str:
    return fields(
        [
            ("institution", i["id"]),
            ("name", i["name"]),
            ("country", i["country"]),
            ("contact", i["contact_email"]),
            ("created", when(i["created_at"])),
        ]
    )


def cmd_institutions_list(args: argparse.Namespace) -> int:
    return show_all(
        args,
        "/institutions",
        _institutions_table,
        "no institutions",
        name=args.name or None,
        country=args.country or None,
    )


def cmd_institutions_create(args: argparse.Namespace) -> int:
    def run() -> None:
        body = {"name": args.name, "country": args.country, "contact_email": args.contact_email}
        made = make_client(args).post("/institutions", json=body)
        _created(args, "institution", made, f"{made['name']} ({made['country']})")

    return run_client(run)


def cmd_institutions_show(args: argparse.Namespace) -> int:
    return show_one(args, f"/institutions/{args.id}", _institution_fields)


# --------------------------------------------------------------------------- microscopes


def parse_channel(text: str) -> dict[str, Any]:
    """`NAME:FLUOROPHORE:EXCITATION:EMISSION` (nm), or `NAME:EXCITATION:EMISSION` without a
    fluorophore; the service checks the ranges."""
    from pairscope.client import ClientError

    parts = text.split(":")
    if len(parts) < 3 or not parts[0].strip():
        raise ClientError(f"--channel {text!r}: expected NAME:FLUOROPHORE:EXCITATION:EMISSION")
    try:
        excitation, emission = float(parts[-2]), float(parts[-1])
    except ValueError as exc:
        raise ClientError(
            f"--channel {text!r}: excitation and emission are wavelengths in nm"
        ) from exc
    return {
        "name": parts[0].strip(),
        "fluorophore": ":".join(parts[1:-2]).strip(),
        "excitation_nm": excitation,
        "emission_nm": emission,
    }


def read_channels(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The channels from --channel options or from the --channels-file JSON list (one of them)."""
    from pairscope.client import ClientError

    if bool(args.channel) == bool(args.channels_file):
        raise ClientError("give the channels with --channel (repeated) or with --channels-file")
    if args.channel:
        return [parse_channel(text) for text in args.channel]
    path = Path(args.channels_file)
    try:
        channels = json.loads(path.read_text())
    except ValueError as exc:
        raise ClientError(f"{path}: not JSON ({exc})") from exc
    if isinstance(channels, dict) and "channels" in channels:
        channels = channels["channels"]  # a microscope as `microscopes show --json` prints it
    if not isinstance(channels, list):
        raise ClientError(f"{path}: expected a JSON list of channels")
    return channels


def _channel_names(m: dict[str, Any]) -> str:
    return ",".join(c["name"] for c in m["channels"])


def _microscopes_table(items: list[dict[str, Any]]) -> str:
    return table(
        ("id", "name", "institution", "modality", "mag", "NA", "n", "pixel µm", "channels"),
        [
            (
                m["id"],
                m["name"],
                m["institution_id"],
                m["modality"],
                f"{m['objective_magnification']:g}",
                f"{m['numerical_aperture']:g}",
                f"{m['immersion_index']:g}",
                f"{m['pixel_size_um']:g}",
                _channel_names(m),
            )
            for m in items
        ],
    )


def _microscope_fields(m: dict[str, Any]) -> str:
    head = fields(
        [
            ("microscope", m["id"]),
            ("name", m["name"]),
            ("institution", m["institution_id"]),
            ("modality", m["modality"]),
            ("make and model", m["make_model"]),
            ("magnification", f"{m['objective_magnification']:g}x"),
            ("NA", f"{m['numerical_aperture']:g}"),
            ("immersion index", f"{m['immersion_index']:g}"),
            ("pixel size", f"{m['pixel_size_um']:g} µm"),
            ("z step", f"{m['z_step_um']:g} µm" if m.get("z_step_um") else None),
            ("created", when(m["created_at"])),
        ]
    )
    channels = table(
        ("channel", "fluorophore", "excitation nm", "emission nm"),
        [
            (c["name"], c["fluorophore"], f"{c['excitation_nm']:g}", f"{c['emission_nm']:g}")
            for c in m["channels"]
        ],
    )
    return f"{head}\n\n{channels}"


def cmd_microscopes_list(args: argparse.Namespace) -> int:
    return show_all(
        args,
        "/microscopes",
        _microscopes_table,
        "no microscopes",
        institution_id=args.institution,
        modality=args.modality,
    )


def cmd_microscopes_create(args: argparse.Namespace) -> int:
    def run() -> None:
        body: dict[str, Any] = {
            "institution_id": args.institution,
            "name": args.name,
            "modality": args.modality,
            "make_model": args.make_model or "",
            "objective_magnification": args.magnification,
            "numerical_aperture": args.na,
            "immersion_index": args.immersion_index,
            "pixel_size_um": args.pixel_size,
            "channels": read_channels(args),
        }
        if args.z_step is not None:
            body["z_step_um"] = args.z_step
        made = make_client(args).post("/microscopes", json=body)
        _created(
            args,
            "microscope",
            made,
            f"{made['name']} ({made['modality']}, NA {made['numerical_aperture']:g}, "
            f"channels {_channel_names(made)})",
        )

    return run_client(run)


def cmd_microscopes_show(args: argparse.Namespace) -> int:
    return show_one(args, f"/microscopes/{args.id}", _microscope_fields)


# --------------------------------------------------------------------------- pairings


def parse_channel_pair(text: str) -> dict[str, str]:
    from pairscope.client import ClientError

    lq, sep, hq = text.partition(":")
    if not sep or not lq.strip() or not hq.strip():
        raise ClientError(f"--map {text!r}: expected LQ_CHANNEL:HQ_CHANNEL")
    return {"lq_channel": lq.strip(), "hq_channel": hq.strip()}


def _channel_map(p: dict[str, Any]) -> str:
    return ", ".join(f"{c['lq_channel']}→{c['hq_channel']}" for c in p["channel_map"])


def _pairings_table(items: list[dict[str, Any]]) -> str:
    return table(
        ("id", "name", "lq", "hq", "status", "channels", "created"),
        [
            (
                p["id"],
                p["name"],
                p["lq_microscope_id"],
                p["hq_microscope_id"],
                p["status"],
                _channel_map(p),
                when(p["created_at"]),
            )
            for p in items
        ],
    )


def _pairing_fields(p: dict[str, Any]) -> str:
    return fields(
        [
            ("pairing", p["id"]),
            ("name", p["name"]),
            ("LQ microscope", p["lq_microscope_id"]),
            ("HQ microscope", p["hq_microscope_id"]),
            ("status", p["status"]),
            ("channels", _channel_map(p)),
            ("created", when(p["created_at"])),
        ]
    )


def cmd_pairings_list(args: argparse.Namespace) -> int:
    return show_all(
        args,
        "/pairings",
        _pairings_table,
        "no pairings",
        status=args.status,
        microscope_id=args.microscope,
    )


def cmd_pairings_create(args: argparse.Namespace) -> int:
    def run() -> None:
        body: dict[str, Any] = {
            "name": args.name,
            "lq_microscope_id": args.lq,
            "hq_microscope_id": args.hq,
        }
        if args.map:
            body["channel_map"] = [parse_channel_pair(text) for text in args.map]
        made = make_client(args).post("/pairings", json=body)
        _created(
            args,
            "pairing",
            made,
            f"{made['name']}, microscope {made['lq_microscope_id']} → "
            f"{made['hq_microscope_id']}, channels {_channel_map(made)}",
        )

    return run_client(run)


def cmd_pairings_show(args: argparse.Namespace) -> int:
    return show_one(args, f"/pairings/{args.id}", _pairing_fields)


def _yes(value: bool | None) -> str:
    return "yes" if value else "NO"


def readiness_text(report: dict[str, Any]) -> str:
    """A finished readiness report: the verdict, the per-channel optics, what blocks, warnings."""
    body = report["report"]
    lines = [
        f"pairing {body['pairing_id']}: {'ready' if body['ready'] else 'NOT ready'} "
        f"(report {report['id']}, LQ→HQ scale {body['lq_to_hq_scale']:g})",
        "",
        table(
            (
                "LQ→HQ channel",
                "LQ resolves µm",
                "Nyquist px µm",
                "sampled",
                "HQ resolves µm",
                "Nyquist px µm",
                "sampled",
                "Δ emission nm",
            ),
            [
                (
                    f"{c['lq_channel']}→{c['hq_channel']}",
                    f"{c['lq_resolution_um']:g}",
                    f"{c['lq_nyquist_pixel_um']:g}",
                    _yes(c["lq_nyquist_sampled"]),
                    f"{c['hq_resolution_um']:g}",
                    f"{c['hq_nyquist_pixel_um']:g}",
                    _yes(c["hq_nyquist_sampled"]),
                    f"{c['emission_difference_nm']:g}",
                )
                for c in body["channels"]
            ],
        ),
    ]
    lines += [f"blocking: {text}" for text in body["blocking"]]
    lines += [f"warning: {text}" for text in body["warnings"]]
    return "\n".join(lines)


def cmd_pairings_readiness(args: argparse.Namespace) -> int:
    """Exit 0 with the report (ready or not: the report is the answer), 1 when no worker
    finished it in time or it failed."""

    def run() -> int:
        client = make_client(args)
        base = f"/pairings/{args.id}/readiness"
        if args.report is None:
            report = client.post(base)
        else:
            report = client.get(f"{base}/{args.report}")
        deadline = time.monotonic() + args.wait
        while report["state"] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(READINESS_POLL_S)
            report = client.get(f"{base}/{report['id']}")
        if args.json:
            print_json(report)
        if report["state"] == "succeeded":
            if not args.json:
                print(readiness_text(report))
            return 0
        if report["state"] == "failed":
            print(
                f"error: readiness report {report['id']} failed: {report['error']}", file=sys.stderr
            )
        else:
            print(
                f"error: readiness report {report['id']} is still {report['state']} after "
                f"{args.wait:g} s (is a worker running?); read it later with "
                f"`pairscope pairings readiness {args.id} --report {report['id']}`",
                file=sys.stderr,
            )
        return 1

    return run_client(run)


# --------------------------------------------------------------------------- keys


def _keys_table(items: list[dict[str, Any]]) -> str:
    return table(
        ("id", "institution", "role", "prefix", "label", "created", "last used", "revoked"),
        [
            (
                k["id"],
                k["institution_id"],
                k["role"],
                k["key_prefix"],
                k["label"],
                when(k["created_at"]),
                when(k["last_used_at"]),
                when(k["revoked_at"]),
            )
            for k in items
        ],
    )


def cmd_keys_list(args: argparse.Namespace) -> int:
    return show_all(
        args, "/keys", _keys_table, "no keys", institution_id=args.institution, role=args.role
    )


def cmd_keys_create(args: argparse.Namespace) -> int:
    def run() -> None:
        body = {"institution_id": args.institution, "role": args.role, "label": args.label or ""}
        made = make_client(args).post("/keys", json=body)
        if args.json:
            print_json(made)
            return
        print(
            f"{made['role']} key {made['id']} for institution {made['institution_id']} "
            "(shown once):",
            file=sys.stderr,
        )
        print(made["key"])

    return run_client(run)


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    def run() -> None:
        make_client(args).request("DELETE", f"/keys/{args.id}")
        print(f"key {args.id} revoked: the service refuses it from now on")

    return run_client(run)


# --------------------------------------------------------------------------- the parser


def register(sub: Subparsers) -> None:
    _institutions(sub)
    _microscopes(sub)
    _pairings(sub)
    _keys(sub)


def _institutions(sub: Subparsers) -> None:
    verbs = command_group(
        sub,
        "institutions",
        "the network's institutions: list, create, show",
        "Any key lists the institutions it sees (its own and its partners'); creating one "
        "needs an admin key.",
        "pairscope institutions list",
    )
    client_command(
        verbs,
        "list",
        "list the institutions this key sees",
        "One row per institution: id, name, country, contact e-mail, when it was registered.",
        """
pairscope institutions list
pairscope institutions list --country PL --json | jq '.[].id'
""",
        cmd_institutions_list,
        [
            option("--name", help="only names containing this text (any case)"),
            option("--country", help="only this country, as registered"),
        ],
        json="the institutions",
    )
    client_command(
        verbs,
        "create",
        "register an institution (admin key)",
        "Prints the new institution's id, which microscopes and keys are registered under.",
        """
pairscope institutions create --name 'Widefield Lab' --country PL --contact-email a@lab.org
pairscope institutions create --name 'Confocal Core' --country CH --contact-email c@core.org --json
""",
        cmd_institutions_create,
        [
            option("--name", required=True, help="unique name of the institution"),
            option("--country", required=True, help="country (2 to 100 characters)"),
            option("--contact-email", required=True, help="who to write to about its data"),
        ],
        json="the new institution",
    )
    client_command(
        verbs,
        "show",
        "show one institution",
        "Its name, country, contact and registration date.",
        "pairscope institutions show 2",
        cmd_institutions_show,
        [option("id", type=int, metavar="ID", help="the institution's id")],
        json="the institution",
    )


def _microscopes(sub: Subparsers) -> None:
    verbs = command_group(
        sub,
        "microscopes",
        "microscopes with their optics and channels: list, create, show",
        "A pairing joins two registered microscopes; their optics decide the readiness report "
        "and how the aligner resamples. Creating one needs an admin key.",
        "pairscope microscopes list --institution 2",
    )
    client_command(
        verbs,
        "list",
        "list the microscopes this key sees",
        "One row per microscope: its institution, modality, optics and channel names.",
        """
pairscope microscopes list
pairscope microscopes list --institution 2 --modality widefield --json
""",
        cmd_microscopes_list,
        [
            option("--institution", type=int, metavar="ID", help="only this institution's"),
            option("--modality", choices=MODALITIES, help="only this modality"),
        ],
        json="the microscopes",
    )
    client_command(
        verbs,
        "create",
        "register a microscope with its optics and channels (admin key)",
        """
Channels come as --channel NAME:FLUOROPHORE:EXCITATION:EMISSION (nm; repeat it, one per
channel, in the order of the image's channel axis; NAME:EXCITATION:EMISSION leaves the
fluorophore empty), or as --channels-file: a JSON list of {"name", "fluorophore",
"excitation_nm", "emission_nm"} (or a microscope as `microscopes show --json` prints it).
The service checks the physics (NA not above the immersion index, wavelengths 200-1200 nm)
and names the field it refuses.
""",
        """
pairscope microscopes create --institution 2 --name 'WF 60x' --modality widefield \\
    --magnification 60 --na 1.4 --immersion-index 1.515 --pixel-size 0.08 \\
    --channel Hoechst:'Hoechst 33342':350:461 --channel AF488:'Alexa Fluor 488':495:520
pairscope microscopes create --institution 3 --name 'Confocal 63x' --modality confocal \\
    --magnification 63 --na 1.4 --immersion-index 1.515 --pixel-size 0.08 \\
    --channels-file channels.json
""",
        cmd_microscopes_create,
        [
            option("--institution", type=int, required=True, metavar="ID", help="owner"),
            option("--name", required=True, help="a name unique within the institution"),
            option("--modality", choices=MODALITIES, required=True, help="imaging technique"),
            option("--make-model", help="manufacturer and model, as free text"),
            option(
                "--magnification",
                type=float,
                required=True,
                metavar="X",
                help="objective magnification, e.g. 60",
            ),
            option("--na", type=float, required=True, help="numerical aperture of the objective"),
            option(
                "--immersion-index",
                type=float,
                required=True,
                metavar="N",
                help="refractive index of the immersion medium (air 1.0, water 1.33, oil 1.515)",
            ),
            option(
                "--pixel-size",
                type=float,
                required=True,
                metavar="UM",
                help="µm per pixel in the sample",
            ),
            option("--z-step", type=float, metavar="UM", help="µm between planes of a stack"),
            option(
                "--channel",
                action="append",
                metavar="NAME:FLUOR:EX:EM",
                help="one channel (repeatable): name, fluorophore, excitation and emission in nm",
            ),
            option(
                "--channels-file",
                metavar="JSON",
                help="the channels as a JSON file instead of --channel",
            ),
        ],
        json="the new microscope",
    )
    client_command(
        verbs,
        "show",
        "show one microscope with its channels",
        "Its optics, then one row per channel: fluorophore, excitation and emission.",
        """
pairscope microscopes show 4
pairscope microscopes show 4 --json > wf60.json
""",
        cmd_microscopes_show,
        [option("id", type=int, metavar="ID", help="the microscope's id")],
        json="the microscope",
    )


def _pairings(sub: Subparsers) -> None:
    verbs = command_group(
        sub,
        "pairings",
        "pairings of an LQ microscope with an HQ reference: list, create, show, readiness",
        "A pairing is what images are uploaded to and what a model learns; creating one needs "
        "an admin key. The readiness report checks the optics before any image is uploaded.",
        "pairscope pairings list",
    )
    client_command(
        verbs,
        "list",
        "list the pairings this key sees",
        "One row per pairing: its LQ and HQ microscope ids, status and channel map.",
        """
pairscope pairings list
pairscope pairings list --status active --microscope 4 --json
""",
        cmd_pairings_list,
        [
            option("--status", choices=["active", "archived"], help="only this status"),
            option(
                "--microscope",
                type=int,
                metavar="ID",
                help="only pairings with this microscope (either side)",
            ),
        ],
        json="the pairings",
    )
    client_command(
        verbs,
        "create",
        "pair an LQ microscope with an HQ reference (admin key)",
        """
Channels of equal name are paired unless --map says otherwise (repeat it, one per LQ
channel that has an HQ counterpart).
""",
        """
pairscope pairings create --name wf-to-confocal --lq 4 --hq 5
pairscope pairings create --name wf-to-sted --lq 4 --hq 6 --map DAPI:Hoechst --map GFP:AF488
""",
        cmd_pairings_create,
        [
            option("--name", required=True, help="a name for the pairing"),
            option("--lq", type=int, required=True, metavar="ID", help="the LQ microscope"),
            option("--hq", type=int, required=True, metavar="ID", help="the HQ microscope"),
            option(
                "--map",
                action="append",
                metavar="LQ:HQ",
                help="an LQ channel and its HQ counterpart (repeatable; default: equal names)",
            ),
        ],
        json="the new pairing",
    )
    client_command(
        verbs,
        "show",
        "show one pairing",
        "Its microscopes, status and channel map.",
        "pairscope pairings show 1",
        cmd_pairings_show,
        [option("id", type=int, metavar="ID", help="the pairing's id")],
        json="the pairing",
    )
    client_command(
        verbs,
        "readiness",
        "ask a worker whether the pairing's optics can be learned, and show its report",
        """
Per mapped channel: the resolution each side reaches (Rayleigh), whether its pixels sample
it at Nyquist, and how far the emission bands lie apart; then what blocks training and the
warnings. Exit 0 with the report (ready or not), 1 when no worker finished it in --wait.
""",
        """
pairscope pairings readiness 1
pairscope pairings readiness 1 --json | jq .report.ready
pairscope pairings readiness 1 --report 3     # an earlier report, without a new request
""",
        cmd_pairings_readiness,
        [
            option("id", type=int, metavar="ID", help="the pairing's id"),
            option(
                "--report",
                type=int,
                metavar="ID",
                help="read this earlier report instead of a new one",
            ),
            option(
                "--wait",
                type=float,
                default=120,
                metavar="SECONDS",
                help="how long to wait for a worker",
            ),
        ],
        json="the report",
    )


def _keys(sub: Subparsers) -> None:
    verbs = command_group(
        sub,
        "keys",
        "API keys of institutions: list, create, revoke (admin key)",
        "A lab key uploads, trains and enhances for its institution's pairings; a partner key "
        "uploads the reference side; an admin key runs the registry. Only admins manage keys.",
        "pairscope keys list --institution 2",
    )
    client_command(
        verbs,
        "list",
        "list the issued keys (never the keys themselves)",
        "One row per key: institution, role, the first characters, label, last use, revocation.",
        """
pairscope keys list
pairscope keys list --institution 2 --role lab --json
""",
        cmd_keys_list,
        [
            option("--institution", type=int, metavar="ID", help="only this institution's"),
            option("--role", choices=ROLES, help="only this role"),
        ],
        json="the keys",
    )
    client_command(
        verbs,
        "create",
        "issue a key for an institution and print it once",
        """
The key goes to stdout (its description to stderr), so `KEY=$(pairscope keys create ...)`
keeps it; with --json, the whole answer (the key included) goes to stdout.
""",
        """
pairscope keys create --institution 2 --role lab --label 'microscope PC'
LAB_KEY=$(pairscope keys create --institution 2 --role lab)
""",
        cmd_keys_create,
        [
            option("--institution", type=int, required=True, metavar="ID", help="whose key"),
            option("--role", choices=ROLES, required=True, help="what the key may do"),
            option("--label", help="a note to recognise the key by"),
        ],
        json="the new key and its description",
    )
    client_command(
        verbs,
        "revoke",
        "revoke a key: the service refuses it from then on",
        "The key's row stays (with the revocation time) for the audit trail.",
        "pairscope keys revoke 7",
        cmd_keys_revoke,
        [option("id", type=int, metavar="ID", help="the key's id (from `keys list`)")],
    )
