#!/usr/bin/env bash
# Build the Space's compiled wheels (vendor/wheels.toml) from their pinned upstream commits, for the stack there:
# Python 3.12, torch 2.11.0 on CUDA 13.0, nvcc, TORCH_CUDA_ARCH_LIST="9.0;12.0+PTX" (Hopper and Blackwell).
#
#   tools/build_space_wheels.sh            # on a CUDA machine with that stack (the GPU machine has no network:
#                                          # fill dist/sources here first with FETCH_ONLY=1, then carry it)
#
# Sources: dist/sources/<owner>+<name>-<commit>.tar.gz (GitHub's commit archives; downloaded when missing and
# the network allows). Eigen's headers (cubvh and o-voxel need them): EIGEN_INCLUDE, default
# /usr/include/eigen3 (Debian's libeigen3-dev). Wheels land in dist/wheels/ relabelled +torch2.11.0.cu130;
# then `make space` copies them into the bundle and locks their SHA-256. Published wheels for the same tags
# (the official TRELLIS.2 Space's requirements, or the multimodalart/zerogpu-blackwell-wheels dataset) can be
# dropped into dist/wheels instead, if their file names and tags are the ones vendor/wheels.toml expects.
#
# Other settings: ONLY="cumesh o_voxel" builds those wheels alone; PARALLEL=1 builds them at the same time
# (MAX_JOBS shared out, one log each, printed at the end); SUBSTITUTE="owner/name@commit=owner2/name2@commit2"
# (space-separated pairs) builds from another archive where a pinned one cannot be had, and says so: a wheel
# built that way is not the pinned one. The exit status is the number of wheels that failed.
# The CUDA architectures are the stack's (vendor/wheels.toml arch_list) whatever TORCH_CUDA_ARCH_LIST says: the GPU
# machine's image sets its own (its wheels came out sm_90a only), which would silently drop Blackwell. Set
# SPACE_ARCH_LIST for a quicker local build (e.g. "9.0"); such wheels are not for the Space.
set -uo pipefail
cd "$(dirname "$0")/.."
SOURCES=${SOURCES:-dist/sources}
WHEELS=${WHEELS:-dist/wheels}
EIGEN_INCLUDE=${EIGEN_INCLUDE:-/usr/include/eigen3}
PY=${PYTHON:-python3}
mkdir -p "$SOURCES" "$WHEELS"

substitute() {  # repo@commit -> the spec to build from (itself unless SUBSTITUTE names it)
    local pair
    for pair in ${SUBSTITUTE:-}; do
        if [ "${pair%%=*}" = "$1" ]; then echo "SUBSTITUTED: $1 built from ${pair#*=}" >&2; echo "${pair#*=}"; return; fi
    done
    echo "$1"
}

archive() {  # repo commit -> path of its archive (downloaded when missing)
    local file="$SOURCES/${1/\//+}-$2.tar.gz"
    if [ ! -s "$file" ]; then
        curl -fsSL "https://codeload.github.com/$1/tar.gz/$2" -o "$file.part" && mv "$file.part" "$file"
    fi
    [ -s "$file" ] || { echo "missing source archive $file" >&2; return 1; }
    echo "$file"
}

unpack() {  # archive dir: the archive's single top folder becomes dir
    mkdir -p "$2"
    tar -xzf "$1" -C "$2" --strip-components=1
}

mapfile -t PLAN < <($PY tools/space_wheels.py plan)
if [ -n "${ONLY:-}" ]; then
    chosen=()
    for line in "${PLAN[@]}"; do
        for name in $ONLY; do [ "${line%% *}" = "$name" ] && chosen+=("$line"); done
    done
    PLAN=("${chosen[@]}")
fi
if [ "${FETCH_ONLY:-0}" = 1 ]; then
    for line in "${PLAN[@]}"; do
        read -r name repo commit subdir subs <<<"$line"
        archive "$repo" "$commit" >/dev/null
        for sub in $subs; do spec=$(substitute "${sub#*=}"); archive "${spec%@*}" "${spec#*@}" >/dev/null; done
    done
    du -sh "$SOURCES"; exit 0
fi

export TORCH_CUDA_ARCH_LIST=${SPACE_ARCH_LIST:-$($PY tools/space_wheels.py arch)}
echo "TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST"
$PY tools/space_wheels.py check-builder || exit 1
[ -f "$EIGEN_INCLUDE/Eigen/Core" ] || { echo "Eigen headers not found in $EIGEN_INCLUDE (set EIGEN_INCLUDE)"; exit 1; }
BUILD=$(mktemp -d)
trap 'rm -rf "$BUILD"' EXIT

build_one() {  # one plan line: unpack, fill submodules and Eigen, pip wheel, relabel
    local name repo commit subdir subs start tree sub path spec raw built eigen
    read -r name repo commit subdir subs <<<"$1"
    start=$(date +%s)
    tree="$BUILD/$name"
    unpack "$(archive "$repo" "$commit")" "$tree" || return 1
    for sub in $subs; do
        path=${sub%%=*}; spec=$(substitute "${sub#*=}")
        rm -rf "${tree:?}/$path"; unpack "$(archive "${spec%@*}" "${spec#*@}")" "$tree/$path" || return 1
    done
    # GitHub's archives leave submodules empty: give cubvh and o-voxel Eigen's headers where they look for them.
    for eigen in "$tree/third_party/cubvh/third_party/eigen" "$tree/$subdir/third_party/eigen"; do
        if [ -d "$eigen" ] && [ -z "$(ls -A "$eigen")" ]; then rmdir "$eigen"; ln -s "$EIGEN_INCLUDE" "$eigen"; fi
    done
    raw="$BUILD/raw-$name"
    $PY -m pip wheel --no-build-isolation --no-deps --quiet -w "$raw" "$tree/$subdir" || return 1
    built=$($PY tools/space_wheels.py relabel "$raw"/*.whl "$WHEELS") || return 1
    echo "$name: $(basename "$built") in $(( $(date +%s) - start )) s, $(du -h "$built" | cut -f1)"
}

failed=0
if [ "${PARALLEL:-0}" = 1 ]; then
    total=${MAX_JOBS:-$(nproc)}
    export MAX_JOBS=$(( total / ${#PLAN[@]} > 2 ? total / ${#PLAN[@]} : 2 ))
    pids=()
    for line in "${PLAN[@]}"; do
        build_one "$line" > "$BUILD/${line%% *}.log" 2>&1 &
        pids+=($!)
    done
    for i in "${!PLAN[@]}"; do
        name=${PLAN[$i]%% *}
        if wait "${pids[$i]}"; then tail -n 1 "$BUILD/$name.log"; else
            failed=$((failed + 1)); echo "$name: FAILED; the end of its log:"; tail -n 40 "$BUILD/$name.log"; fi
        grep -h "SUBSTITUTED" "$BUILD/$name.log" || true
    done
else
    export MAX_JOBS=${MAX_JOBS:-$(nproc)}
    for line in "${PLAN[@]}"; do
        build_one "$line" || { failed=$((failed + 1)); echo "${line%% *}: FAILED"; }
    done
fi
(cd "$WHEELS" && sha256sum ./*.whl 2>/dev/null)
exit "$failed"
