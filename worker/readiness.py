"""A pairing's readiness report: can these two microscopes' images be learned as a pair?

It checks what the optics alone can tell before a single image is uploaded: the diffraction
limit of each side (Rayleigh, 0.61 λ / NA), whether each camera samples it at Nyquist, the
LQ→HQ resampling factor the aligner will apply, and how far mapped emission bands differ.
"""

from __future__ import annotations

import socket
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from api.db import session_scope
from api.tables import Microscope, Pairing, PairingStatus, ReadinessReport, TaskState, utcnow
from worker.transient import TRANSIENT_ERRORS

NYQUIST_FACTOR = 2.3  # practical Nyquist: at least 2.3 pixels across the resolved distance
EMISSION_MISMATCH_NM = 40.0


def rayleigh_resolution_um(emission_nm: float, numerical_aperture: float) -> float:
    return 0.61 * emission_nm / 1000.0 / numerical_aperture


def _side(microscope: Microscope) -> dict[str, Any]:
    return {
        "microscope_id": microscope.id,
        "name": microscope.name,
        "modality": microscope.modality.value,
        "numerical_aperture": microscope.numerical_aperture,
        "immersion_index": microscope.immersion_index,
        "pixel_size_um": microscope.pixel_size_um,
        "channels": [c.name for c in microscope.channels],
    }


def pairing_readiness(pairing: Pairing) -> dict[str, Any]:
    """Compute the report; `ready` is False only for problems that block training."""
    lq, hq = pairing.lq_microscope, pairing.hq_microscope
    lq_channels = {c.name: c for c in lq.channels}
    hq_channels = {c.name: c for c in hq.channels}
    blocking: list[str] = []
    warnings: list[str] = []
    if pairing.status != PairingStatus.active:
        blocking.append(f"the pairing is {pairing.status.value}; reactivate it to train")
    unmapped = sorted(set(lq_channels) - {p["lq_channel"] for p in pairing.channel_map})
    if unmapped:
        warnings.append(f"LQ channels without an HQ counterpart are ignored: {', '.join(unmapped)}")

    channels = []
    for pair in pairing.channel_map:
        lq_c, hq_c = lq_channels[pair["lq_channel"]], hq_channels[pair["hq_channel"]]
        row: dict[str, Any] = {"lq_channel": lq_c.name, "hq_channel": hq_c.name}
        for side, microscope, channel in (("lq", lq, lq_c), ("hq", hq, hq_c)):
            resolution = rayleigh_resolution_um(channel.emission_nm, microscope.numerical_aperture)
            nyquist = resolution / NYQUIST_FACTOR
            sampled = microscope.pixel_size_um <= nyquist
            row[f"{side}_resolution_um"] = round(resolution, 4)
            row[f"{side}_nyquist_pixel_um"] = round(nyquist, 4)
            row[f"{side}_nyquist_sampled"] = sampled
            if not sampled:
                warnings.append(
                    f"{side.upper()} channel {channel.name!r}: pixel {microscope.pixel_size_um} µm "
                    f"is coarser than Nyquist ({nyquist:.3f} µm); fine detail is lost at capture"
                )
        difference = abs(lq_c.emission_nm - hq_c.emission_nm)
        row["emission_difference_nm"] = difference
        if difference > EMISSION_MISMATCH_NM:
            warnings.append(
                f"channels {lq_c.name!r}/{hq_c.name!r} emit {difference:.0f} nm apart; check the "
                "mapping: different fluorophores image different structures"
            )
        channels.append(row)

    return {
        "pairing_id": pairing.id,
        "ready": not blocking,
        "blocking": blocking,
        "warnings": warnings,
        "lq": _side(lq),
        "hq": _side(hq),
        "lq_to_hq_scale": round(lq.pixel_size_um / hq.pixel_size_um, 6),
        "channels": channels,
    }


def run(factory: sessionmaker[Session], report_id: int) -> dict[str, Any]:
    """Compute a stored report and record how it ended; one already computed is returned as
    stored (a redelivered task does no work twice)."""
    with session_scope(factory) as session:
        report = session.get(ReadinessReport, report_id)
        if report is None:
            return {"report_id": report_id, "skipped": "the report no longer exists"}
        if report.state == TaskState.succeeded and report.report is not None:
            return report.report
        report.state = TaskState.running
        report.worker_host = socket.gethostname()
        report.started_at = utcnow()
        session.commit()
        try:
            result = pairing_readiness(session.get_one(Pairing, report.pairing_id))
        except TRANSIENT_ERRORS:
            raise  # the database is unreachable: retried, not recorded as failed
        except Exception as exc:
            report.state = TaskState.failed
            report.error = f"{type(exc).__name__}: {exc}"[:2000]
            report.finished_at = utcnow()
            return {"report_id": report_id, "error": report.error}
        report.report = result
        report.state = TaskState.succeeded
        report.finished_at = utcnow()
        return result
