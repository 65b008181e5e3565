"""Make the base that ships in the package (``models/bases/base.zip``, issue 19 item 4).

It is ``pairscope pretrain``'s general recipe (:data:`models.cli_pretraining.PRETRAIN_RECIPE`:
synthetic wide-field → confocal and denoising pairs over a range of optics, pixel sizes and
noise) plus real pairs: the first 12 *training* fields of the shared W2S set (the benchmarks'
validation 061–064 and test 065–080 stay unseen). Patches are drawn in proportion to area, so
12 fields of 512² × 3 weigh as much as the 48 synthetic fields of 256² × 3: half the patches
show real cells and a real camera's noise, half the range of optics and noise the simulator
spans — one microscope must not make the base its own. W2S files carry no pixel size: they are
written with the data README's 0.1 µm estimate so that the base records it. The learning-curve
benchmark (``bench/transfer.py``) starts from ``bench/bases/synthetic-only.zip`` instead — a
base that never saw W2S — so that its figures measure transfer, not memory.

    .venv/bin/python -m bench.shipped_base --minutes 12        # writes models/bases/base.zip
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

from bench.quality import DATA

OUT = Path(__file__).resolve().parent.parent / "models" / "bases" / "base.zip"
PIXEL_UM = 0.1  # the data README's estimate
REAL_FIELDS = range(1, 13)  # as many real pixels as synthetic ones (48 × 256² vs 12 × 512²)


def write_pairs(data: str, folder: Path, fields: range) -> None:
    """The W2S fields as OME-TIFF pairs with a pixel size (``folder/lq``, ``folder/hq``)."""
    import tifffile

    meta = {"axes": "CYX", "PhysicalSizeX": PIXEL_UM, "PhysicalSizeY": PIXEL_UM}
    for side in ("lq", "hq"):
        (folder / side).mkdir(parents=True)
        for i in fields:
            image = np.asarray(tifffile.imread(os.path.join(data, side, f"field_{i:03d}.tif")))
            tifffile.imwrite(
                folder / side / f"field_{i:03d}.ome.tif",
                image,
                ome=True,
                metadata=meta,
                compression="zlib",
            )


def main(argv: list[str] | None = None) -> int:
    from models.cli_pretraining import pretrain_local
    from models.model import EnhancementModel

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.path.normpath(DATA))
    ap.add_argument("--minutes", type=float, default=12.0)
    ap.add_argument("--synthetic", type=int, default=48, help="synthetic fields")
    ap.add_argument("--shape", type=int, default=256, help="synthetic field side (px)")
    ap.add_argument("--out", type=Path, default=OUT)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        pairs = Path(tmp) / "w2s-widefield-denoise-train"
        write_pairs(a.data, pairs, REAL_FIELDS)
        model = Path(tmp) / "base"
        pretrain_local(
            model,
            minutes=a.minutes,
            synthetic=a.synthetic,
            pairs_dirs=[str(pairs)],
            shape=a.shape,
            preset="cpu-small",
            seed=0,
        )
        EnhancementModel.load(model).save(str(a.out))  # a .zip path: the archive the package reads
    print(f"wrote {a.out} ({a.out.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
