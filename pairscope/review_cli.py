"""Client commands for what a lab reviews on a pairing: its pairs (the aligner's verdicts, with
previews and acceptance by hand), its dataset snapshots, its aliases and their audit log, and a
version's evaluation report and saved model. `pairs`, `datasets` and `aliases` are groups of
verbs like the registry's; `report` and `model` are single downloads like `versions`."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from pairscope.cli_support import (
    PAIRING,
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

PAIR_STATUSES = ("pending", "aligning", "accepted", "rejected")


def _size(count: int) -> str:
    return f"{count / 1e6:.1f} MB" if count >= 1e5 else f"{count / 1e3:.1f} kB"


# --------------------------------------------------------------------------- pairs


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _pairs_table(items: list[dict[str, Any]]) -> str:
    return table(
        ("id", "field", "status", "NCC", "preview", "by hand", "reason"),
        [
            (
                p["id"],
                p["field_id"],
                p["status"],
                _score(p["score"]),
                "yes" if p["has_preview"] else "-",
                when(p["accepted_manually_at"] or p["rejected_manually_at"]),
                p["reason"],
            )
            for p in items
        ],
    )


def cmd_pairs_list(args: argparse.Namespace) -> int:
    return show_all(
        args,
        f"/pairings/{args.pairing}/pairs",
        _pairs_table,
        f"pairing {args.pairing} has no {args.status + ' ' if args.status else ''}pairs",
        status=args.status,
        field_id=args.field,
    )


def cmd_pairs_accept(args: argparse.Namespace) -> int:
    def run() -> None:
        pair = make_client(args).post(f"/pairings/{args.pairing}/pairs/{args.pair}/accept")
        reply(
            args,
            pair,
            f"pair {pair['id']} (field {pair['field_id']}) accepted by hand; it joins the "
            "next snapshot",
        )

    return run_client(run)


def cmd_pairs_reject(args: argparse.Namespace) -> int:
    def run() -> None:
        pair = make_client(args).post(
            f"/pairings/{args.pairing}/pairs/{args.pair}/reject", json={"reason": args.reason}
        )
        reply(
            args,
            pair,
            f"pair {pair['id']} (field {pair['field_id']}) rejected by hand: {pair['reason']}; "
            "later snapshots leave it out (earlier ones keep it)",
        )

    return run_client(run)


def cmd_pairs_preview(args: argparse.Namespace) -> int:
    def run() -> None:
        dest = Path(args.out or f"pair-{args.pair}-preview.png")
        size = make_client(args).download(
            f"/pairings/{args.pairing}/pairs/{args.pair}/preview.png", dest
        )
        print(f"preview of pair {args.pair} written to {dest} ({_size(size)})")

    return run_client(run)


# --------------------------------------------------------------------------- datasets


def _counts(d: dict[str, Any]) -> tuple[int, int, int]:
    counts = d.get("counts") or {}
    return counts.get("train", 0), counts.get("validation", 0), counts.get("test", 0)


def _datasets_table(items: list[dict[str, Any]]) -> str:
    return table(
        ("id", "created", "seed", "train", "validation", "test", "digest"),
        [(d["id"], when(d["created_at"]), d["seed"], *_counts(d), d["digest"][:16]) for d in items],
    )


def _dataset_text(d: dict[str, Any]) -> str:
    train, validation, test = _counts(d)
    head = fields(
        [
            ("dataset", d["id"]),
            ("pairing", d["pairing_id"]),
            ("created", when(d["created_at"])),
            ("seed", d["seed"]),
            ("fields", f"{train} train, {validation} validation, {test} test"),
            ("digest", d["digest"]),
        ]
    )
    members = table(
        ("field", "split", "pair", "lq image", "hq image"),
        [
            (m["field_id"], m["split"], m["pair_id"], m["lq_image_id"], m["hq_image_id"])
            for m in d["members"]
        ],
    )
    return f"{head}\n\n{members}"


def cmd_datasets_list(args: argparse.Namespace) -> int:
    return show_all(
        args,
        f"/pairings/{args.pairing}/datasets",
        _datasets_table,
        f"pairing {args.pairing} has no datasets yet; make one with `pairscope snapshot`",
    )


def cmd_datasets_show(args: argparse.Namespace) -> int:
    return show_one(args, f"/pairings/{args.pairing}/datasets/{args.dataset}", _dataset_text)


# --------------------------------------------------------------------------- aliases


def _aliases_table(items: list[dict[str, Any]]) -> str:
    return table(
        ("alias", "version", "moved"),
        [(a["name"], a["version"], when(a["updated_at"])) for a in items],
    )


def _events_table(items: list[dict[str, Any]]) -> str:
    return table(
        ("when", "alias", "action", "from", "to", "by key", "override reason"),
        [
            (
                when(e["created_at"]),
                e["alias"],
                e["action"],
                "-" if e["from_version"] is None else e["from_version"],
                e["to_version"],
                e["principal_id"],
                e["override_reason"],
            )
            for e in items
        ],
    )


def cmd_aliases_list(args: argparse.Namespace) -> int:
    return show_one(
        args,
        f"/pairings/{args.pairing}/aliases",
        _aliases_table,
        f"pairing {args.pairing} has no aliases yet; set one with `pairscope promote`",
    )


def cmd_aliases_log(args: argparse.Namespace) -> int:
    return show_all(
        args,
        f"/pairings/{args.pairing}/alias-events",
        _events_table,
        f"pairing {args.pairing}: no alias has moved yet",
    )


# --------------------------------------------------------------------------- downloads


def cmd_report(args: argparse.Namespace) -> int:
    def run() -> None:
        client = make_client(args)
        base = f"/pairings/{args.pairing}/versions/{args.version}"
        if args.json:
            print_json(client.get(f"{base}/report.json"))
            return
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for suffix in ("report.json", "report.png"):
            dest = out / f"v{args.version}-{suffix}"
            size = client.download(f"{base}/{suffix}", dest)
            print(f"{dest} ({_size(size)})")

    return run_client(run)


def cmd_model(args: argparse.Namespace) -> int:
    def run() -> None:
        dest = Path(args.out or f"pairing-{args.pairing}-v{args.version}.zip")
        size = make_client(args).download(
            f"/pairings/{args.pairing}/versions/{args.version}/model", dest
        )
        print(f"model of version {args.version} written to {dest} ({_size(size)})")
        print(f"enhance with it here: pairscope enhance --model {dest} IN.tif OUT.ome.tif")

    return run_client(run)


# --------------------------------------------------------------------------- the parser


def register(sub: Subparsers) -> None:
    _pairs(sub)
    _datasets(sub)
    _aliases(sub)
    _downloads(sub)


PAIR = option("pair", type=int, metavar="PAIR", help="the pair's id")
VERSION = option("--version", type=int, required=True, metavar="N", help="version number")


def _pairs(sub: Subparsers) -> None:
    verbs = command_group(
        sub,
        "pairs",
        "a pairing's pairs (LQ and HQ image of one field): list, accept, reject, preview",
        "After both sides of a field are uploaded a worker aligns them and its quality gate "
        "accepts or rejects the pair. Look at a rejected pair's preview and accept it by hand "
        "when the gate was wrong, or reject an accepted one with a reason (who and when are "
        "recorded either way).",
        "pairscope pairs list --pairing 1 --status rejected",
    )
    client_command(
        verbs,
        "list",
        "list a pairing's pairs with the aligner's verdict",
        "One row per field: status, the alignment score (worst channel's NCC), whether a "
        "preview exists, when it was accepted or rejected by hand, and why a pair was rejected.",
        """
