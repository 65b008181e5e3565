"""The training loop: one compiled train step, validation, checkpoints, progress and budget.

Used through :meth:`models.model.EnhancementModel.train`; the pieces are public for tests and
the speed benchmark.

Train step (one ``tf.function``): the generator's output for the batch is computed once; the
discriminator is updated on it (generator fixed, eq. 5 with y = 0), then the generator is updated
against the *updated* discriminator (eq. 6) – the paper's alternation, without a second generator
forward pass. With ``adv_weight == 0`` no discriminator is built and only the generator is
trained. Adam for both; learning rate from a Python-side schedule (constant, or cosine with
linear warm-up), assigned before each step; optional global-norm gradient clipping; dynamic loss
scaling under ``mixed_float16``.

Checkpoints (``checkpoint_dir/checkpoint.npz``, written atomically) hold the weights of both
networks, both optimizers' state (moments, iteration counters, loss scale) and the loop's
:class:`LoopState` (step, elapsed time, the patch sampler's random state, the best weights so far,
the history, the divergence guard's state); resuming from one continues exactly as an
uninterrupted run would (bit for bit on CPU given the same seed).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from . import losses as L
from .call_paths import probe_shape_for, tile_call
from .config import GENERATOR_KEYS, Config
from .data import PatchSampler, rng_from_state, rng_state
from .files import atomic_write
from .networks import build_discriminator, build_generator, receptive_field_margin
from .predict import predict_image

CHECKPOINT_FILE = "checkpoint.npz"
MAX_RECOVERIES = 3  # divergences survived (restore + halve the learning rate) before giving up
EXPLOSION_FACTOR = 100.0  # a loss this many times the recent median counts as a divergence
EXPLOSION_WINDOW = 50  # steps in that median (none is judged before 10 have run)
# what a checkpoint must share with the run that resumes it: both networks and the batch shape
ARCH_KEYS = (
    *GENERATOR_KEYS,
    "disc_filters",
    "disc_blocks",
    "disc_convs_per_block",
    "disc_max_filters",
    "disc_dense_units",
    "patch_size",
    "batch_size",
)

ProgressFn = Callable[[dict], None]


class TrainingCancelled(Exception):
    """Raised by :meth:`Trainer.fit` when ``stop()`` returned True (after a checkpoint was saved,
    when a checkpoint directory was given). ``step`` is the last completed step."""

    def __init__(self, step: int) -> None:
        super().__init__(f"training cancelled at step {step}")
        self.step = step


@dataclass
class TrainingResult:
    """Summary returned by ``train``: steps run, why it ended, the best validation scores."""

    steps: int
    stopped_by: str  # "steps" | "budget"
    elapsed_s: float
    best_step: int | None
    best_val_psnr: float | None
    best_val_ssim: float | None
    final_losses: dict[str, float]
    history: list[dict] = field(default_factory=list)
    recoveries: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _no_scores() -> dict[str, Any]:
    return {"val_psnr": None, "val_ssim": None}


@dataclass
class LoopState:
    """Everything :meth:`Trainer.fit` carries from one step to the next. A checkpoint stores
    exactly this and a resumed run starts from exactly what was stored, so a field added here is
    saved and restored with no further code."""

    rng: np.random.Generator  # the patch sampler's
    step: int = 0
    elapsed_s: float = 0.0  # training time up to the last checkpoint
    history: list[dict] = field(default_factory=list)
    best: dict[str, Any] = field(default_factory=lambda: {"step": None, **_no_scores()})
    last_val: dict[str, Any] = field(default_factory=_no_scores)
    # the divergence guard's: the learning rate's factor, the restarts, the recent g_total losses
    lr_scale: float = 1.0
    recoveries: list[dict] = field(default_factory=list)
    recent_losses: list[float] = field(default_factory=list)
    best_weights: list[np.ndarray] | None = None  # stored as arrays beside the JSON

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy of every field but the best weights; the generator as its state."""
        out = {name: copy.deepcopy(getattr(self, name)) for name in self._plain_fields()}
        out["rng"] = rng_state(self.rng)
        return out

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], best_weights: list[np.ndarray] | None = None
    ) -> LoopState:
        """The state :meth:`to_dict` described. Keys that are not fields (a checkpoint's config)
        are ignored; fields a checkpoint lacks (written before they existed) take defaults."""
        values = {k: copy.deepcopy(data[k]) for k in cls._plain_fields() if k in data}
        return cls(rng=rng_from_state(data["rng"]), best_weights=best_weights, **values)

    @classmethod
    def _plain_fields(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name not in ("rng", "best_weights")]


