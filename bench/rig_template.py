"""Benchmark: the rig stage's template method on generated humanoids of known joints.

Each body is drawn at random (seeded) from a range of heights, proportions, T- and A-poses and bent or
straight elbows and knees (tests/humanoids.py), meshed at about 20k vertices, and rigged with
server.rigging.rig_mesh. For each body it prints the joint error against the true joints (mean and max,
as a share of the height, over the joints the bodies define) and the time of the landmark fit, the skin
weights and the whole stage; then the summary against the goals (mean <= 3 %, max <= 6 %, <= 10 s for a
20k-vertex body on 2 cores).

    python bench/rig_template.py [--count 12] [--cells 160] [--seed 16] [--family capsules|skin]

--family skin grows the same builds with Blender's Skin modifier instead (needs bpy; about 3-4k vertices
a body, a shape family the fitter was not tuned on).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from server.errors import ForgeError  # noqa: E402
from server.rigging import rig_mesh  # noqa: E402
from tests.humanoids import MEASURED_JOINTS, Body, make_humanoid, make_skin_humanoid  # noqa: E402


def random_body(rng: np.random.Generator, cells: int) -> Body:
    a_pose = rng.random() < 0.5
    return Body(
        height=float(rng.uniform(1.45, 2.0)),
        arm_drop_deg=float(rng.uniform(28, 50) if a_pose else rng.uniform(0, 10)),
        leg_share=float(rng.uniform(0.48, 0.56)),
        shoulder_share=float(rng.uniform(0.8, 0.83)),
        shoulder_half=float(rng.uniform(0.105, 0.13)),
        hip_half=float(rng.uniform(0.052, 0.064)),
        head_share=float(rng.uniform(0.12, 0.15)),
        girth=float(rng.uniform(0.85, 1.2)),
        arm_share=float(rng.uniform(0.32, 0.37)),
        forearm_share=float(rng.uniform(0.41, 0.48)),
        shank_share=float(rng.uniform(0.46, 0.53)),
        hand_share=float(rng.uniform(0.095, 0.115)),
        elbow_bend_deg=float(rng.choice([0.0, rng.uniform(5, 20)])),
        knee_bend_deg=float(rng.choice([0.0, rng.uniform(5, 15)])),
        cells=cells,
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--cells", type=int, default=160, help="marching-cubes cells along the height")
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--family", choices=("capsules", "skin"), default="capsules")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    work = Path(tempfile.mkdtemp(prefix="o3f_rig_bench_"))
    print(f"rig template benchmark: {args.count} {args.family} humanoids, seed {args.seed}, "
          f"{os.cpu_count()} CPU cores")
    header = (f"{'#':>2} {'height':>6} {'pose':>4} {'drop':>5} {'girth':>5} {'verts':>6} {'fit s':>6} {'weights s':>9} "
              f"{'total s':>7} {'mean %':>6} {'max %':>6}  worst joint")
    print(header)
    print("-" * len(header))
    means, maxima, totals, refused = [], [], [], []
    for index in range(args.count):
        body = random_body(rng, args.cells)
        human = make_humanoid(body) if args.family == "capsules" else make_skin_humanoid(body, work / str(index))
        started = time.perf_counter()
        try:
            rig = rig_mesh(human.mesh)
        except ForgeError as exc:
            refused.append(index)
            print(f"{index:>2} {human.height:6.3f} {'':>4} {body.arm_drop_deg:5.1f} {body.girth:5.2f} "
                  f"{len(human.mesh.vertices):6d} refused: {exc}")
            continue
        total = time.perf_counter() - started
        errors = {name: float(np.linalg.norm(rig.joints[name] - human.joints[name])) / human.height
                  for name in MEASURED_JOINTS}
        worst = max(errors, key=errors.get)
        seconds = rig.report["seconds"]
        means.append(np.mean(list(errors.values())))
        maxima.append(errors[worst])
        totals.append(total)
        print(f"{index:>2} {human.height:6.3f} {rig.report['pose']:>4} {body.arm_drop_deg:5.1f} {body.girth:5.2f} "
              f"{len(human.mesh.vertices):6d} {seconds['landmarks']:6.2f} {seconds['weights']:9.2f} {total:7.2f} "
              f"{100 * means[-1]:6.2f} {100 * maxima[-1]:6.2f}  {worst}")
    print("-" * len(header))
    if means:
        print(f"joint error: mean of means {100 * np.mean(means):.2f} % (goal <= 3 %), worst max "
              f"{100 * max(maxima):.2f} % (goal <= 6 %)")
        print(f"time per body: median {np.median(totals):.2f} s, slowest {max(totals):.2f} s (goal <= 10 s at 20k "
              f"vertices on 2 cores)")
    print(f"refused: {len(refused)} of {args.count}" + (f" (bodies {refused})" if refused else ""))
    return 0 if not refused else 1


if __name__ == "__main__":
    sys.exit(main())
