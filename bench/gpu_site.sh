# Sourced by the GPU machine's scripts (bench/space_gpu_check.sh, bench/gpu_e2e.sh): the carried PyPI packages in
# $SITE, Eigen's headers in $WORK/eigen3, Debian's system libraries pymeshlab needs, and the paths that find them.
# Unpacks once per machine ($SITE/.unpacked), so a second call on the same warm machine carries none of it.
: "${WORK:?}" "${SITE:=$WORK/site}"
mkdir -p "$SITE"
if [ ! -f "$SITE/.unpacked" ]; then
    tar -xJf "${SITE_ARCHIVE:-.gpu/site.tar.xz}" -C "$SITE" && tar -xzf .gpu/eigen3.tar.gz -C "$WORK"
    # Wheels built by an earlier run, installed and packed as .gpu/prebuilt/*.tar.xz (build the rest with ONLY=...).
    for packed in .gpu/prebuilt/*.tar.xz; do
        [ -f "$packed" ] && tar -xJf "$packed" -C "$SITE" && echo "prebuilt: $packed"
    done
    python3 -m pip install -q --no-deps --no-index --no-compile --target "$SITE" .gpu/extra/*.whl 2>&1 | grep -v WARNING
    # pymeshlab's Qt and GL libraries need libGL, libX11, fontconfig, ... which the image lacks: Debian's copies
    # (.gpu/syslib.tar.gz), only those the image does not have, on LD_LIBRARY_PATH.
    mkdir -p "$WORK/syslib" "$WORK/syslib-all"
    tar -xzf .gpu/syslib.tar.gz -C "$WORK/syslib-all" --strip-components=1
    for lib in "$WORK"/syslib-all/*.so.*; do
        name=$(basename "$lib")
        ldconfig -p | awk '{print $1}' | grep -qxF "$name" || cp -P "$lib" "$WORK/syslib/"
    done
    echo "system libraries added: $(ls "$WORK/syslib" | tr '\n' ' ')"
    touch "$SITE/.unpacked"
fi
export PYTHONPATH="$SITE:$PWD"
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$WORK/syslib"
