"""The registry's description of what a pairing's model outputs: the HQ (reference) side's
channels as mapped, its objective and pixel grid. Training saves it with the model; enhancement
labels each output with it (the input's own pixel size and date take precedence there)."""

from __future__ import annotations

from dataclasses import replace

from api.tables import EnhancementItem, EnhancementJob, Microscope, ModelVersion, Pairing
from models.image_io import ImageInfo
from models.output_metadata import (
    ChannelInfo,
    Imaging,
    ObjectiveInfo,
    OutputMetadata,
    Provenance,
)


def objective_of(scope: Microscope) -> ObjectiveInfo:
    return ObjectiveInfo(
        numerical_aperture=scope.numerical_aperture,
        immersion_index=scope.immersion_index,
        magnification=scope.objective_magnification,
        microscope=scope.make_model or scope.name,
    )


def pairing_imaging(pairing: Pairing) -> Imaging:
    """The output looks like the HQ microscope's image: its channels in the order of the
    channel map (the model's channel order), its objective, its pixel grid (the aligned pairs
    the model learned on are on it)."""
    hq = pairing.hq_microscope
    by_name = {c.name: c for c in hq.channels}
    channels = tuple(
        ChannelInfo(c.name, c.fluorophore or None, c.excitation_nm, c.emission_nm)
        for c in (by_name[p["hq_channel"]] for p in pairing.channel_map)
    )
    return Imaging(
        channels=channels,
        pixel_size_um=hq.pixel_size_um,
        z_step_um=hq.z_step_um,
        objective=objective_of(hq),
        pairing=f"{pairing.id} {pairing.name}",
    )


def enhancement_metadata(
    *,
    pairing: Pairing,
    version: ModelVersion,
    job: EnhancementJob,
    item: EnhancementItem,
    info: ImageInfo,
    precision: str,
    model_id: str | None,
) -> OutputMetadata:
    """One service output's metadata: the HQ side's channels and objective, the pixel size of
    the grid the output is on (the model's when the input was resampled onto it, else the
    input's or the LQ microscope's), the input's Z step and date where it has them, and the
    provenance."""
    lq = pairing.lq_microscope
    reference = pairing_imaging(pairing)
    planned = (item.pixel_size or {}).get("output_um")
    imaging = replace(
        reference,
        pixel_size_um=planned or info.pixel_size_um or item.pixel_size_um or lq.pixel_size_um,
        z_step_um=info.z_step_um or lq.z_step_um,
    )
    provenance = Provenance(
        pairing=reference.pairing or "",
        version=str(version.number),
        model_id=model_id or "",
        model_sha256=version.model_sha256,
        weights_sha256=version.weights_sha256,
        input_file=item.filename,
        input_sha256=item.input_sha256,
        ensemble=job.ensemble,
        precision=precision,
        out_dtype=job.out_dtype,
    )
    return OutputMetadata(
        name=f"{item.filename} enhanced",
        imaging=imaging,
        provenance=provenance,
        acquisition_date=info.acquisition_date,
    )
