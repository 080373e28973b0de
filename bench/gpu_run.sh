#!/usr/bin/env bash
# On the GPU machine (carry .gpu, filled by tools/gpu_wheels.sh): install the carried wheels, build
# nvdiffrast's plugin, run the CUDA parity tests, then (BENCH=1, the default) bench/bake_gpu.py.
set -o pipefail
export PYTHONUNBUFFERED=1 TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
python3 -m pip install -q --no-deps --no-index --no-build-isolation .gpu/wheels/*.whl \
    .gpu/wheels/diffrp_nvdiffrast-*.tar.gz 2>&1 | grep -v WARNING
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,utilization.gpu --format=csv
python3 -c "from server.bake.gpu_runtime import rasterizer; rasterizer(); print('nvdiffrast ready')" 2>&1 | tail -2
python3 -m pytest -q -s -p no:cacheprovider tests/test_bake_cuda.py 2>&1 | tee "$OUT/tests.log" | tail -30
if [ "${BENCH:-1}" = 1 ]; then
    python3 bench/bake_gpu.py ${BENCH_ARGS:-} --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log" | tail -20
fi
