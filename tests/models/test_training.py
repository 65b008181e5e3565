import copy
import json
import math
from dataclasses import fields

import numpy as np
import pytest
import tensorflow as tf

from models import Config, EnhancementModel, TrainingCancelled
from models.data import Normalization, PatchSampler, rng_state
from models.training import LoopState, Trainer, ema_momentum_at, learning_rate_at


def _sampler(pairs, config):
    lq, hq, _ = pairs
    n = Normalization()
    return PatchSampler(
        [n(a) for a in lq],
        [n(b) for b in hq],
        config.patch_size,
        config.batch_size,
        threshold=0.1,
        min_fraction=0.0,
    )


def _eval_loss(trainer, x, y):
    p = trainer.generator(x, training=False)
    return float(tf.reduce_mean(tf.square(tf.cast(p, tf.float32) - y)))


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_a_few_steps_reduce_the_loss(pairs, precision):
    c = Config.preset("tiny", precision=precision, batch_size=4, learning_rate=3e-3)
    t = Trainer(c, 3, precision)
    s = _sampler(pairs, c)
    x, y = s.sample(np.random.default_rng(123))
    before = _eval_loss(t, x, y)
    res = t.fit(s, steps=40, seed=0)
    assert res.steps == 40 and res.stopped_by == "steps"
    assert {"d_loss", "g_total", "mse", "ssim_loss", "g_adv"} <= set(res.final_losses)
    assert all(np.isfinite(v) for v in res.final_losses.values())
    assert _eval_loss(t, x, y) < 0.8 * before


def test_generator_alone_has_no_discriminator(pairs):
    c = Config.preset("tiny", adv_weight=0.0)
    t = Trainer(c, 3, "float32")
    assert t.discriminator is None and t.d_opt is None
    res = t.fit(_sampler(pairs, c), steps=3)
    assert "d_loss" not in res.final_losses and res.steps == 3


def _weights(t):
    return (
        t.generator.get_weights()
        + t.discriminator.get_weights()
        + [v.numpy() for v in t.g_opt.variables]
        + [v.numpy() for v in t.d_opt.variables]
    )


class _PoisonedSampler:
    """Hands out the wrapped sampler's batches, but an infinite LQ patch at the given calls."""

    def __init__(self, sampler, poisoned_calls, value=np.inf):
        self.sampler, self.poisoned, self.calls = sampler, set(poisoned_calls), 0
        self.value = value

    def sample(self, rng):
        x, y = self.sampler.sample(rng)
        self.calls += 1
        if self.calls in self.poisoned:
            x = x.copy()
            x[0, :, :, :] = self.value
        return x, y


def test_a_divergence_restarts_from_the_last_good_state_at_half_the_rate(pairs):
    """A non-finite loss does not end a long run: the last good weights and optimizer state
    (every ``val_every`` steps) come back, the learning rate halves, training goes on."""
    c = Config.preset("tiny", val_every=5)
    t = Trainer(c, 3, "float32")
    sampler = _PoisonedSampler(_sampler(pairs, c), poisoned_calls={8})
    res = t.fit(sampler, steps=12, seed=0)
    assert res.steps == 12
    assert res.recoveries == [
        {"step": 8, "restored_step": 5, "lr_scale": 0.5, "reason": "non-finite loss"}
    ]
    assert all(np.isfinite(w).all() for w in t.generator.get_weights())
    assert all(np.isfinite(v) for v in res.final_losses.values())
    assert t.g_opt.learning_rate.numpy() == pytest.approx(0.5 * c.learning_rate)


def test_an_exploding_finite_loss_also_restarts(pairs):
    """A finite loss a hundred times the recent median (weights blowing up) is a divergence
    too; ordinary batch-to-batch variation is not."""
    c = Config.preset("tiny", val_every=5, adv_weight=0.0)
    t = Trainer(c, 3, "float32")
    sampler = _PoisonedSampler(_sampler(pairs, c), poisoned_calls={13}, value=1e4)
    res = t.fit(sampler, steps=16, seed=0)
    assert res.steps == 16
    assert res.recoveries == [
        {"step": 13, "restored_step": 10, "lr_scale": 0.5, "reason": "exploding loss"}
    ]


def test_a_run_that_keeps_diverging_fails_naming_the_step(pairs):
    c = Config.preset("tiny", val_every=5)
    t = Trainer(c, 3, "float32")
    sampler = _PoisonedSampler(_sampler(pairs, c), poisoned_calls=set(range(3, 100)))
    with pytest.raises(FloatingPointError, match="non-finite loss at step 3 after 3 restarts"):
        t.fit(sampler, steps=12, seed=0)


