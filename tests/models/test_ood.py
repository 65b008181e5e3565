"""The out-of-distribution score on synthetic fields: in-distribution inputs score low, inputs
from another microscope, a wrong channel order, blank or saturated images score high."""

from __future__ import annotations

import numpy as np
import pytest

from models.ood import OodReference, auroc, image_features
from models.synthetic import make_pair

SHAPE = (96, 96)


@pytest.fixture(scope="module")
def reference() -> tuple[OodReference, list[np.ndarray]]:
    """A reference fitted on 10 simulated W2S-like LQs, threshold from 3 more; 4 held out."""
    lqs = [make_pair(SHAPE, seed=s)[0] for s in range(17)]
    ref = OodReference.fit(lqs[:10], 0.1).with_threshold(lqs[10:13])
    return ref, lqs[13:]


def test_in_distribution_low_and_shifted_inputs_high(reference):
    ref, held_out = reference
    ind = [ref.score(x, 0.1) for x in held_out]
    assert not any(s.warn for s in ind), [s.reasons for s in ind]
    shifted = [make_pair(SHAPE, seed=50 + s, wf_na=0.7, wf_photons=2000.0)[0] for s in range(3)]
    shifted += [np.zeros_like(held_out[0]), np.full_like(held_out[0], 65535)]
    scores = [ref.score(x, 0.1) for x in shifted]
    assert all(s.warn and s.reasons for s in scores)
    assert auroc([s.score for s in ind], [s.score for s in scores]) == 1.0


def test_pixel_size_and_channel_count_are_checked(reference):
    ref, held_out = reference
    s = ref.score(held_out[0], 0.3)
    assert s.warn and any("pixel size" in r for r in s.reasons)
    two = ref.score(held_out[0][:2], 0.1)
    assert two.warn and two.score == float("inf")


def test_wrong_channel_order_scores_higher(reference):
    ref, held_out = reference
    for x in held_out:
        ok = ref.score(x, 0.1)
        swapped = ref.score(x[[2, 1, 0]], 0.1)
        assert swapped.score > ok.score
        assert swapped.groups["channel_order"] > ok.groups["channel_order"]


def test_json_round_trip_and_size(reference):
    ref, held_out = reference
    text = ref.to_json()
    assert len(text) < 20_000
    back = OodReference.from_json(text)
    assert back.threshold == ref.threshold
    assert back.score(held_out[0], 0.1).score == pytest.approx(ref.score(held_out[0], 0.1).score)


def test_extra_feature_hook():
    lqs = [make_pair(SHAPE, seed=s)[0] for s in range(6)]
    extra = [{"uncertainty": 0.02 + 0.001 * i} for i in range(6)]
    ref = OodReference.fit(lqs, 0.1, extra=extra)
    assert ref.extra_names == ["uncertainty"]
    low = ref.score(lqs[0], 0.1, extra={"uncertainty": 0.022})
    high = ref.score(lqs[0], 0.1, extra={"uncertainty": 0.5})
    assert high.groups["extra"] > 100 * max(low.groups["extra"], 1e-3)
    with pytest.raises(ValueError, match="uncertainty"):
        ref.score(lqs[0], 0.1)


def test_features_and_auroc_basics():
    f = image_features(np.random.default_rng(0).integers(0, 255, (3, 64, 64), dtype=np.uint8), 0.1)
    assert set(f) == {"intensity", "histogram", "noise", "spectrum", "pixel_size", "channels"}
    assert len(f["channels"]) == 3
    assert auroc([0, 1], [2, 3]) == 1.0 and auroc([0, 1], [0, 1]) == 0.5
    assert auroc([1.0], [float("inf")]) == 1.0


def test_swapped_channel_pair_is_warned_original_is_not(reference):
    """Swapping two channels leaves every pooled feature in range; the channel contrasts
    (differences between the channels of one field) show it."""
    ref, held_out = reference
    for x in held_out:
        assert not ref.score(x, 0.1).warn
        swapped = ref.score(x[[2, 1, 0]], 0.1)
        assert swapped.warn, swapped.groups
        assert any("channel order" in r for r in swapped.reasons)
