import math

import numpy as np
import pytest
import tensorflow as tf

from models import losses as L


def softplus(x):
    return math.log1p(math.exp(x))


def test_relativistic_bce_hand_computed():
    real = tf.constant([[2.0], [-1.0]])
    fake = tf.constant([[0.5], [1.0]])
    # y = 0: BCE(f - r, 0) + BCE(r - f, 1) = softplus(f - r) + softplus(f - r)
    d = [0.5 - 2.0, 1.0 - (-1.0)]
    want_d = np.mean([2 * softplus(v) for v in d])
    assert float(L.discriminator_loss(real, fake)) == pytest.approx(want_d, rel=1e-6)
    # y = 1: BCE(f - r, 1) + BCE(r - f, 0) = 2 softplus(r - f)
    want_g = np.mean([2 * softplus(-v) for v in d])
    assert float(L.generator_adversarial_loss(real, fake)) == pytest.approx(want_g, rel=1e-6)
    # equal logits: 2 log 2
    z = tf.zeros((3, 1))
    assert float(L.discriminator_loss(z, z)) == pytest.approx(2 * math.log(2), rel=1e-6)


def test_relativistic_bce_is_stable_for_extreme_logits():
    real = tf.constant([[1e4]])
    fake = tf.constant([[-1e4]])
    d = float(L.discriminator_loss(real, fake))
    g = float(L.generator_adversarial_loss(real, fake))
    assert d == pytest.approx(0.0, abs=1e-6)
    assert g == pytest.approx(4e4, rel=1e-6)
    assert math.isfinite(d) and math.isfinite(g)


def test_mse_and_ssim_hand_computed():
    a = tf.zeros((1, 16, 16, 1))
    b = tf.fill((1, 16, 16, 1), 0.5)
    assert float(L.mse(a, b)) == pytest.approx(0.25)
    x = tf.random.stateless_uniform((2, 32, 32, 3), seed=(1, 2))
    assert float(L.ssim_loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    # constant images: SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)
    c1 = (0.01 * 1.0) ** 2
    want = (2 * 0.5 * 0.25 + c1) / (0.25 + 0.0625 + c1)
    got = float(L.ssim(tf.fill((1, 16, 16, 1), 0.5), tf.fill((1, 16, 16, 1), 0.25), filter_size=7))
    assert got == pytest.approx(want, rel=1e-4)


def test_ssim_loss_has_a_gradient():
    y = tf.random.stateless_uniform((2, 32, 32, 3), seed=(3, 4))
    x = tf.Variable(tf.random.stateless_uniform((2, 32, 32, 3), seed=(5, 6)))
    with tf.GradientTape() as tape:
        loss = L.ssim_loss(y, x)
    g = tape.gradient(loss, x)
    assert g is not None
    assert float(tf.reduce_max(tf.abs(g))) > 1e-6


def test_ssim_on_bfloat16_input_is_computed_in_float32():
    y = tf.random.stateless_uniform((1, 32, 32, 1), seed=(7, 8))
    a = float(L.ssim(y, y * 0.9))
    b = float(L.ssim(tf.cast(y, tf.bfloat16), tf.cast(y * 0.9, tf.bfloat16)))
    assert a == pytest.approx(b, abs=1e-2)


def test_generator_loss_combines_terms():
    y = tf.random.stateless_uniform((2, 32, 32, 1), seed=(1, 1))
    p = y + 0.1
    real, fake = tf.constant([[1.0], [0.0]]), tf.constant([[0.0], [0.5]])
    parts = L.generator_loss(
        y,
        p,
        real,
        fake,
        mse_weight=2.0,
        ssim_weight=0.5,
        adv_weight=0.1,
        l1_weight=0.3,
        ssim_filter_size=7,
    )
    want = (
        2.0 * float(parts["mse"])
        + 0.5 * float(parts["ssim_loss"])
        + 0.1 * float(parts["adv"])
        + 0.3 * float(parts["l1"])
    )
    assert float(parts["total"]) == pytest.approx(want, rel=1e-6)
    assert float(parts["mse"]) == pytest.approx(0.01, rel=1e-4)
    assert float(parts["l1"]) == pytest.approx(0.1, rel=1e-4)
    none = L.generator_loss(y, p, mse_weight=1.0)
    assert float(none["adv"]) == 0.0
