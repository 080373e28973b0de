"""Four clients with their own owner keys run three whole chains each at once: every chain finishes with its
own result (names, pictures and zips never mixed), each client sees exactly its own three assets, and the light
endpoints answer while the heavy jobs wait for their slots."""

from __future__ import annotations

import json
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from addon.client import ForgeClient  # noqa: E402
from server.local import running_server  # noqa: E402

CLIENTS, CHAINS = 4, 3
TINY = {"generate": {"resolution": 64, "target_faces": 5000},
        "postprocess": {"target_triangles": 600, "texture_size": 256, "max_hulls": 2},
        "bake": {"ao_samples": 2, "texture_size": 256}}
# Each chain's picture has its own colour; the baked base colour tells whose picture a zip was made from.
COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (200, 200, 40), (200, 40, 200), (40, 200, 200),
           (120, 60, 20), (20, 120, 60), (60, 20, 120), (220, 140, 40), (40, 140, 220), (140, 40, 220)]


def _picture(folder: Path, index: int) -> Path:
    image = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
    ImageDraw.Draw(image).ellipse([24, 16, 104, 116], fill=(*COLOURS[index], 255))
    path = folder / f"chain{index}.png"
    image.save(path)
    return path


def _mean_colour(package: Path, name: str) -> tuple[float, ...]:
    with zipfile.ZipFile(package) as archive, archive.open(f"T_{name}_BC.png") as handle:
        pixels = np.asarray(Image.open(handle).convert("RGBA"), dtype=np.float64).reshape(-1, 4)
    return tuple(pixels[pixels[:, 3] > 0, :3].mean(axis=0))


@pytest.mark.slow
def test_four_clients_three_chains_each(tmp_path):
    with running_server(tmp_path / "workspace") as url:
        keys = [f"load-test-owner-{i}-0123456789" for i in range(CLIENTS)]
        clients = [ForgeClient(url, owner_key=key, download_dir=tmp_path / f"downloads{i}")
                   for i, key in enumerate(keys)]

        def chain(job: tuple[int, int]):
            who, n = job
            index = who * CHAINS + n
            name = f"C{who}_Chain{n}"
            result = clients[who].forge([_picture(tmp_path, index)], name=name, views=["front"], options=TINY)
            return who, index, name, result

        jobs = [(who, n) for who in range(CLIENTS) for n in range(CHAINS)]
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            futures = [pool.submit(chain, job) for job in jobs]
            health = ForgeClient(url, owner_key=keys[0]).health()  # answered while twelve heavy jobs wait
            results = [future.result(timeout=1200) for future in futures]
        assert health["status"] == "ok"

        for who, index, name, result in results:
            assert result.record["name"] == name and result.record["status"] == "ready"
            assert result.file.name == f"{name}_UE5.zip"
            with zipfile.ZipFile(result.file) as archive:
                manifest = json.loads(archive.read("manifest.json"))
            assert manifest["name"] == name and manifest["asset_id"] == result.asset_id
            colour = _mean_colour(result.file, name)
            nearest = min(range(len(COLOURS)), key=lambda i: sum((a - b) ** 2 for a, b in zip(COLOURS[i], colour)))
            assert nearest == index, (name, colour)
        for who, client in enumerate(clients):
            mine = sorted(r.asset_id for w, _, _, r in results if w == who)
            assert sorted(row["asset_id"] for row in client.assets()) == mine