pairscope pairs list --pairing 1
pairscope pairs list --pairing 1 --status rejected --json | jq '.[].id'
""",
        cmd_pairs_list,
        [
            PAIRING,
            option("--status", choices=PAIR_STATUSES, help="only pairs in this state"),
            option("--field", metavar="FIELD_ID", help="only this field"),
        ],
        json="the pairs",
    )
    client_command(
        verbs,
        "accept",
        "accept a rejected pair by hand, overruling the quality gate",
        "Only a rejected pair that the aligner could still align can be accepted; the service "
        "says why otherwise (exit 2).",
        "pairscope pairs accept --pairing 1 12",
        cmd_pairs_accept,
        [PAIRING, PAIR],
        json="the accepted pair",
    )
    client_command(
        verbs,
        "reject",
        "reject an accepted pair by hand, with a reason",
        "For a field the quality gate let through but that must not be trained on (out of "
        "focus, the wrong sample). Later snapshots leave it out; snapshots that already hold "
        "it keep it, as snapshots never change. `pairs accept` takes it back.",
        """
pairscope pairs reject --pairing 1 12 --reason "out of focus"
pairscope pairs reject --pairing 1 12 --reason "wrong sample" --json
""",
        cmd_pairs_reject,
        [
            PAIRING,
            PAIR,
            option(
                "--reason",
                required=True,
                metavar="TEXT",
                help="why it must not be trained on (1-500 characters; shown beside the pair)",
            ),
        ],
        json="the rejected pair",
    )
    client_command(
        verbs,
        "preview",
        "download a pair's preview PNG (LQ beside HQ after alignment)",
        "Both sides percentile-normalised on the HQ grid, channels as a colour composite.",
        """
