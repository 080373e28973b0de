#!/usr/bin/env bash
# Two calls on one warm GPU machine: the Space's wheels built for Hopper and Blackwell, Hunyuan3D-2 on CUDA with tiny
# weights (issue 11), and the GPU path end to end on 1.5M triangles plus a new process's first CUDA bake (issue 17).
#
#   tools/gpu_wheels.sh space, and pip download into .gpu/nv (diffrp-nvdiffrast sdist) and .gpu/embree (embreex)
#   bash bench/gpu_e2e.sh start    # carrying .gpu/site.tar.xz .gpu/syslib.tar.gz .gpu/eigen3.tar.gz .gpu/extra .gpu/nv
#                                  # dist/sources: builds nvdiffrast for the stack's arch list, starts the other
#                                  # wheels' build in the background, runs Hunyuan3D-2 (one view and 2mv) on CUDA
#   bash bench/gpu_e2e.sh finish   # the next call on the same machine, carrying .gpu/embree (embreex for the tests):
#                                  # waits for the wheels, lists their SHA-256 and CUDA code, custom_rasterizer,
#                                  # the CUDA bake tests, bench/bake_gpu.py and bench/scale.py on the CUDA engine
#   SITE_ARCHIVE=.gpu/site-lite.tar.xz ROUNDS=2 bash bench/gpu_e2e.sh path
#                                  # the GPU path alone, this tree against an earlier commit (see 'path' below)
#   SUBSTITUTE=... bash bench/gpu_e2e.sh cumesh   # a call of its own, carrying dist/sources .gpu/eigen3.tar.gz:
#                                  # cumesh, the longest build, for the stack's architectures on all the cores
# $OUT gets the logs and JSON.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True
WORK=${WORK:-/tmp/o3f}; WHEELS=$WORK/wheels; SITE=$WORK/site
mkdir -p "$WORK" "$WHEELS"
exec > >(tee -a "$OUT/$1.log") 2>&1
clock() { echo "[$(date +%H:%M:%S)] $*"; }
clock "$1: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader), $(nproc) cores"

