"""The postprocess run: the game-ready chain on the asset's high poly, saved as the game mesh."""

from __future__ import annotations

import json

from ..asset import HIGH_POLY, HULLS, LODS, POSTPROCESS_STATE, STAGE_CACHE, Asset
from ..cache import StageCache, file_digest, meshes_to_bytes
from ..gameready import PostSettings, postprocess
from ..jobs import Progress
from ..jsonsafe import jsonable
from .stored import game_ready_checks, high_arrays, lod0_digest, read_high_poly


def run_postprocess(asset: Asset, settings: PostSettings, progress: Progress, check) -> dict:
    """Geometry stages on the asset's high poly; saves game/lods.npz, game/hulls.npz and game/postprocess.json."""
    mesh = read_high_poly(asset)
    high = high_arrays(mesh)
    cache = StageCache(asset.folder / STAGE_CACHE)
    high_digest = file_digest(asset.folder / HIGH_POLY)
    with asset.stage("postprocess", jsonable(settings.__dict__)) as run:
        run["made_from"] = {"high_poly": high_digest}
        game = postprocess(high, high_digest, settings, cache, progress, check)
        check()
        asset.write_bytes(LODS, meshes_to_bytes(game.lods))
        asset.write_bytes(HULLS, meshes_to_bytes(game.hulls))
        asset.write_bytes(POSTPROCESS_STATE, json.dumps(jsonable(
            {"settings": settings.__dict__, "transform": game.transform, "deviation_m": game.deviation,
             "report": game.report})).encode())
        run["outputs"].update({"lods": LODS, "hulls": HULLS, "postprocess": POSTPROCESS_STATE})
        run["parameters"]["report"] = jsonable(game.report)
        state = {"settings": settings.__dict__, "report": jsonable(game.report)}
        run["parameters"]["checks"] = game_ready_checks(game.lods, game.hulls, state, None)
        run["made"] = {"lod0": lod0_digest(game.lods)}
    return game.report
