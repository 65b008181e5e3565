"""Can this enhanced image be trusted? The checks every enhancement carries, in one place.

A model learns, when it is published, what its pairing looks like (:class:`TrustReference`):
the wide-field blur relative to the HQ (:func:`models.consistency.fit_blur`, whose FWHM is the
pairing's *effective PSF*) and the training fields' image statistics with a warning threshold
chosen on the validation fields (:class:`models.ood.OodReference`). The reference is saved in
the model's metadata (``metadata["trust"]``), so the service and the local command check every
output the same way (:func:`assess`):

* **consistency** — degraded again by the pairing's blur, does the output reproduce its own
  input? (error and z maps per channel, RSP / RSE per channel, a flag with reasons);
* **out of distribution** — does the input look like the training fields? (score, threshold,
  warning with reasons);
* **uncertainty** — :mod:`models.uncertainty`'s calibrated interval half-width per pixel, for a
  model published with a calibration (``metadata["uncertainty_calibration"]``, see
  :func:`uncertainty_for`; ``None`` for older models).

``review`` is true when any check says so, and ``review_reasons`` says why — the one bit a
biologist looks at before using the pixels. The maps go to a second OME-TIFF beside the output
(:mod:`models.trust_maps`); :meth:`TrustAssessment.summary` is the JSON an enhancement item and
the command line report.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from .check_threads import map_beside, submit_beside
from .consistency import Blur, ConsistencyReport, consistency, fit_blur
from .input_channels import input_channel
from .ood import OodReference, OodScore

TRUST_FORMAT = "pairscope-trust/1"
METADATA_KEY = "trust"
#: The effective PSF is reported as "LQ as sharp as HQ" below this FWHM (pixels): the fit
#: cannot tell a blur narrower than a third of a pixel from none.
SHARP_FWHM_PX = 0.33


class UncertaintyLike(Protocol):
    """What :func:`models.uncertainty.uncertainty` returns (``UncertaintyResult``)."""

    point: np.ndarray
    half_width: np.ndarray

    def summary(self) -> dict[str, Any]: ...


# ----------------------------------------------------------------------------- the reference
@dataclass(frozen=True)
class TrustReference:
    """What a model knows about its pairing to check its outputs: blur and input statistics."""

    blur: Blur
    ood: OodReference

    def effective_psf(self) -> str:
        """The pairing's blur relative to the HQ, as the evaluation report states it."""
        fwhm_px = self.blur.fwhm_px
        if all(f < SHARP_FWHM_PX for f in fwhm_px):
            return "LQ as sharp as HQ (no extra blur: a denoising pairing)"
        um = self.blur.fwhm_um
        if um is None:
            return "FWHM " + ", ".join(f"{f:.2f}" for f in fwhm_px) + " px"
        return "FWHM " + ", ".join(f"{f:.3f}" for f in um) + " µm"

    def to_dict(self) -> dict[str, Any]:
        return {"format": TRUST_FORMAT, "blur": self.blur.to_dict(), "ood": self.ood.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrustReference:
        if d.get("format") != TRUST_FORMAT:
            raise ValueError(f"not a {TRUST_FORMAT} document (format {d.get('format')!r})")
        return cls(Blur.from_dict(d["blur"]), OodReference.from_dict(d["ood"]))

    def describe(self) -> dict[str, Any]:
        """The reference as the evaluation report and the version's metrics show it."""
        return {
            "effective_psf": self.effective_psf(),
            "blur_fwhm_px": [round(f, 4) for f in self.blur.fwhm_px],
            "blur_fwhm_um": None if self.blur.fwhm_um is None else list(self.blur.fwhm_um),
            "blur_fit_residual": list(self.blur.fit_residual),
            "blur_fields": self.blur.n_fields,
            "ood_threshold": self.ood.threshold,
            "ood_threshold_note": self.ood.threshold_note,
            "ood_fields": self.ood.n_fields,
        }


def fit_trust_reference(
    train_lq: Sequence[np.ndarray],
    train_hq: Sequence[np.ndarray],
    validation_lq: Sequence[np.ndarray],
    pixel_size_um: float,
) -> TrustReference:
    """Fit the blur and the input statistics on aligned training planes (``CYX``, one grid of
    ``pixel_size_um``), and the OOD threshold on the validation planes. Without validation
    fields the threshold comes from the training fields themselves (scored in-sample, so it is
    tighter — more warnings, never fewer); its note says so."""
    blur = fit_blur(train_hq, train_lq, pixel_size_um=pixel_size_um)
    ood = OodReference.fit(list(train_lq), pixel_size_um)
    if validation_lq:
        ood = ood.with_threshold(list(validation_lq))
    else:
        ood = ood.with_threshold(list(train_lq))
        note = f"{ood.threshold_note} (training fields: the snapshot has no validation fields)"
        ood = replace(ood, threshold_note=note)
    return TrustReference(blur, ood)


def reference_of(metadata: dict[str, Any]) -> TrustReference | None:
    """A saved model's reference; ``None`` for a model published before trust checks."""
    saved = metadata.get(METADATA_KEY)
    return TrustReference.from_dict(saved) if saved else None


# ----------------------------------------------------------------------------- the assessment
@dataclass
class TrustAssessment:
    """The checks of one enhanced image (all its Z planes) and its maps.

    ``maps``: ``(Z)CYX`` float32 on the output's grid, channels named by ``map_names``:
    ``consistency-error:<channel>`` (SQUIRREL's smoothed error, in units of the input's dynamic
    range), ``consistency-z:<channel>`` (the same residual in units of its expected noise,
    signed; the flag looks at ``|z| > 5``) and, once a model is calibrated,
    ``uncertainty-half-width:<channel>``.
    """

    consistency: list[ConsistencyReport]  # one per Z plane
    ood: OodScore  # the plane furthest from training
    maps: np.ndarray
    map_names: list[str]
    uncertainty: dict[str, Any] | None = None
    extra_reasons: list[str] = field(default_factory=list)

    @property
    def consistency_flagged(self) -> bool:
        return any(r.flag for r in self.consistency)

    @property
    def review_reasons(self) -> list[str]:
        reasons = [f"consistency: {r}" for r in _plane_reasons(self.consistency)]
        if self.ood.warn:
            reasons += [f"out of distribution: {r}" for r in self.ood.reasons] or [
                f"out of distribution: score {self.ood.score:.2f} > {self.ood.threshold}"
            ]
        if self.uncertainty and self.uncertainty.get("flagged"):
            reasons += [f"uncertainty: {r}" for r in self.uncertainty.get("reasons", [])]
        return reasons + self.extra_reasons

    @property
    def review(self) -> bool:
        return bool(self.review_reasons)

    def summary(self) -> dict[str, Any]:
        """The item's ``trust`` JSON: per-channel numbers (the worst plane's), verdicts, why."""
        n_ch = len(self.consistency[0].channels)
        rsp = [min(r.channels[c].rsp for r in self.consistency) for c in range(n_ch)]
        rse = [max(r.channels[c].rse for r in self.consistency) for c in range(n_ch)]
        rsp_corr = [min(r.channels[c].rsp_corrected for r in self.consistency) for c in range(n_ch)]
        return {
            "consistency": {
                "rsp": _rounded(rsp),
                "rse": _rounded(rse),
                "rsp_corrected": _rounded(rsp_corr),
                "flagged": self.consistency_flagged,
                "reasons": _plane_reasons(self.consistency),
                "planes": len(self.consistency),
            },
            "ood": {
                "score": _finite(self.ood.score),
                "threshold": _finite(self.ood.threshold),
                "warning": bool(self.ood.warn),
                "reasons": list(self.ood.reasons),
                "groups": {k: _finite(v) for k, v in self.ood.groups.items()},
            },
            "uncertainty": self.uncertainty,
            "review": self.review,
            "review_reasons": self.review_reasons,
            "maps": list(self.map_names),
        }


def assess(
    enhanced: np.ndarray,
    lq: np.ndarray,
    axes: str,
    reference: TrustReference,
    pixel_size_um: float,
    channel_names: Sequence[str] | None = None,
    uncertainty: UncertaintyLike | Callable[[], UncertaintyLike | None] | None = None,
) -> TrustAssessment:
    """Check an enhanced image against its own input (same grid, axes ``(Z)(C)YX``) and the
    model's reference; ``pixel_size_um`` is the input's on that grid. ``uncertainty``: the
    calibrated map, or a function that makes it (run beside the other checks)."""
    # the input keeps its dtype: the OOD reference was fitted on the raw (8/16-bit) fields
    out, inp = _zcyx(enhanced, axes), _zcyx(lq, axes, dtype=None)
    if out.shape != inp.shape:
        raise ValueError(f"output shape {np.shape(enhanced)} != input shape {np.shape(lq)}")
    n_ch = out.shape[1]
    names = list(channel_names or [])
    if len(names) != n_ch:
        names = [f"c{c}" for c in range(n_ch)]
    # the uncertainty map and its summary need neither of the other checks: beside them
    pending = submit_beside(_with_summary, uncertainty)
    reports, scores = [], []
    for o, i in zip(out, inp, strict=True):
        # normalisation and noise model, one channel per thread, shared by both checks
        channels = map_beside(input_channel, i)
        ood = submit_beside(reference.ood.score, i, pixel_size_um, channels=channels)
        reports.append(consistency(o, i, reference.blur, lq_channels=channels))
        scores.append(ood.result())
    worst = max(scores, key=lambda s: s.score)
    map_names = [f"consistency-error:{n}" for n in names] + [f"consistency-z:{n}" for n in names]
    uncertainty, summary = pending.result()
    if uncertainty is not None:
        map_names += [f"uncertainty-half-width:{n}" for n in names]
    # every map written once into the (Z)CYX float32 block
    maps = np.empty((out.shape[0], len(map_names), *out.shape[2:]), np.float32)
    for z, r in enumerate(reports):
        maps[z, :n_ch] = r.error_map
        maps[z, n_ch : 2 * n_ch] = r.z_map
    if uncertainty is not None:
        maps[:, 2 * n_ch :] = _zcyx(np.asarray(uncertainty.half_width), axes, dtype=None)
    return TrustAssessment(
        consistency=reports,
        ood=worst,
        maps=maps,
        map_names=map_names,
        uncertainty=summary,
    )


def _with_summary(
    uncertainty: UncertaintyLike | Callable[[], UncertaintyLike | None] | None,
) -> tuple[UncertaintyLike | None, dict[str, Any] | None]:
    made = uncertainty() if callable(uncertainty) else uncertainty
    return made, None if made is None else made.summary()


def maps_axes(axes: str) -> str:
    """The trust maps' axes for an output of ``axes``: always with a channel axis."""
    return "ZCYX" if "Z" in axes else "CYX"


def maps_for_axes(assessment: TrustAssessment, axes: str) -> np.ndarray:
    """The maps shaped for :func:`maps_axes` (a 2-D output's maps drop the Z axis)."""
    return assessment.maps if "Z" in axes else assessment.maps[0]


def _zcyx(image: np.ndarray, axes: str, dtype: type | None = np.float32) -> np.ndarray:
    arr = np.asarray(image, dtype=dtype)
    axes = axes.upper()
    if len(axes) != arr.ndim or axes not in ("YX", "CYX", "ZYX", "ZCYX"):
        raise ValueError(f"axes {axes!r} do not fit an image of shape {arr.shape}")
    if "C" not in axes:
        arr = np.expand_dims(arr, axes.index("Y"))
    if "Z" not in axes:
        arr = arr[None]
    return arr


def _plane_reasons(reports: list[ConsistencyReport]) -> list[str]:
    if len(reports) == 1:
        return list(reports[0].reasons)
    return [f"plane {z}: {r}" for z, rep in enumerate(reports) for r in rep.reasons]


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else round(float(v), 4)


def _rounded(values: Sequence[float]) -> list[float | None]:
    return [_finite(v) for v in values]


# ----------------------------------------------------------------------------- one output
UNCERTAINTY_KEY = "uncertainty_calibration"


def calibration_of(metadata: dict[str, Any]) -> Any:
    """A saved model's uncertainty calibration (:class:`models.uncertainty.Calibration`);
    ``None`` for a model published before uncertainty was calibrated."""
    from .uncertainty import Calibration

    saved = metadata.get(UNCERTAINTY_KEY)
    return Calibration.from_dict(saved) if saved else None


def uncertainty_for(
    model: Any, image: np.ndarray, axes: str, output: np.ndarray | None = None
) -> UncertaintyLike | None:
    """The calibrated per-pixel uncertainty of ``model``'s prediction of ``image`` (axes
    ``(Z)(C)YX``); ``None`` for a model without ``metadata[UNCERTAINTY_KEY]``. ``output``: the
    prediction already made (it is the point; the model is not run again)."""
    from .uncertainty import model_members, uncertainty

    calibration = calibration_of(model.metadata)
    if calibration is None:
        return None
    if output is not None and calibration.n_members == 1:
        return uncertainty(lambda _: [np.asarray(output)], image, calibration)
    return uncertainty(model_members(model, calibration.n_members, axes), image, calibration)


def check_output(
    model: Any,
    image: np.ndarray,
    output: np.ndarray,
    axes: str,
    pixel_size_um: float,
    channel_names: Sequence[str] | None = None,
) -> TrustAssessment | None:
    """The trust checks of one prediction of ``model`` (its input and output on the model's
    grid); ``None`` for a model saved before trust checks (it has no reference)."""
    reference = reference_of(model.metadata)
    if reference is None:
        return None
    return assess(
        output,
        image,
        axes,
        reference,
        pixel_size_um,
        channel_names,
        uncertainty=lambda: uncertainty_for(model, image, axes, output),
    )


def unchecked(error: BaseException) -> dict[str, Any]:
    """The ``trust`` JSON of an output whose checks could not run: review it."""
    reason = f"the trust checks could not run ({type(error).__name__}: {error})"[:500]
    return {
        "consistency": None,
        "ood": None,
        "uncertainty": None,
        "review": True,
        "review_reasons": [reason],
        "maps": [],
    }
