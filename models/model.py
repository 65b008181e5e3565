"""``EnhancementModel``: train / predict / save / load, in the spirit of CSBDeep's CARE.

Example::

    from models import Config, EnhancementModel
    model = EnhancementModel(Config.preset("cpu-small"))
    model.train(lq_list, hq_list, field_ids=ids, minutes=15, progress=print)
    out = model.predict(image)                    # float32, the input's intensity scale
    model.save("my_model")                        # a directory (or "my_model.zip")
    same = EnhancementModel.load("my_model")      # predicts identically
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .config import Config
from .data import Normalization, PatchSampler, as_cyx, fit_to_input, split_by_field
from .files import atomic_write, replace_dir
from .precision import describe_hardware, resolve_precision

WEIGHTS_FILE = "generator.weights.h5"
CONFIG_FILE = "config.json"
NORM_FILE = "normalization.json"
META_FILE = "metadata.json"
FORMAT = "pairscope-model/1"


class EnhancementModel:
    """A pair-specific generator (and, while training, its discriminator).

    ``config``: a :class:`~models.config.Config` (default: the ``cpu-small`` preset).
    ``n_channels``: the microscope's channel count; taken from the training data if not given.
    ``name``: a human-readable name stored in the saved model's metadata.
    """

    def __init__(
        self,
        config: Config | None = None,
        n_channels: int | None = None,
        name: str = "pairscope-model",
    ) -> None:
        self.config = config if config is not None else Config.preset("cpu-small")
        self.name = name
        self.n_channels = n_channels or self.config.n_channels
        self.normalization = Normalization(self.config.norm_low, self.config.norm_high)
        self.policy = resolve_precision(self.config.precision)
        self.metadata: dict[str, Any] = {}
        self._trainer = None

    # ------------------------------------------------------------------ building
    def _ensure_built(self, n_channels: int | None = None):
        from .training import Trainer

        if n_channels is not None:
            if self.n_channels is not None and self.n_channels != n_channels:
                raise ValueError(f"model takes {self.n_channels} channel(s), data has {n_channels}")
            self.n_channels = n_channels
        if self.n_channels is None:
            raise ValueError(
                "the number of channels is unknown: train the model first or give n_channels"
            )
        if self._trainer is None:
            self._trainer = Trainer(self.config, self.n_channels, self.policy)
        return self._trainer

    @property
    def generator(self):
        """The Keras generator (built on first access)."""
        return self._ensure_built().generator

    @property
    def discriminator(self):
        return self._ensure_built().discriminator

    # ------------------------------------------------------------------ training
    def train(
        self,
        lq_images: Sequence[np.ndarray],
        hq_images: Sequence[np.ndarray],
        field_ids: Sequence | None = None,
        *,
        val_lq: Sequence[np.ndarray] | None = None,
        val_hq: Sequence[np.ndarray] | None = None,
        steps: int | None = None,
        minutes: float | None = None,
        seed: int | None = None,
        progress: Callable[[dict], None] | None = None,
        stop: Callable[[], bool] | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        resume: bool = True,
    ):
        """Train on aligned pairs; returns a :class:`~models.training.TrainingResult`.

        ``lq_images`` / ``hq_images``: sequences of ``(C)YX`` arrays, pair by pair of equal shape
        (images may differ in size). ``field_ids``: one id per pair; pairs sharing an id stay on
        one side of the train/validation split, which is done by field before any patch
        sampling or augmentation (``config.val_fraction`` of the fields; default: every pair its
        own field). ``val_lq``/``val_hq``: explicit validation pairs instead (then no split).
        ``steps`` / ``minutes``: override ``config.steps`` / ``config.minutes``; training ends
        normally at whichever comes first. ``seed``: overrides ``config.seed`` for the patch
        sampling (weights are initialised from ``config.seed``).
        ``progress(dict)``: called after every step with ``step, total, percent, eta_s,
        elapsed_s, losses, val_ssim, val_psnr, lr, best_step``.
        ``stop()``: checked before every step; when it returns True a checkpoint is written (if
        ``checkpoint_dir``) and :class:`~models.training.TrainingCancelled` is raised.
        ``checkpoint_dir``: checkpoints every ``config.checkpoint_every`` steps and at the end;
        with ``resume`` an existing checkpoint there is continued exactly.
        The best generator weights on the validation fields (PSNR) are kept at the end.
        """
        lq = [as_cyx(a, f"lq[{i}]") for i, a in enumerate(lq_images)]
        hq = [as_cyx(a, f"hq[{i}]") for i, a in enumerate(hq_images)]
        if len(lq) != len(hq) or not lq:
            raise ValueError(f"need as many LQ as HQ images (got {len(lq)} and {len(hq)})")
        for i, (a, b) in enumerate(zip(lq, hq, strict=True)):
            if a.shape != b.shape:
                raise ValueError(f"pair {i}: LQ shape {a.shape} != HQ shape {b.shape}")
        chans = {a.shape[0] for a in lq}
        if len(chans) != 1:
            raise ValueError(f"images have different channel counts: {sorted(chans)}")
        trainer = self._ensure_built(chans.pop())
        ids = [str(f) for f in (field_ids if field_ids is not None else range(len(lq)))]
        if len(ids) != len(lq):
            raise ValueError(f"got {len(ids)} field ids for {len(lq)} pairs")
        c = self.config
        if val_lq is not None or val_hq is not None:
            vl = [as_cyx(a, f"val_lq[{i}]") for i, a in enumerate(val_lq or [])]
            vh = [as_cyx(a, f"val_hq[{i}]") for i, a in enumerate(val_hq or [])]
            if len(vl) != len(vh):
                raise ValueError("val_lq and val_hq differ in length")
            train_idx, val_idx = list(range(len(lq))), []
            t_lq, t_hq = lq, hq
        else:
            train_idx, val_idx = split_by_field(ids, c.val_fraction, c.seed)
            t_lq, t_hq = [lq[i] for i in train_idx], [hq[i] for i in train_idx]
            vl, vh = [lq[i] for i in val_idx], [hq[i] for i in val_idx]
        norm = self.normalization
        t_lq, t_hq = [norm(a) for a in t_lq], [norm(a) for a in t_hq]
        if c.fit_target_to_input:
            t_hq = [fit_to_input(b, a) for a, b in zip(t_lq, t_hq, strict=True)]
        vl = [norm(a) for a in vl[: c.val_max_images]]
        vh = [norm(a) for a in vh[: c.val_max_images]]
        sampler = PatchSampler(
            t_lq,
            t_hq,
            c.patch_size,
            c.samples_per_step(self.n_channels),
            threshold=c.foreground_threshold,
            min_fraction=c.foreground_min_fraction,
            flips=c.augment_flips,
            rot90=c.augment_rot90,
            translate=c.augment_translate,
        )
        result = trainer.fit(
            sampler,
            vl,
            vh,
            steps=steps,
            minutes=minutes,
            seed=seed,
            progress=progress,
            stop=stop,
            checkpoint_dir=os.fspath(checkpoint_dir) if checkpoint_dir else None,
            resume=resume,
        )
        self.metadata["training"] = {
            "train_fields": sorted({ids[i] for i in train_idx}),
            "val_fields": sorted({ids[i] for i in val_idx}) if val_idx else [],
            "n_train_pairs": len(t_lq),
            "n_val_pairs": len(vl),
            "policy": self.policy,
            "seed": c.seed if seed is None else seed,
            "finished": _now(),
            "hardware": describe_hardware(),
            **{k: v for k, v in result.to_dict().items() if k != "history"},
            "history": result.history[-200:],
        }
        return result

    # ------------------------------------------------------------------ prediction
    def predict(
        self,
        image: np.ndarray,
        axes: str | None = None,
        *,
        ensemble: bool = False,
        out_dtype: str = "float32",
        tile_size: int | None = None,
        overlap: int | None = None,
        batch_size: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> np.ndarray:
        """Enhance one image of any size; returns an array of the input's shape.

        ``axes``: ``"YX"``, ``"CYX"``, ``"ZYX"`` or ``"ZCYX"`` (guessed from the shape and the
        model's channel count when None). Z stacks are enhanced plane by plane. Each plane is
        normalised with its own percentiles, predicted in overlapping tiles (``tile_size``,
        ``overlap``, ``batch_size``; defaults from the config and the receptive field) with
        seamless blending, optionally averaged over the 8 flips / rotations (``ensemble``), and
        mapped back to the input's intensity scale. ``out_dtype``: ``"float32"`` (default) or
        ``"uint16"`` (rounded and clipped to 0..65535). ``progress(n)``: n tiles finished.
        """
        from .networks import receptive_field_margin
        from .predict import predict_image

        if out_dtype not in ("float32", "uint16"):
            raise ValueError(f"out_dtype must be 'float32' or 'uint16', got {out_dtype!r}")
        trainer = self._ensure_built()
        arr = np.asarray(image)
        axes = self.guess_axes(arr.shape) if axes is None else axes.upper()
        if axes not in ("YX", "CYX", "ZYX", "ZCYX") or len(axes) != arr.ndim:
            raise ValueError(f"axes {axes!r} do not fit an image of shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
            raise ValueError(f"expected a real-valued image, got dtype {arr.dtype}")
        planes = arr
        if "Z" not in axes:
            planes = planes[None]
        if "C" not in axes:
            planes = planes[:, None]
        if planes.shape[1] != self.n_channels:
            raise ValueError(
                f"the model takes {self.n_channels} channel(s); the image has "
                f"{planes.shape[1]} (shape {arr.shape}, axes {axes})"
            )
        c = self.config
        kw = dict(
            multiple=c.multiple,
            margin=receptive_field_margin(c),
            tile_size=tile_size or c.tile_size,
            overlap=overlap,
            batch_size=batch_size or c.tile_batch,
            ensemble=ensemble,
            progress=progress,
        )
        out = np.empty(planes.shape, np.float32)
        norm = self.normalization
        for z, plane in enumerate(planes):
            lo, hi = norm.params(plane)  # in the input's dtype: integers take a histogram
            y = predict_image(trainer.predict_fn, norm.apply_hwc(plane, lo, hi), **kw)
            norm.invert_hwc_into(y, lo, hi, out[z])
        out = out.reshape(arr.shape)
        if out_dtype == "uint16":
            return np.clip(np.rint(out), 0, 65535).astype(np.uint16)
        return out

    def guess_axes(self, shape: tuple[int, ...]) -> str:
        """The axes :meth:`predict` assumes for an array of ``shape``."""
        c = self.n_channels
        if len(shape) == 2:
            return "YX"
        if len(shape) == 3:
            if c == 1 and shape[0] != 1:
                return "ZYX"
            return "CYX"
        if len(shape) == 4:
            return "ZCYX"
        raise ValueError(f"cannot enhance an array of shape {shape}: expected (Z)(C)YX")

    # ------------------------------------------------------------------ persistence
    @property
    def identity(self) -> dict:
        """Name, id (hash of the weights), creation time and preset-relevant settings."""
        return {
            "name": self.name,
            "id": self.metadata.get("id"),
            "created": self.metadata.get("created"),
            "format": FORMAT,
            "n_channels": self.n_channels,
        }

    def weights_digest(self) -> str:
        h = hashlib.sha256()
        for w in self.generator.get_weights():
            h.update(np.ascontiguousarray(w, dtype=np.float32).tobytes())
        return h.hexdigest()

    def save(self, path: str | os.PathLike) -> str:
        """Write the model to a directory (or a ``.zip`` archive when ``path`` ends with it).

        Contents: ``generator.weights.h5`` (Keras weights), ``config.json``,
        ``normalization.json``, ``metadata.json`` (identity, training summary, versions). The
        write is atomic: a temporary sibling is renamed into place. Returns the path.
        """
        import keras
        import tensorflow as tf

        path = os.fspath(path)
        self._ensure_built()
        digest = self.weights_digest()
        self.metadata.setdefault("created", _now())
        self.metadata["id"] = digest[:16]
        meta = dict(
            self.metadata,
            name=self.name,
            format=FORMAT,
            n_channels=self.n_channels,
            weights_sha256=digest,
            versions={
                "keras": keras.__version__,
                "tensorflow": tf.__version__,
                "numpy": np.__version__,
            },
        )
        parent = os.path.dirname(os.path.abspath(path)) or "."
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-model-")
        try:
            self.generator.save_weights(os.path.join(tmp, WEIGHTS_FILE))
            _write_json(
                os.path.join(tmp, CONFIG_FILE),
                self.config.with_overrides(n_channels=self.n_channels).to_dict(),
            )
            _write_json(os.path.join(tmp, NORM_FILE), self.normalization.to_dict())
            _write_json(os.path.join(tmp, META_FILE), meta)
            if path.endswith(".zip"):
                with (
                    atomic_write(path, suffix=".zip") as ztmp,
                    zipfile.ZipFile(ztmp, "w", zipfile.ZIP_DEFLATED) as z,
                ):
                    for f in (WEIGHTS_FILE, CONFIG_FILE, NORM_FILE, META_FILE):
                        z.write(os.path.join(tmp, f), f)
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                replace_dir(tmp, path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, precision: str | None = None) -> EnhancementModel:
        """Load a model written by :meth:`save` (directory or ``.zip``).

        ``precision`` overrides the saved ``Config.precision`` (e.g. load a model trained in
        ``mixed_bfloat16`` as ``float32``); the weights are float32 in both cases.
        """
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no model at {path}")
        if os.path.isdir(path):
            return cls._load_dir(path, precision)
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path} is neither a model directory nor a .zip model archive")
        with tempfile.TemporaryDirectory() as tmp:
            with zipfile.ZipFile(path) as z:
                for name in z.namelist():
                    if name not in (WEIGHTS_FILE, CONFIG_FILE, NORM_FILE, META_FILE):
                        raise ValueError(f"{path}: unexpected member {name!r}")
                z.extractall(tmp)
            return cls._load_dir(tmp, precision)

    @classmethod
    def _load_dir(cls, d: str, precision: str | None) -> EnhancementModel:
        for f in (WEIGHTS_FILE, CONFIG_FILE, NORM_FILE, META_FILE):
            if not os.path.exists(os.path.join(d, f)):
                raise ValueError(f"model {d} lacks {f}")
        with open(os.path.join(d, CONFIG_FILE), encoding="utf-8") as fh:
            config = Config.from_dict(json.load(fh))
        if precision is not None:
            config = config.with_overrides(precision=precision)
        with open(os.path.join(d, META_FILE), encoding="utf-8") as fh:
            meta = json.load(fh)
        with open(os.path.join(d, NORM_FILE), encoding="utf-8") as fh:
            norm = Normalization.from_dict(json.load(fh))
        model = cls(config, n_channels=config.n_channels, name=meta.get("name", "model"))
        model.normalization = norm
        model.metadata = {
            k: v for k, v in meta.items() if k not in ("name", "format", "n_channels", "versions")
        }
        model.metadata["saved_versions"] = meta.get("versions")
        model.generator.load_weights(os.path.join(d, WEIGHTS_FILE))
        return model


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _write_json(path: str, obj: Any) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True, default=str)