def test_checkpoint_resume_equals_uninterrupted_run(pairs, tmp_path):
    lq, hq, ids = pairs
    c = Config.preset(
        "tiny",
        precision="float32",
        val_fraction=0.0,
        checkpoint_every=4,
        warmup_steps=3,
        lr_schedule="cosine",
    )
    a = EnhancementModel(c)
    a.train(lq, hq, ids, steps=12, checkpoint_dir=tmp_path / "a")
    b = EnhancementModel(c)
    n = {"calls": 0}

    def stop_after_8():  # checked before each step
        n["calls"] += 1
        return n["calls"] > 8

    with pytest.raises(TrainingCancelled):
        b.train(lq, hq, ids, steps=12, stop=stop_after_8, checkpoint_dir=tmp_path / "b")
    c2 = EnhancementModel(c)  # a fresh process would build a fresh model
    res = c2.train(lq, hq, ids, steps=12, checkpoint_dir=tmp_path / "b", resume=True)
    assert res.steps == 12
    for wa, wc in zip(_weights(a._trainer), _weights(c2._trainer), strict=True):
        np.testing.assert_array_equal(wa, wc)
    # and training is deterministic given the seed
    d = EnhancementModel(c)
    d.train(lq, hq, ids, steps=12)
    for wa, wd in zip(a.generator.get_weights(), d.generator.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wd)


def test_checkpoint_of_another_architecture_is_refused(pairs, tmp_path):
    lq, hq, ids = pairs
    EnhancementModel(Config.preset("tiny")).train(lq, hq, ids, steps=2, checkpoint_dir=tmp_path)
    other = EnhancementModel(Config.preset("tiny", base_filters=4))
    with pytest.raises(ValueError, match="base_filters"):
        other.train(lq, hq, ids, steps=4, checkpoint_dir=tmp_path)


def test_budget_ends_training_normally(pairs):
    lq, hq, ids = pairs
    m = EnhancementModel(Config.preset("tiny"))
    res = m.train(lq, hq, ids, steps=1_000_000, minutes=0.03)
    assert res.stopped_by == "budget" and 0 < res.steps < 1_000_000
    assert res.best_val_psnr is not None


def test_stop_cancels_after_a_checkpoint_and_can_resume(pairs, tmp_path):
    lq, hq, ids = pairs
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 5

    m = EnhancementModel(Config.preset("tiny"))
    with pytest.raises(TrainingCancelled) as e:
        m.train(lq, hq, ids, steps=50, stop=stop, checkpoint_dir=tmp_path)
    assert e.value.step == 5
    seen = []
    m2 = EnhancementModel(Config.preset("tiny"))
    res = m2.train(lq, hq, ids, steps=8, checkpoint_dir=tmp_path, progress=seen.append)
    assert res.steps == 8 and [p["step"] for p in seen] == [6, 7, 8]


def test_progress_reports_what_the_worker_needs(pairs):
    lq, hq, ids = pairs
    seen = []
    m = EnhancementModel(Config.preset("tiny", val_every=5))
    res = m.train(lq, hq, ids, steps=10, progress=seen.append)
    assert len(seen) == 10
    p = seen[-1]
    assert {"step", "total", "percent", "eta_s", "losses", "val_ssim", "val_psnr"} <= set(p)
    assert p["step"] == 10 and p["total"] == 10 and p["percent"] == 100.0
    assert seen[4]["val_psnr"] is not None and seen[3]["val_psnr"] is None
    assert 0 <= p["val_ssim"] <= 1
    assert res.best_step in (5, 10)
    assert m.metadata["training"]["val_fields"]
    assert not set(m.metadata["training"]["val_fields"]) & set(
        m.metadata["training"]["train_fields"]
    )


def test_eta_leaves_out_the_first_steps_tracing(pairs):
    """The first step traces the graph (seconds); an ETA extrapolated from it would promise
    hours for a run of minutes. No ETA until a second step has run, then the real rate."""
    lq, hq, ids = pairs
    seen = []
    m = EnhancementModel(Config.preset("tiny", val_fraction=0.0))
    m.train(lq, hq, ids, steps=12, progress=seen.append)
    assert seen[0]["eta_s"] is None
    first_step_s = seen[0]["elapsed_s"]
    rest_per_step = (seen[-1]["elapsed_s"] - first_step_s) / 11
    assert first_step_s > 5 * rest_per_step  # the tracing step really is the slow one
    eta = seen[1]["eta_s"]  # 10 steps left
    assert eta is not None and eta < 10 * first_step_s / 3
    assert seen[-1]["eta_s"] == 0