wheel_report() {  # name, size and SHA-256 of each built wheel, and the CUDA code it carries per architecture
    (cd "$WHEELS" && for f in *.whl; do echo "$f $(stat -c %s "$f") $(sha256sum "$f" | cut -d' ' -f1)"; done) \
        | tee "$OUT/wheels.txt"
    for wheel in "$WHEELS"/*.whl; do
        dir=$(mktemp -d); python3 -m zipfile -e "$wheel" "$dir"
        echo "$(basename "$wheel"): $(find "$dir" -name '*.so' -exec cuobjdump --list-elf {} \; 2>/dev/null \
            | grep -o 'sm_[0-9]*[a-z]*' | sort | uniq -c | tr '\n' ' ') PTX: $(find "$dir" -name '*.so' \
            -exec cuobjdump --list-ptx {} \; 2>/dev/null | grep -o 'sm_[0-9]*[a-z]*' | sort -u | tr '\n' ' ')"
        rm -rf "$dir"
    done | tee "$OUT/wheel_arches.txt"
}

if [ "$1" = cumesh ]; then   # alone, on any machine: cumesh for the stack's architectures, all 16 cores
    mkdir -p "$WORK" && tar -xzf .gpu/eigen3.tar.gz -C "$WORK"
    clock "cumesh (its pinned cubvh submodule is not reachable here: SUBSTITUTE names the stand-in)"
    SUBSTITUTE=${SUBSTITUTE:-} WHEELS=$WHEELS ONLY=cumesh EIGEN_INCLUDE=$WORK/eigen3 MAX_JOBS=$(nproc) \
        timeout "${BUILD_TIMEOUT:-540}" bash tools/build_space_wheels.sh
    wheel_report
    python3 -m pip install -q --no-deps --no-index --no-compile --target "$WORK/cumesh" "$WHEELS"/cumesh-*.whl &&
        PYTHONPATH=$WORK/cumesh python3 -c "import cumesh, torch; print('cumesh imports beside torch', torch.__version__)"
    clock "cumesh done"; exit 0
fi
source bench/gpu_site.sh

first_bakes() {  # three new processes' first CUDA bakes at 2048²; FIRST_BAKE=0 leaves them out
    [ "${FIRST_BAKE:-1}" = 1 ] || return 0
    clock "bench/bake_gpu.py: 2048², three new processes"
    timeout 150 python3 bench/bake_gpu.py --sizes 2048 --repeats 3 --fresh 3 --no-cpu --json "$OUT/bake_gpu.json" \
        2>&1 | tail -12
}

case "$1" in
path)   # one call, carrying the site (SITE_ARCHIVE=.gpu/site-lite.tar.xz .gpu/syslib.tar.gz .gpu/eigen3.tar.gz .gpu/extra),
        # .gpu/tri, dist/sources (nvdiffrast, built here unless .gpu/nvwheel holds a built wheel) and .gpu/base
        # (git archive of the commit to compare with, server/ and bench/): a new process's first CUDA bake, then the
        # GPU path end to end on 1.5M triangles, .gpu/base and this tree alternating (ROUNDS rounds); FIRST_BAKE=0
        # leaves out the first bakes
    if ! ls .gpu/nvwheel/nvdiffrast-*.whl >/dev/null 2>&1; then
        clock "nvdiffrast for the stack's architectures"
        mkdir -p .gpu/nvwheel
        WHEELS=$PWD/.gpu/nvwheel ONLY=nvdiffrast EIGEN_INCLUDE=$WORK/eigen3 MAX_JOBS=$(nproc) \
            bash tools/build_space_wheels.sh 2>&1 | tail -5
    fi
    python3 -m pip install -q --no-deps --no-index --no-compile --target "$SITE" .gpu/nvwheel/nvdiffrast-*.whl \
        .gpu/tri/trimesh-*.whl $(ls .gpu/embree/embreex-*.whl 2>/dev/null) 2>&1 | grep -v WARNING
    first_bakes
    for round in $(seq 1 "${ROUNDS:-2}"); do
        clock "round $round: .gpu/base"
        (cd .gpu/base && PYTHONPATH="$SITE:$PWD" timeout 200 python3 bench/scale.py --sizes 1500000 --engine cuda \
            --export --json "$OUT/scale_base_$round.json")
        clock "round $round: this tree"
        timeout 200 python3 bench/scale.py --sizes 1500000 --engine cuda --export --json "$OUT/scale_new_$round.json"
    done
    clock "path done"
    ;;
start)
    clock "nvdiffrast for the stack's architectures (the bakes below use it)"
    WHEELS=$WHEELS ONLY=nvdiffrast EIGEN_INCLUDE=$WORK/eigen3 MAX_JOBS=$(nproc) bash tools/build_space_wheels.sh
    if ls "$WHEELS"/nvdiffrast-*.whl >/dev/null 2>&1; then
        python3 -m pip install -q --no-deps --no-index --no-compile --target "$SITE" "$WHEELS"/nvdiffrast-*.whl
    else
        echo "nvdiffrast wheel FAILED: the bakes use diffrp-nvdiffrast (plugin built on first use)"
        python3 -m pip install -q --no-deps --no-index --no-build-isolation --target "$SITE" .gpu/nv/diffrp_nvdiffrast-*.tar.gz
    fi
    clock "the other wheels, in the background (collected by 'finish')"
    setsid nohup bash -c "WHEELS=$WHEELS ONLY='flex_gemm o_voxel custom_rasterizer' PARALLEL=1 MAX_JOBS=12 \
        EIGEN_INCLUDE=$WORK/eigen3 bash tools/build_space_wheels.sh > $WORK/build-rest.log 2>&1; \
        echo \$? > $WORK/build-rest.rc" < /dev/null > /dev/null 2>&1 &
    clock "Hunyuan3D-2 on CUDA, tiny weights (bench/space_gpu_check.py)"
    timeout 420 python3 bench/space_gpu_check.py --work "$WORK/check" --json "$OUT/check-start.json" \
        --only imports,hunyuan
    clock "start done"
    ;;
finish)
    python3 -m pip install -q --no-deps --no-index --no-compile --target "$SITE" .gpu/embree/embreex-*.whl
    clock "waiting for the background wheels"
    for _ in $(seq 1 60); do [ -f "$WORK/build-rest.rc" ] && break; sleep 5; done
    cat "$WORK/build-rest.log"; echo "build exit: $(cat "$WORK/build-rest.rc" 2>/dev/null || echo 'still running')"
    wheel_report
    python3 -m pip install -q --no-deps --no-index --no-compile --target "$SITE" \
        $(ls "$WHEELS"/*.whl | grep -v nvdiffrast) 2>&1 | grep -v WARNING
    timeout 60 python3 bench/space_gpu_check.py --work "$WORK/check" --json "$OUT/check-finish.json" \
        --only custom_rasterizer
    clock "CUDA bake tests"
    timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_bake_cuda.py 2>&1 | tail -15
    first_bakes
    clock "bench/scale.py: 1.5M triangles, CUDA bake, UE5 export (GLB: no bpy here)"
    timeout 200 python3 bench/scale.py --sizes 1500000 --engine cuda --export --json "$OUT/scale_cuda.json"
    clock "finish done"
    ;;
esac
