"""A simulated cross-system pairing with optics outside the base's training range (issue 19 (b)).

The transfer benchmark asks whether a base still helps a pairing unlike anything it saw. This
writes such a pairing in the W2S folder layout (``lq/field_NNN.tif`` and ``hq/field_NNN.tif``,
``CYX`` uint16, fields 001–080), so :mod:`bench.transfer` runs on it unchanged::

    .venv/bin/python -m bench.simulated_pairing --out bench/out/simulated-oor
    .venv/bin/python -m bench.transfer --data bench/out/simulated-oor \\
        --out bench/out/transfer-oor --fields 4 --minutes 3

The default optics sit outside the shipped base's recipe
(:data:`models.cli_pretraining.PRETRAIN_RECIPE` over :class:`models.base_models.SyntheticRecipe`)
on every axis it draws: a coarse 0.3 µm pixel (recipe 0.065–0.2), a dry NA 0.5 wide-field
objective (recipe NA 0.8–1.4, oil), and a bright 2000-photon sample (recipe 5–500), imaged
against a dry NA 0.95 confocal with twice the recipe's out-of-focus haze. Out of range on the
bright side, not the dim one: at 3 photons (tried) the wide-field fields hold almost no signal
(noise 6× the structure's contrast) and every method, BM3D included, scores the same. Field
``i`` is simulated with seed ``seed · 1000 + i``, so the folder is the same on every machine.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

OUT_OF_RANGE = {
    "pixel_size_um": 0.3,
    "wf_na": 0.5,
    "cf_na": 0.95,
    "immersion_index": 1.0,
    "wf_photons": 2000.0,
    "haze": 2.0,
}


def write_pairing(out: Path, fields: int, side: int, seed: int) -> Path:
    """Simulate ``fields`` pairs of ``side``² pixels into ``out`` (lq/, hq/, optics.json)."""
    import tifffile

    from models.synthetic import make_pair

    for half in ("lq", "hq"):
        (out / half).mkdir(parents=True, exist_ok=True)
    for i in range(1, fields + 1):
        lq, hq, _ = make_pair((side, side), seed=seed * 1000 + i, n_cells=3, **OUT_OF_RANGE)
        tifffile.imwrite(out / "lq" / f"field_{i:03d}.tif", lq, compression="zlib")
        tifffile.imwrite(out / "hq" / f"field_{i:03d}.tif", hq, compression="zlib")
    optics = {"fields": fields, "side": side, "seed": seed, **OUT_OF_RANGE}
    (out / "optics.json").write_text(json.dumps(optics, indent=2))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("bench/out/simulated-oor"))
    ap.add_argument("--fields", type=int, default=80, help="fields 001…N (transfer uses 1–80)")
    ap.add_argument("--side", type=int, default=256)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args(argv)
    write_pairing(a.out, a.fields, a.side, a.seed)
    print(f"{a.fields} out-of-range pairs ({a.side}² × 3) in {a.out}: {json.dumps(OUT_OF_RANGE)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