def learning_rate_at(config: Config, base_lr: float, progress: float, step: int) -> float:
    """Learning rate for training ``progress`` in [0, 1] (and ``step`` for the warm-up)."""
    lr = base_lr
    if config.lr_schedule == "cosine":
        p = min(max(progress, 0.0), 1.0)
        f = config.min_lr_fraction
        lr = base_lr * (f + (1 - f) * 0.5 * (1 + math.cos(math.pi * p)))
    if config.warmup_steps and step < config.warmup_steps:
        lr *= (step + 1) / config.warmup_steps
    return float(lr)


#: The moving average's warm-up: its momentum at step ``t`` is at most ``(1 + t) / (EMA_WARMUP
#: + t)``, as TensorFlow's ``ExponentialMovingAverage(num_updates=t)``.
EMA_WARMUP = 10


def ema_momentum_at(config: Config, step: int) -> float:
    """The generator's weight-average momentum at ``step``: ``config.ema_momentum``, but no more
    than ``(1 + step) / (EMA_WARMUP + step)``. Why: with a fixed 0.995 a run of a few hundred
    steps (a fine-tune from a base on a CPU) ends with ≈ 0.995^steps of its *starting* weights
    still in the average (16 % after 366 steps); the warm-up lets the average follow early
    steps and reaches the configured 0.995 after ≈ 1800 steps."""
    if config.ema_momentum is None:
        return 0.0
    return float(min(config.ema_momentum, (1 + step) / (EMA_WARMUP + step)))


def _make_optimizer(
    config: Config, lr: float, policy: str, ema: bool = False
) -> keras.optimizers.Optimizer:
    opt = keras.optimizers.Adam(
        learning_rate=lr,
        beta_1=config.adam_beta_1,
        beta_2=config.adam_beta_2,
        global_clipnorm=config.clipnorm,
        use_ema=ema and config.ema_momentum is not None,
        ema_momentum=config.ema_momentum or 0.99,
    )
    if policy == "mixed_float16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


def _divergence(losses: dict[str, float], recent: list[float]) -> str | None:
    """Why this step's losses mean training diverged (None: they do not)."""
    if not all(math.isfinite(v) for v in losses.values()):
        return "non-finite loss"
    if len(recent) >= 10 and losses["g_total"] > EXPLOSION_FACTOR * float(np.median(recent)):
        return "exploding loss"
    return None