def test_learning_rate_schedules():
    c = Config.preset("cpu-small", warmup_steps=10, min_lr_fraction=0.0)
    assert learning_rate_at(c, 1.0, 0.0, 0) == pytest.approx(0.1)
    assert learning_rate_at(c, 1.0, 0.5, 100) == pytest.approx(0.5)
    assert learning_rate_at(c, 1.0, 1.0, 100) == pytest.approx(0.0, abs=1e-12)
    k = Config.preset("paper")
    assert learning_rate_at(k, 1e-5, 0.7, 5000) == 1e-5


def test_weight_average_follows_a_short_run(pairs):
    """A run of a few dozen steps (a short fine-tune) is averaged over its own steps, not held
    back by its starting weights: the average's momentum warms up to the configured one."""
    c = Config.preset("tiny", ema_momentum=0.995, batch_size=2, patch_size=32)
    assert ema_momentum_at(c, 0) == pytest.approx(0.1)
    assert ema_momentum_at(c, 30) < 0.8 and ema_momentum_at(c, 10_000) == 0.995
    assert ema_momentum_at(Config.preset("tiny", ema_momentum=None), 50) == 0.0
    trainer = Trainer(c, 3)
    start = [w.copy() for w in trainer.generator.get_weights()]
    sampler = _sampler(pairs, c)
    rng = np.random.default_rng(0)
    for step in range(30):
        trainer.set_learning_rate(step / 30, step)
        x, y = sampler.sample(rng)
        trainer.train_step(tf.constant(x), tf.constant(y))
    now = [w.copy() for w in trainer.generator.get_weights()]
    with trainer.averaged_weights():
        avg = trainer.generator.get_weights()

    def dist(a, b):
        return math.sqrt(sum(float(np.sum((u - v) ** 2)) for u, v in zip(a, b, strict=True)))

    assert dist(avg, now) < 0.5 * dist(avg, start)


def test_bad_training_input(pairs):
    lq, hq, ids = pairs
    m = EnhancementModel(Config.preset("tiny"))
    with pytest.raises(ValueError, match="pair 1"):
        m.train([lq[0], lq[1]], [hq[0], hq[1][:, :32]], steps=1)
    with pytest.raises(ValueError, match="channel"):
        m.train([lq[0], lq[1][:2]], [hq[0], hq[1][:2]], steps=1)


def _comparable(value):
    """A field's value in a form ``==`` compares fully (generators by state, arrays by value)."""
    if isinstance(value, np.random.Generator):
        return rng_state(value)
    if isinstance(value, list) and value and isinstance(value[0], np.ndarray):
        return [(a.dtype.str, a.shape, a.tolist()) for a in value]
    return value


def test_loop_state_round_trip_keeps_every_field(tmp_path):
    """What a checkpoint stores is what a resumed run gets back, field by field: a field added
    to LoopState must be set below (the first check fails otherwise) and then survives."""
    state = LoopState(
        rng=np.random.default_rng(11),
        step=7,
        elapsed_s=12.5,
        history=[{"step": 5, "elapsed_s": 9.0, "val_psnr": 30.1, "val_ssim": 0.8}],
        best={"step": 5, "val_psnr": 30.1, "val_ssim": 0.8},
        last_val={"val_psnr": 29.0, "val_ssim": 0.7},
        lr_scale=0.25,
        recoveries=[{"step": 6, "restored_step": 5, "lr_scale": 0.5, "reason": "non-finite loss"}],
        recent_losses=[0.5, 0.25],
        best_weights=[np.arange(6, dtype=np.float32).reshape(2, 3)],
    )
    state.rng.random(3)  # a generator part-way through its stream
    fresh = LoopState(rng=np.random.default_rng(0))
    for f in fields(LoopState):
        assert _comparable(getattr(state, f.name)) != _comparable(getattr(fresh, f.name)), f.name

    through_json = LoopState.from_dict(json.loads(json.dumps(state.to_dict())), state.best_weights)
    c = Config.preset("tiny", adv_weight=0.0)
    trainer = Trainer(c, 3, "float32")
    trainer.save_checkpoint(str(tmp_path), state)
    through_checkpoint = trainer.load_checkpoint(str(tmp_path))
    for back in (through_json, through_checkpoint):
        for f in fields(LoopState):
            assert _comparable(getattr(back, f.name)) == _comparable(getattr(state, f.name)), f.name
        assert back.rng.random() == copy.deepcopy(state.rng).random()