pairscope pairs preview --pairing 1 12
pairscope pairs preview --pairing 1 12 --out field_012.png
""",
        cmd_pairs_preview,
        [
            PAIRING,
            PAIR,
            option(
                "--out", metavar="PNG", help="where to write it (default pair-PAIR-preview.png)"
            ),
        ],
    )


def _datasets(sub: Subparsers) -> None:
    verbs = command_group(
        sub,
        "datasets",
        "a pairing's dataset snapshots: list, show",
        "Snapshots are made with `pairscope snapshot`; each is immutable and digested, so a "
        "version names exactly the pairs it learned from.",
        "pairscope datasets list --pairing 1",
    )
    client_command(
        verbs,
        "list",
        "list a pairing's dataset snapshots",
        "One row per snapshot: when, its seed, how many fields each split holds, its digest.",
        """
pairscope datasets list --pairing 1
pairscope datasets list --pairing 1 --json | jq '.[-1].id'
""",
        cmd_datasets_list,
        [PAIRING],
        json="the datasets (with their members)",
    )
    client_command(
        verbs,
        "show",
        "show one snapshot and the split of each field",
        "Its seed, split sizes and digest, then one row per field: split, pair and image ids.",
        "pairscope datasets show --pairing 1 2",
        cmd_datasets_show,
        [PAIRING, option("dataset", type=int, metavar="DATASET", help="the dataset's id")],
        json="the dataset",
    )


def _aliases(sub: Subparsers) -> None:
    verbs = command_group(
        sub,
        "aliases",
        "a pairing's aliases (production, staging) and their audit log: list, log",
        "Aliases are moved with `pairscope promote` and `pairscope rollback`; every move is "
        "logged with the key that made it and, for a gate override, its reason.",
        "pairscope aliases list --pairing 1",
    )
    client_command(
        verbs,
        "list",
        "which version each alias points at",
        "One row per alias: its version and when it last moved.",
        """
pairscope aliases list --pairing 1
pairscope aliases list --pairing 1 --json
""",
        cmd_aliases_list,
        [PAIRING],
        json="the aliases",
    )
    client_command(
        verbs,
        "log",
        "the audit log of alias moves",
        "Oldest first: when, which alias, promotion or rollback, from and to which version, "
        "the key that moved it and any gate override's reason.",
        """
pairscope aliases log --pairing 1
pairscope aliases log --pairing 1 --json | jq '.[] | select(.override_reason)'
""",
        cmd_aliases_log,
        [PAIRING],
        json="the events",
    )


def _downloads(sub: Subparsers) -> None:
    client_command(
        sub,
        "report",
        "download a version's evaluation report (report.json and report.png)",
        """
The JSON holds every test field's scores for the generator, Richardson-Lucy and the input;
the PNG their box plots and an example panel. Written to --out as vN-report.json and
vN-report.png; with --json the JSON report is printed instead, and nothing written.
""",
        """
pairscope report --pairing 1 --version 2 --out reports/
pairscope report --pairing 1 --version 2 --json | jq .report.medians
""",
        cmd_report,
        [
            PAIRING,
            VERSION,
            option("--out", default=".", metavar="FOLDER", help="folder for the two files"),
        ],
        json="report.json",
    )
    client_command(
        sub,
        "model",
        "download a version's saved model (.zip)",
        "The zip `pairscope enhance --model` reads, to enhance files without the service.",
        """
pairscope model --pairing 1 --version 2
pairscope model --pairing 1 --version 2 --out wf-to-confocal-v2.zip
""",
        cmd_model,
        [
            PAIRING,
            VERSION,
            option("--out", metavar="ZIP", help="where to write it (default pairing-ID-vN.zip)"),
        ],
    )
