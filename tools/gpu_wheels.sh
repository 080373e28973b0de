#!/usr/bin/env bash
# Fill .gpu/wheels with what the GPU machine (Python 3.12, no package index) lacks for the CUDA bake tests and
# bench/bake_gpu.py: nvdiffrast's sources and cp312 wheels. Run here, then carry .gpu (see bench/gpu_run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu/wheels
grep -qx "/.gpu/" .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo "/.gpu/" >> .git/info/exclude; }
pip download --quiet --no-deps --no-binary :all: -d .gpu/wheels diffrp-nvdiffrast==0.3.3.1
pip download --quiet --no-deps --python-version 3.12 --only-binary :all: --platform manylinux_2_28_x86_64 \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 -d .gpu/wheels \
    embreex trimesh rtree xatlas fast-simplification pytest pluggy iniconfig
du -sh .gpu