class Trainer:
    """Owns the generator, the discriminator (when ``adv_weight > 0``) and their optimizers."""

    def __init__(
        self,
        config: Config,
        n_channels: int,
        policy: str = "float32",
        generator: keras.Model | None = None,
    ) -> None:
        self.config = config
        self.n_channels = int(n_channels)
        self.policy = policy
        self.generator = generator or build_generator(config, n_channels, policy)
        self.adversarial = config.adv_weight > 0
        self.discriminator = (
            build_discriminator(config, n_channels, policy) if self.adversarial else None
        )
        self.g_opt = _make_optimizer(config, config.learning_rate, policy, ema=True)
        self.g_opt.build(self.generator.trainable_variables)
        # the average's momentum as a variable the compiled step reads (set per step by
        # set_learning_rate; Keras' optimizer reads ``ema_momentum`` when it traces the step)
        self.ema_momentum = tf.Variable(ema_momentum_at(config, 0), trainable=False)
        inner = getattr(self.g_opt, "inner_optimizer", self.g_opt)
        if inner.use_ema:
            inner.ema_momentum = self.ema_momentum
        self.d_opt = None
        if self.adversarial:
            self.d_opt = _make_optimizer(config, self._d_lr(), policy)
            self.d_opt.build(self.discriminator.trainable_variables)
        spec = tf.TensorSpec(
            [
                config.samples_per_step(self.n_channels),
                config.patch_size,
                config.patch_size,
                self.n_channels,
            ],
            tf.float32,
        )
        self.train_step = tf.function(self._train_step, input_signature=[spec, spec])
        self._predict_fn: Callable[[np.ndarray], np.ndarray] | None = None
        self.call_path = ""  # set with predict_fn

    def _d_lr(self) -> float:
        c = self.config
        return c.disc_learning_rate if c.disc_learning_rate is not None else c.learning_rate

    # ------------------------------------------------------------------ the step
    def _scale(self, opt, loss):
        return (
            opt.scale_loss(loss) if isinstance(opt, keras.optimizers.LossScaleOptimizer) else loss
        )

    def _train_step(self, x, y):
        c = self.config
        G, D = self.generator, self.discriminator
        g_vars = G.trainable_variables
        with tf.GradientTape() as g_tape:
            fake = G(x, training=True)
            out = {}
            if D is not None:
                d_vars = D.trainable_variables
                with tf.GradientTape() as d_tape:
                    d_real = D(y, training=True)
                    d_fake = D(tf.stop_gradient(fake), training=True)
                    d_loss = L.discriminator_loss(d_real, d_fake)
                    d_scaled = self._scale(self.d_opt, d_loss)
                d_grads = d_tape.gradient(d_scaled, d_vars)
                self.d_opt.apply(d_grads, d_vars)
                real_logits = tf.stop_gradient(D(y, training=True))
                fake_logits = D(fake, training=True)
                out["d_loss"] = d_loss
            else:
                real_logits = fake_logits = None
            parts = L.generator_loss(
                y,
                fake,
                real_logits,
                fake_logits,
                mse_weight=c.mse_weight,
                ssim_weight=c.ssim_weight,
                adv_weight=c.adv_weight,
                l1_weight=c.l1_weight,
                ssim_filter_size=c.ssim_filter_size,
            )
            g_scaled = self._scale(self.g_opt, parts["total"])
        g_grads = g_tape.gradient(g_scaled, g_vars)
        self.g_opt.apply(g_grads, g_vars)
        out.update(
            {"g_total": parts["total"], "mse": parts["mse"], "ssim_loss": parts["ssim_loss"]}
        )
        if c.adv_weight:
            out["g_adv"] = parts["adv"]
        if c.l1_weight:
            out["l1"] = parts["l1"]
        return out

    def set_learning_rate(self, progress: float, step: int, scale: float = 1.0) -> float:
        """Set both rates for ``progress`` (times ``scale``) and the weight average's momentum
        for ``step``; returns the generator's rate."""
        lr = scale * learning_rate_at(self.config, self.config.learning_rate, progress, step)
        self.g_opt.learning_rate = lr
        self.ema_momentum.assign(ema_momentum_at(self.config, step))
        if self.d_opt is not None:
            self.d_opt.learning_rate = scale * learning_rate_at(
                self.config, self._d_lr(), progress, step
            )
        return lr

    def _state_variables(self) -> dict[str, list]:
        """Every trained variable by group: ``g``/``d`` the networks, ``gopt``/``dopt`` the
        optimizers' state (empty groups where there is no discriminator)."""
        D = self.discriminator
        return {
            "g": list(self.generator.weights),
            "d": list(D.weights) if D else [],
            "gopt": list(self.g_opt.variables),
            "dopt": list(self.d_opt.variables) if self.d_opt else [],
        }

    def snapshot(self) -> dict[str, list[np.ndarray]]:
        """Copies of every trained array, by group (what a checkpoint stores)."""
        return {k: [np.array(v.numpy()) for v in vs] for k, vs in self._state_variables().items()}

    def restore(self, arrays: dict[str, list[np.ndarray]], where: str = "snapshot") -> None:
        """Put back what :meth:`snapshot` returned; ``where`` names its origin in errors."""
        for k, vs in self._state_variables().items():
            if len(arrays.get(k, [])) != len(vs):
                raise ValueError(f"{where}: the {k!r} state does not match this model")
            for v, a in zip(vs, arrays[k], strict=True):
                v.assign(a)

    @contextlib.contextmanager
    def averaged_weights(self) -> Iterator[None]:
        """Inside the block the generator holds the moving average of its weights (with
        ``ema_momentum``; unchanged without), afterwards the raw training weights again."""
        if self.config.ema_momentum is None:
            yield
            return
        raw = self.generator.get_weights()
        self.g_opt.finalize_variable_values(self.generator.trainable_variables)
        try:
            yield
        finally:
            self.generator.set_weights(raw)

    # ------------------------------------------------------------------ prediction
    @property
    def predict_fn(self) -> Callable[[np.ndarray], np.ndarray]:
        """The generator's call on float32 NHWC numpy batches, by the path this machine runs
        fastest (:mod:`models.call_paths`: measured once per machine and network, then cached)."""
        if self._predict_fn is None:
            c = self.config
            probe = probe_shape_for(c.tile_size, c.multiple, self.n_channels)
            self.call_path, self._predict_fn = tile_call(self.generator, probe, self.policy)
        return self._predict_fn

    def predict_normalized(self, image_cyx: np.ndarray, ensemble: bool = False) -> np.ndarray:
        c = self.config
        hwc = np.moveaxis(image_cyx, 0, -1)
        out = predict_image(
            self.predict_fn,
            hwc,
            multiple=c.multiple,
            margin=receptive_field_margin(c),
            tile_size=c.tile_size,
            batch_size=c.tile_batch,
            ensemble=ensemble,
        )
        return np.moveaxis(out, -1, 0)

    def validate(self, val_lq: Sequence[np.ndarray], val_hq: Sequence[np.ndarray]) -> dict:
        """Mean SSIM / PSNR (benchmark protocol, :mod:`models.metrics`) over validation images."""
        from .metrics import score_image

        scores = [
            score_image(self.predict_normalized(a), b) for a, b in zip(val_lq, val_hq, strict=True)
        ]
        return {
            "val_psnr": float(np.mean([s["psnr"] for s in scores])),
            "val_ssim": float(np.mean([s["ssim"] for s in scores])),
        }

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, directory: str, state: LoopState) -> str:
        os.makedirs(directory, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        for prefix, ws in (*self.snapshot().items(), ("best", state.best_weights or [])):
            for i, a in enumerate(ws):
                arrays[f"{prefix}_{i:04d}"] = a
        meta = dict(
            state.to_dict(),
            config=self.config.to_dict(),
            n_channels=self.n_channels,
            policy=self.policy,
        )
        arrays["state_json"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        path = os.path.join(directory, CHECKPOINT_FILE)
        with atomic_write(path, durable=True) as tmp:
            tmp.write_bytes(buf.getvalue())
        return path

    def load_checkpoint(self, directory: str) -> LoopState | None:
        """Restore the networks from ``directory``; returns the loop's state, None if absent."""
        path = os.path.join(directory, CHECKPOINT_FILE)
        if not os.path.exists(path):
            return None
        with np.load(path) as z:
            meta = json.loads(bytes(z["state_json"]).decode())
            groups: dict[str, list] = {"g": [], "d": [], "gopt": [], "dopt": [], "best": []}
            for k in sorted(k for k in z.files if k != "state_json"):
                groups[k.rsplit("_", 1)[0]].append(z[k])
        saved = Config.from_dict(meta["config"])
        diff = [k for k in ARCH_KEYS if getattr(saved, k) != getattr(self.config, k)]
        if meta["n_channels"] != self.n_channels:
            diff.append("n_channels")
        if bool(groups["d"]) != self.adversarial:
            diff.append("adv_weight")
        if diff:
            raise ValueError(
                f"checkpoint in {directory} does not match this configuration "
                f"(differs in: {', '.join(diff)})"
            )
        self.restore(groups, where=f"checkpoint in {directory}")
        return LoopState.from_dict(meta, groups["best"] or None)

    # ------------------------------------------------------------------ the loop
    def fit(
        self,
        sampler: PatchSampler,
        val_lq: Sequence[np.ndarray] = (),
        val_hq: Sequence[np.ndarray] = (),
        *,
        steps: int | None = None,
        minutes: float | None = None,
        seed: int | None = None,
        progress: ProgressFn | None = None,
        stop: Callable[[], bool] | None = None,
        checkpoint_dir: str | None = None,
        resume: bool = True,
    ) -> TrainingResult:
        c = self.config
        total = int(steps if steps is not None else c.steps)
        budget_s = minutes if minutes is not None else c.minutes
        budget_s = None if budget_s is None else float(budget_s) * 60.0
        state = LoopState(rng=np.random.default_rng(c.seed if seed is None else seed))
        if checkpoint_dir and resume:
            state = self.load_checkpoint(checkpoint_dir) or state
        has_val = len(val_lq) > 0
        elapsed_before, t0 = state.elapsed_s, time.perf_counter()

        def elapsed() -> float:
            return elapsed_before + time.perf_counter() - t0

        def save_checkpoint() -> None:
            state.elapsed_s = elapsed()
            self.save_checkpoint(checkpoint_dir, state)

        def do_validate() -> None:
            self._validate_into(state, val_lq, val_hq, elapsed())

        losses_f: dict[str, float] = {}
        stopped_by = "steps"
        # the rate for the ETA is measured from the end of this call's first step, which
        # includes tracing the graph (seconds) and would inflate the estimate many times over
        rate_from: tuple[int, float] | None = None
        # divergence guard: a non-finite loss, or one EXPLOSION_FACTOR times the median of the
        # last EXPLOSION_WINDOW steps' (measured: a 15-minute run's loss jumped from 0.008 to
        # 1e5 and the run never recovered its validation PSNR), restores the last good state
        # (taken every ``val_every`` steps) and halves the learning rate, at most
        # MAX_RECOVERIES times
        good = (state.step, self.snapshot())
        while state.step < total:
            if budget_s is not None and elapsed() >= budget_s:
                stopped_by = "budget"
                break
            if stop is not None and stop():
                if checkpoint_dir:
                    save_checkpoint()
                raise TrainingCancelled(state.step)
            frac = state.step / total
            if budget_s is not None:
                frac = max(frac, elapsed() / budget_s)
            lr = self.set_learning_rate(frac, state.step, state.lr_scale)
            x, y = sampler.sample(state.rng)
            out = self.train_step(tf.constant(x), tf.constant(y))
            losses_f = {k: float(v) for k, v in out.items()}
            why = _divergence(losses_f, state.recent_losses)
            if why:
                self._recover(state, good, why, losses_f)
                continue
            state.recent_losses.append(losses_f["g_total"])
            del state.recent_losses[:-EXPLOSION_WINDOW]
            state.step += 1
            if rate_from is None:
                rate_from = (state.step, elapsed())
            if has_val and (state.step % c.val_every == 0):
                do_validate()
            if state.step % c.val_every == 0:
                good = (state.step, self.snapshot())
            if checkpoint_dir and state.step % c.checkpoint_every == 0:
                save_checkpoint()
            if progress is not None:
                progress(
                    self._progress(
                        state.step, total, elapsed(), budget_s, rate_from, losses_f,
                        state.last_val, lr, state.best,
                    )
                )  # fmt: skip
        if has_val and (not state.history or state.history[-1]["step"] != state.step):
            do_validate()
        if checkpoint_dir:
            save_checkpoint()
        if state.best_weights is not None:
            self.generator.set_weights(state.best_weights)
        elif c.ema_momentum is not None:
            self.g_opt.finalize_variable_values(self.generator.trainable_variables)
        return TrainingResult(
            steps=state.step,
            stopped_by=stopped_by,
            elapsed_s=elapsed(),
            best_step=state.best["step"],
            best_val_psnr=state.best["val_psnr"],
            best_val_ssim=state.best["val_ssim"],
            final_losses=losses_f,
            history=state.history,
            recoveries=state.recoveries,
        )

    def _validate_into(
        self,
        state: LoopState,
        val_lq: Sequence[np.ndarray],
        val_hq: Sequence[np.ndarray],
        elapsed_s: float,
    ) -> None:
        """Validate the averaged weights; record the figures and keep the best weights."""
        with self.averaged_weights():
            v = self.validate(val_lq, val_hq)
            state.last_val.update(v)
            state.history.append({"step": state.step, "elapsed_s": round(elapsed_s, 2), **v})
            if state.best["val_psnr"] is None or v["val_psnr"] > state.best["val_psnr"]:
                state.best.update(step=state.step, **v)
                state.best_weights = [w.copy() for w in self.generator.get_weights()]

    def _recover(
        self, state: LoopState, good: tuple[int, dict], why: str, losses: dict[str, float]
    ) -> None:
        """Restore the last good state at half the rate, or give up after MAX_RECOVERIES."""
        if len(state.recoveries) >= MAX_RECOVERIES:
            raise FloatingPointError(
                f"{why} at step {state.step + 1} after {len(state.recoveries)} "
                f"restarts at a halved learning rate: {losses}"
            )
        self.restore(good[1])
        state.lr_scale *= 0.5
        state.recoveries.append(
            {
                "step": state.step + 1,
                "restored_step": good[0],
                "lr_scale": state.lr_scale,
                "reason": why,
            }
        )
        state.recent_losses.clear()

    @staticmethod
    def _progress(step, total, elapsed_s, budget_s, rate_from, losses, last_val, lr, best) -> dict:
        """Progress for the callback. ``eta_s`` is None until a step after the first has run:
        the rate counts validation and checkpoints but not the first step's tracing."""
        eta: float | None = None
        if rate_from is not None and step > rate_from[0]:
            per_step = (elapsed_s - rate_from[1]) / (step - rate_from[0])
            eta = (total - step) * per_step
        frac = step / total
        if budget_s is not None:
            frac = max(frac, min(1.0, elapsed_s / budget_s))
            left = max(0.0, budget_s - elapsed_s)
            eta = left if eta is None else min(eta, left)
        return {
            "step": step,
            "total": total,
            "percent": round(100.0 * frac, 2),
            "eta_s": None if eta is None else round(eta, 1),
            "elapsed_s": round(elapsed_s, 2),
            "losses": dict(losses),
            "val_ssim": last_val.get("val_ssim"),
            "val_psnr": last_val.get("val_psnr"),
            "lr": lr,
            "best_step": best["step"],
        }
