import numpy as np
import pytest

from models import Config
from models.networks import build_generator, receptive_field_margin
from models.predict import axis_weights, count_tiles, default_overlap, plan_axis, predict_image


@pytest.mark.parametrize("length", [64, 128, 200, 512, 1000, 2048])
@pytest.mark.parametrize("tile", [64, 256, 1024])
def test_plan_axis_covers_with_overlap(length, tile):
    mult, ov = 16, 48
    length = -(-length // mult) * mult
    t, starts = plan_axis(length, tile, ov, mult)
    assert t <= max(tile, length) and t % mult == 0
    assert starts[0] == 0 and starts[-1] + t == length
    assert all(s % mult == 0 for s in starts)
    for a, b in zip(starts, starts[1:], strict=False):
        assert a + t - b >= min(ov, t - mult)


def test_2048_image_is_cut_into_four_tiles():
    t, starts = plan_axis(2048, 1152, 160, 8)
    assert len(starts) == 2 and t == 1104
    t, starts = plan_axis(2048, 1024, 160, 8)  # two 1024 tiles cannot overlap by 160
    assert len(starts) == 3 and t <= 1024


def _fn(config, n=3):
    g = build_generator(config, n)
    return lambda x: np.asarray(g(x, training=False))


@pytest.mark.parametrize(
    "depth,convs,stem", [(2, 1, "none"), (3, 2, "none"), (2, 1, "space_to_depth")]
)
def test_tiled_equals_untiled(depth, convs, stem):
    c = Config.preset("tiny", depth=depth, convs_per_block=convs, base_filters=6, stem=stem)
    fn = _fn(c)
    m = receptive_field_margin(c)
    mult = c.multiple
    rng = np.random.default_rng(0)
    ov = default_overlap(m, mult)
    # bigger than one tile; not a multiple of the network's multiple in x
    img = rng.random((max(232, 3 * ov + 8), max(202, 3 * ov - 30), 3)).astype(np.float32)
    whole = predict_image(fn, img, multiple=mult, margin=m, tile_size=1024)
    shapes = []

    def spy(x):
        shapes.append(x.shape)
        return fn(x)

    tiled = predict_image(spy, img, multiple=mult, margin=m, tile_size=128, batch_size=3)
    cap = max(128, 2 * ov)
    assert len(shapes) > 1 and max(s[1] for s in shapes) <= cap  # bounded tiles, batched
    assert shapes[0][0] == 3
    assert whole.shape == tiled.shape == img.shape
    np.testing.assert_allclose(tiled, whole, atol=1e-3)
    assert np.abs(tiled - whole).max() < 1e-4


@pytest.mark.parametrize("length", [200, 1000, 2048])
@pytest.mark.parametrize("overlap", [8, 24, 72, 144])
def test_blending_weights_sum_to_one(length, overlap):
    t, starts = plan_axis(length, 512, overlap, 8)
    ws = axis_weights(t, starts, length, overlap, margin=33)
    total = np.zeros(length)
    for s, w in zip(starts, ws, strict=True):
        assert w.shape == (t,) and (w >= 0).all()
        total[s : s + t] += w
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_no_step_at_tile_borders_on_a_real_image(trained_tiny, w2s_field):
    model, _ = trained_tiny
    img = w2s_field[:, :320, :320]
    whole = model.predict(img, tile_size=512)
    tiled = model.predict(img, tile_size=128)
    scale = float(np.percentile(whole, 99.8) - np.percentile(whole, 1))
    assert np.abs(tiled - whole).max() / scale < 1e-3
    # the jump across every tile border is what it is in the untiled prediction
    c = model.config
    ov = default_overlap(receptive_field_margin(c), 4)
    t, starts = plan_axis(320, max(128, 2 * ov), ov, 4)
    assert len(starts) > 1
    for s in starts[1:]:
        for b in (s, s + t // 2):
            jt = np.abs(tiled[:, b] - tiled[:, b - 1]).mean()
            jw = np.abs(whole[:, b] - whole[:, b - 1]).mean()
            assert jt == pytest.approx(jw, rel=1e-2)


def test_ensemble_is_the_mean_of_the_eight_transforms():
    c = Config.preset("tiny")
    fn = _fn(c, 1)
    img = np.random.default_rng(1).random((40, 56, 1)).astype(np.float32)
    kw = dict(multiple=4, margin=receptive_field_margin(c), tile_size=256)
    ens = predict_image(fn, img, ensemble=True, **kw)
    manual = []
    for k in range(4):
        for flip in (False, True):
            a = img[:, ::-1] if flip else img
            p = predict_image(fn, np.ascontiguousarray(np.rot90(a, k)), **kw)
            p = np.rot90(p, -k)
            manual.append(p[:, ::-1] if flip else p)
    np.testing.assert_allclose(ens, np.mean(manual, axis=0), atol=1e-5)
    assert not np.allclose(ens, predict_image(fn, img, **kw), atol=1e-4)


def test_model_predict_layouts_and_dtypes(trained_tiny):
    model, _ = trained_tiny
    rng = np.random.default_rng(2)
    img = (rng.random((3, 40, 52)) * 1000 + 100).astype(np.uint16)
    out = model.predict(img)
    assert out.shape == img.shape and out.dtype == np.float32
    # the output is in the input's intensity scale
    assert 0.2 < out.mean() / img.mean() < 5
    stack = np.stack([img, img[:, ::-1].copy()])
    zs = model.predict(stack)
    np.testing.assert_allclose(zs[0], out, rtol=1e-5, atol=1e-2)
    np.testing.assert_allclose(zs[1], model.predict(img[:, ::-1].copy()), rtol=1e-5, atol=1e-2)
    u = model.predict(img, out_dtype="uint16")
    assert u.dtype == np.uint16
    assert model.predict(img, ensemble=True).shape == img.shape
    with pytest.raises(ValueError, match="channel"):
        model.predict(img[:2])
    with pytest.raises(ValueError, match="out_dtype"):
        model.predict(img, out_dtype="int8")
    assert count_tiles((40, 52), 4, 10, 64) == 1


def test_compiled_predict_fn_matches_the_model_for_each_shape(trained_tiny):
    model, _ = trained_tiny
    fn = model._ensure_built().predict_fn
    rng = np.random.default_rng(5)
    for shape in [(1, 32, 32, 3), (2, 48, 64, 3), (1, 32, 32, 3)]:
        x = rng.random(shape, dtype=np.float32)
        np.testing.assert_allclose(fn(x), np.asarray(model.generator(x)), atol=1e-5)
