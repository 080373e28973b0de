"""The rig run: a skeleton and skin weights on LOD0 by the template or a model method, saved as the rig."""

from __future__ import annotations

import io
from contextlib import nullcontext

from .. import gpu
from ..asset import RIG, Asset
from ..errors import InputError
from ..jobs import Progress, charged_if_failed
from ..jsonsafe import jsonable
from ..quota import QuotaLedger
from ..rigging import RigResult, rig_mesh
from ..rigging import models as rig_models
from ..rigging.methods import TEMPLATE
from .stored import load_game_mesh, lod0_digest


def run_rig(asset: Asset, method: str, options: dict, progress: Progress, check,
            quota: QuotaLedger | None = None) -> dict:
    """Rig the asset's LOD0 with a resolved method (template, or a model method: rigging.methods.resolve) and
    save rig.npz. A refusal (not a humanoid, an open mesh) changes nothing: the rig is written only when it
    succeeded. A model method's GPU calls are checked against today's quota first and charged to it."""
    lods, _, _ = load_game_mesh(asset)
    estimate = None
    if method != TEMPLATE and quota is not None:
        estimate = rig_models.quota_estimate(method, lods[0], options, quota.left_today())
    with asset.stage("rig", {"method": method, **options}) as run:
        run["made_from"] = {"lod0": lod0_digest(lods)}
        check()
        if method == TEMPLATE:
            progress(0.1, "fitting the UE5 Mannequin skeleton")
            rig = rig_mesh(lods[0], options)
        else:
            with charged_if_failed(quota, asset, "rig", estimate) if quota is not None else nullcontext():
                rig = rig_models.rig_with(method, lods[0], options, progress=progress, check_cancelled=check)
            run["gpu_seconds"] = float(rig.report.get("gpu_seconds", 0.0))
            run["gpu_charged_seconds"] = gpu.charged_seconds(run["gpu_seconds"], estimate)
            if quota is not None:
                quota.record("rig", asset.asset_id, run["gpu_charged_seconds"])
        check()
        buffer = io.BytesIO()
        rig.save(buffer)
        asset.write_bytes(RIG, buffer.getvalue())
        run["outputs"]["rig"] = RIG
        run["parameters"]["report"] = jsonable(rig.report)
        progress(1.0, f"{len(rig.bone_names)} bones")
    return rig.report


def current_rig(asset: Asset, record: dict, lod0: str) -> RigResult | None:
    """The asset's rig when its last rig stage rigged this LOD0; None when it was never rigged; refuses a rig
    made for an earlier LOD0 (postprocess ran after it), as export refuses stale maps."""
    rigs = [run for run in record.get("stages", []) if run.get("stage") == "rig" and run.get("status") == "ok"]
    if not rigs:
        return None
    if rigs[-1].get("made_from", {}).get("lod0") != lod0:
        raise InputError("asset_id", asset.asset_id, "a rig made for its current LOD0, but it was rigged before "
                         "the last postprocess: run rig again")
    return RigResult.load(asset.folder / RIG)
