"""Losses of paper eq. 5–6, all computed in float32.

Images are percentile-normalised floats (about [0, 1]); SSIM uses ``max_val = 1`` on those floats.
The published code cast images to uint8 before SSIM, which makes that term constant (no
gradient); nothing here casts to an integer type.

Relativistic BCE (eq. 5) is computed on the discriminator's logits with
``tf.nn.sigmoid_cross_entropy_with_logits`` – ``BCE(σ(a), y)`` without forming ``σ(a)`` – so it
neither overflows nor saturates to ``log(0)``. Note that with a pairwise difference
``a = D(G(X)) − D(Y)`` the two terms of eq. 5 are equal (``BCE(a, y) = BCE(−a, 1 − y)``), so
eq. 5 equals ``2 · softplus(±a)``; it is kept in the paper's form for readability.
"""

from __future__ import annotations

import tensorflow as tf


def _f32(x):
    return tf.cast(x, tf.float32)


def mse(y_true, y_pred):
    """Mean squared error (scalar, float32)."""
    return tf.reduce_mean(tf.square(_f32(y_pred) - _f32(y_true)))


def mae(y_true, y_pred):
    """Mean absolute error (scalar, float32)."""
    return tf.reduce_mean(tf.abs(_f32(y_pred) - _f32(y_true)))


def ssim(y_true, y_pred, filter_size: int = 11):
    """Mean SSIM over a NHWC batch of float images with ``max_val = 1`` (scalar, float32)."""
    return tf.reduce_mean(
        tf.image.ssim(_f32(y_true), _f32(y_pred), max_val=1.0, filter_size=filter_size)
    )


def ssim_loss(y_true, y_pred, filter_size: int = 11):
    """``1 − SSIM`` (scalar, float32)."""
    return 1.0 - ssim(y_true, y_pred, filter_size)


def bce_with_logits(logits, labels):
    """Mean binary cross-entropy of ``sigmoid(logits)`` against ``labels``, computed stably."""
    logits = _f32(logits)
    labels = tf.broadcast_to(_f32(labels), tf.shape(logits))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def relativistic_bce(real_logits, fake_logits, y):
    """Eq. 5: ``BCE(D(G(X)) − D(Y), y) + BCE(D(Y) − D(G(X)), 1 − y)`` on logits.

    ``y = 0`` gives the discriminator's loss (real should score above generated); ``y = 1``
    the generator's adversarial term of eq. 6 (generated should score above real).
    """
    real_logits = _f32(real_logits)
    fake_logits = _f32(fake_logits)
    y = tf.cast(y, tf.float32)
    return bce_with_logits(fake_logits - real_logits, y) + bce_with_logits(
        real_logits - fake_logits, 1.0 - y
    )


def discriminator_loss(real_logits, fake_logits):
    """Eq. 5 with ``y = 0``."""
    return relativistic_bce(real_logits, fake_logits, 0.0)


def generator_adversarial_loss(real_logits, fake_logits):
    """The BCE term of eq. 6: eq. 5 with ``y = 1``."""
    return relativistic_bce(real_logits, fake_logits, 1.0)


def generator_loss(
    y_true,
    y_pred,
    real_logits=None,
    fake_logits=None,
    *,
    mse_weight=1.0,
    ssim_weight=0.0,
    adv_weight=0.0,
    l1_weight=0.0,
    ssim_filter_size=11,
):
    """Eq. 6: ``α·MSE + β·(1 − SSIM) + γ·BCE`` (+ an optional ``l1_weight·MAE``).

    Returns a dict of float32 scalars: ``total``, ``mse``, ``ssim_loss``, ``adv``, ``l1``.
    The adversarial term is skipped (zero) when ``adv_weight == 0`` or no logits are given.
    """
    parts = {"mse": mse(y_true, y_pred)}
    parts["ssim_loss"] = (
        ssim_loss(y_true, y_pred, ssim_filter_size) if ssim_weight else tf.constant(0.0)
    )
    parts["l1"] = mae(y_true, y_pred) if l1_weight else tf.constant(0.0)
    if adv_weight and real_logits is not None and fake_logits is not None:
        parts["adv"] = generator_adversarial_loss(real_logits, fake_logits)
    else:
        parts["adv"] = tf.constant(0.0)
    parts["total"] = (
        mse_weight * parts["mse"]
        + ssim_weight * parts["ssim_loss"]
        + adv_weight * parts["adv"]
        + l1_weight * parts["l1"]
    )
    return parts
