#!/usr/bin/env bash
# Fill .gpu/ with what the GPU machine (Python 3.12, no package index) lacks, then carry .gpu (and dist/sources).
#
#   tools/gpu_wheels.sh          # the CUDA bake tests and bench/bake_gpu.py (bench/gpu_run.sh): nvdiffrast's
#                                # sources and cp312 wheels in .gpu/wheels
#   tools/gpu_wheels.sh space    # bench/space_gpu_check.sh: .gpu/site.tar.xz (the PyPI packages the server chain,
#                                # TRELLIS.2 and hy3dgen need there, installed for cp312 and packed with xz),
#                                # .gpu/extra (small wheels), .gpu/eigen3.tar.gz (Debian's Eigen headers),
#                                # .gpu/syslib.tar.gz (Debian's libGL, libX11, fontconfig... that pymeshlab needs)
#                                # and dist/sources (the pinned archives, FETCH_ONLY=1 tools/build_space_wheels.sh);
#                                # also .gpu/site-lite.tar.xz, the same without hy3dgen, diffusers, xformers and
#                                # pygltflib (TRELLIS.2's chain only), for calls that carry prebuilt wheels
#   tools/gpu_wheels.sh prebuilt dist/wheels/cumesh-*.whl ...   # each wheel installed and packed as
#                                # .gpu/prebuilt/<name>.tar.xz (bench/space_gpu_check.sh unpacks them)
#
# pymeshlab's cp312 wheel is 106 MB and the device carries 64 MiB a call: the packed copy leaves out its tests,
# the Embree AO plugin and libembree4 (92 MB), the E57 reader with xerces and ICU 70, the static libIDTF.a and two
# duplicate lib3mf copies; pymeshlab reports the two missing plugins as unloadable and runs every filter we use.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .gpu/wheels
grep -qx "/.gpu/" .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo "/.gpu/" >> .git/info/exclude; }
PLATFORMS=(--platform manylinux_2_35_x86_64 --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
           --platform manylinux_2_24_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64)

if [ "${1:-}" = prebuilt ]; then
    shift; mkdir -p .gpu/prebuilt
    for wheel in "$@"; do
        name=$(basename "$wheel" | cut -d- -f1); dir=$(mktemp -d)
        python3 -m pip install --quiet --no-deps --no-compile --target "$dir" --python-version 3.12 \
            --implementation cp --only-binary :all: --platform linux_x86_64 "$wheel"
        tar -C "$dir" -cf - . | xz -T0 -6 > ".gpu/prebuilt/$name.tar.xz"; rm -rf "$dir"
    done
    du -sh .gpu/prebuilt/*; exit 0
fi

if [ "${1:-}" != space ]; then
    pip download --quiet --no-deps --no-binary :all: -d .gpu/wheels diffrp-nvdiffrast==0.3.3.1
    pip download --quiet --no-deps --python-version 3.12 --only-binary :all: "${PLATFORMS[@]}" -d .gpu/wheels \
        embreex trimesh rtree xatlas fast-simplification pytest pluggy iniconfig
    du -sh .gpu; exit 0
fi

TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
python3 -m pip download --quiet --no-deps --only-binary :all: --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]}" -d "$TMP/wheels" pymeshlab==2025.7.post1 mujoco==4.0.1 mujoco-core==4.0.1 trimesh pymeshfix \
    coacd xatlas fast-simplification rtree easydict plyfile zstandard hy3dgen==2.0.2 diffusers pygltflib \
    xformers==0.0.35
python3 -m pip install --quiet --no-deps --no-compile --target "$TMP/site" --python-version 3.12 --implementation cp \
    --only-binary :all: "${PLATFORMS[@]}" "$TMP"/wheels/*.whl
lib="$TMP/site/pymeshlab/lib"
rm -rf "$TMP/site/pymeshlab/tests" "$lib"/libembree4.so* "$lib/plugins/libfilter_embree.so" "$lib/lib3mf.so" \
    "$lib/lib3mf.so.2.4.1.0" "$lib/plugins/libio_e57.so" "$lib"/libE57Format.so* "$lib/libxerces-c-3.2.so" \
    "$lib/libicuuc.so.70" "$lib/libicudata.so.70" "$lib/libIDTF.a" "$TMP/site/mujoco/include" "$TMP/site/mujoco/doc"
find "$TMP/site" -name "*_test.py" -path "*mujoco*" -delete
tar -C "$TMP/site" -cf - . | xz -T0 -9 > .gpu/site.tar.xz
tar -C "$TMP/site" -cf - --exclude="./hy3dgen*" --exclude="./diffusers*" --exclude="./xformers*" \
    --exclude="./pygltflib*" --exclude="./bin" . | xz -T0 -9 > .gpu/site-lite.tar.xz

rm -rf .gpu/extra && python3 -m pip download --quiet --no-deps --only-binary :all: --python-version 3.12 \
    -d .gpu/extra dataclasses-json==0.6.7 "marshmallow>=3.18,<4"   # pygltflib's, for custom_rasterizer

(cd "$TMP" && apt-get download libeigen3-dev libgl1 libglvnd0 libglx0 libopengl0 libx11-6 libxcb1 libxau6 \
    libxdmcp6 libbsd0 libmd0 libfontconfig1 libfreetype6 libpng16-16 libbrotli1 libexpat1 libgmp10 libp11-kit0 libffi8)
mkdir -p "$TMP/deb" "$TMP/syslib"
for deb in "$TMP"/*.deb; do dpkg-deb -x "$deb" "$TMP/deb"; done
tar -C "$TMP/deb/usr/include" -czf .gpu/eigen3.tar.gz eigen3
find "$TMP/deb" -name "*.so*" \( -type f -o -type l \) -exec cp -P {} "$TMP/syslib/" \;
tar -C "$TMP" -czf .gpu/syslib.tar.gz syslib

FETCH_ONLY=1 bash tools/build_space_wheels.sh
du -sh .gpu/* dist/sources
