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
set -euo pipefail
cd "$(dirname "$0")/.."
SOURCES=${SOURCES:-dist/sources}
WHEELS=${WHEELS:-dist/wheels}
EIGEN_INCLUDE=${EIGEN_INCLUDE:-/usr/include/eigen3}
PY=${PYTHON:-python3}
mkdir -p "$SOURCES" "$WHEELS"

archive() {  # repo commit -> path of its archive (downloaded when missing)
    local file="$SOURCES/${1/\//+}-$2.tar.gz"
    if [ ! -s "$file" ]; then
        curl -fsSL "https://codeload.github.com/$1/tar.gz/$2" -o "$file.part" && mv "$file.part" "$file"
    fi
    echo "$file"
}

unpack() {  # archive dir: the archive's single top folder becomes dir
    mkdir -p "$2"
    tar -xzf "$1" -C "$2" --strip-components=1
}

mapfile -t PLAN < <($PY tools/space_wheels.py plan)
if [ "${FETCH_ONLY:-0}" = 1 ]; then
    for line in "${PLAN[@]}"; do
        read -r name repo commit subdir subs <<<"$line"
        archive "$repo" "$commit" >/dev/null
        for sub in $subs; do spec=${sub#*=}; archive "${spec%@*}" "${spec#*@}" >/dev/null; done
    done
    du -sh "$SOURCES"; exit 0
fi

$PY tools/space_wheels.py check-builder
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$($PY tools/space_wheels.py arch)}
export MAX_JOBS=${MAX_JOBS:-$(nproc)}
[ -f "$EIGEN_INCLUDE/Eigen/Core" ] || { echo "Eigen headers not found in $EIGEN_INCLUDE (set EIGEN_INCLUDE)"; exit 1; }
BUILD=$(mktemp -d)
trap 'rm -rf "$BUILD"' EXIT
for line in "${PLAN[@]}"; do
    read -r name repo commit subdir subs <<<"$line"
    start=$(date +%s)
    tree="$BUILD/$name"
    unpack "$(archive "$repo" "$commit")" "$tree"
    for sub in $subs; do
        path=${sub%%=*}; spec=${sub#*=}
        rm -rf "$tree/$path"; unpack "$(archive "${spec%@*}" "${spec#*@}")" "$tree/$path"
    done
    # GitHub's archives leave submodules empty: give cubvh and o-voxel Eigen's headers where they look for them.
    for eigen in "$tree/third_party/cubvh/third_party/eigen" "$tree/$subdir/third_party/eigen"; do
        if [ -d "$eigen" ] && [ -z "$(ls -A "$eigen")" ]; then rmdir "$eigen"; ln -s "$EIGEN_INCLUDE" "$eigen"; fi
    done
    raw="$BUILD/raw-$name"
    $PY -m pip wheel --no-build-isolation --no-deps --quiet -w "$raw" "$tree/$subdir"
    built=$($PY tools/space_wheels.py relabel "$raw"/*.whl "$WHEELS")
    echo "$name: $(basename "$built") in $(( $(date +%s) - start )) s, $(du -h "$built" | cut -f1)"
done
(cd "$WHEELS" && sha256sum ./*.whl)
