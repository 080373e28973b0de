#!/usr/bin/env bash
# On the GPU machine (Python 3.12, torch 2.11 on CUDA 13, nvcc, no network): build the Space's compiled wheels from
# their pinned sources, install them, and run bench/space_gpu_check.py (TRELLIS.2 and Hunyuan3D-2 on tiny random
# weights through the server's API to a UE5 zip; custom_rasterizer; how far TRELLIS v1 imports).
#
#   tools/gpu_wheels.sh space          # here first: dist/sources (pinned archives), .gpu/site.tar.xz (PyPI packages
#                                      # the machine lacks), .gpu/eigen3.tar.gz (Eigen's headers)
#   bash bench/space_gpu_check.sh      # there, carrying dist/sources and .gpu; $OUT gets the log, check.json,
#                                      # wheels.txt (name, size, SHA-256) and the wheels themselves in 15 MB parts
#
# SKIP_BUILD=1 uses wheels already in $WHEELS; ONLY, SUBSTITUTE and SPACE_ARCH_LIST pass through to
# tools/build_space_wheels.sh;
# SITE_ARCHIVE picks another packed site folder; .gpu/prebuilt/*.tar.xz (installed wheels from an earlier run)
# are unpacked into it; BUDGET_S (570) is the whole script's time, the check gets what the build leaves.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORK=${WORK:-/tmp/o3f}; WHEELS=${WHEELS:-$WORK/wheels}; SITE=$WORK/site
mkdir -p "$WORK" "$WHEELS" "$SITE"
exec > >(tee -a "$OUT/check.log") 2>&1
clock() { echo "[$(date +%H:%M:%S)] $*"; }
BEGIN=$(date +%s)

clock "machine"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
python3 -c "import sys, torch; print(sys.version.split()[0], torch.__version__, torch.version.cuda)"
nvcc --version | tail -n 2

clock "PyPI packages the image lacks (.gpu/site.tar.xz, .gpu/extra), Eigen's headers, system libraries"
source bench/gpu_site.sh

if [ "${SKIP_BUILD:-0}" != 1 ]; then
    clock "building the wheels (tools/build_space_wheels.sh, in parallel)"
    started=$(date +%s)
    WHEELS=$WHEELS EIGEN_INCLUDE=$WORK/eigen3 PARALLEL=1 bash tools/build_space_wheels.sh
    clock "wheels built (exit $?) in $(( $(date +%s) - started )) s"
fi
(cd "$WHEELS" && for f in *.whl; do [ -f "$f" ] && echo "$f $(stat -c %s "$f") $(sha256sum "$f" | cut -d' ' -f1)"; done) \
    | tee "$OUT/wheels.txt"
python3 -m pip install -q --no-deps --no-index --no-compile --target "$SITE" "$WHEELS"/*.whl 2>&1 | grep -v WARNING

clock "model sources: trellis2/ (TRELLIS.2), trellis/ with FlexiCubes (TRELLIS v1), FlexGEMM's autotune cache"
SRC=$WORK/src; mkdir -p "$SRC/trellis2" "$SRC/trellis"
tar -xzf dist/sources/microsoft+TRELLIS.2-5565d240c4a494caaf9ece7a554542b76ffa36d3.tar.gz -C "$SRC/trellis2" \
    --strip-components=1 --wildcards '*/trellis2/*'
tar -xzf dist/sources/microsoft+TRELLIS-6b0d64751ad54d9c32d7b05fec482eb29178f56f.tar.gz -C "$SRC/trellis" \
    --strip-components=1 --wildcards '*/trellis/*'
mkdir -p "$SRC/trellis/trellis/representations/mesh/flexicubes"
tar -xzf dist/sources/MaxtirError+FlexiCubes-815e075a2a400d06c48d94c347674344ed6ae5c5.tar.gz \
    -C "$SRC/trellis/trellis/representations/mesh/flexicubes" --strip-components=1
tar -xzf dist/sources/JeffreyXiang+FlexGEMM-6dd94a859c26ee8246888502eada3dd8ad85532e.tar.gz -C "$WORK" \
    --strip-components=1 --wildcards '*/autotune_cache.json'

clock "bench/space_gpu_check.py"
export ATTN_BACKEND=${ATTN_BACKEND:-xformers} PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True \
    FLEX_GEMM_AUTOTUNE_CACHE_PATH=$WORK/autotune_cache.json HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
left=$(( ${BUDGET_S:-570} - ($(date +%s) - BEGIN) ))
timeout "${CHECK_TIMEOUT:-$(( left > 60 ? left : 60 ))}" python3 bench/space_gpu_check.py --work "$WORK/check" --json "$OUT/check.json" \
    --trellis2-src "$SRC/trellis2" --trellis-src "$SRC/trellis"
clock "check exit $?"

# The wheels come back in parts of at most 15 MB (the device returns files of up to 16 MiB); RETURN_WHEELS=0 skips.
if [ "${RETURN_WHEELS:-1}" = 1 ]; then
    (cd "$WHEELS" && tar -cf - ./*.whl 2>/dev/null | split -b 15M - "$OUT/wheels.tar.part-")
fi
ls -la "$OUT"
