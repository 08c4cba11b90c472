#!/usr/bin/env bash
# Tests of the C ABI from outside Rust: builds libsimdnet.so and libsimdnet.a with the `capi`
# feature, compiles tests/c/test_cblas.c against include/simdnet.h with the system C compiler
# (and once as C++, so the header's extern "C" guard is exercised), links it statically and
# dynamically and runs both (and compiles the timing program tests/c/bench_capi.c), then runs tests/python/test_capi.py (ctypes + numpy) against the
# shared library.
#
# Usage: scripts/capi-tests.sh        (from anywhere; CC, CXX and PYTHON may be set)
# Needs: cargo, a C compiler (cc), python3 with numpy. Exits non-zero on any failure.

set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

CC=${CC:-cc}
CXX=${CXX:-c++}
PYTHON=${PYTHON:-python3}

echo "+ cargo build --release --features capi --lib"
cargo build --release --features capi --lib

TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
    "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
LIB_DIR=$TARGET_DIR/release
for f in libsimdnet.so libsimdnet.a; do
    [[ -f $LIB_DIR/$f ]] || { echo "error: $LIB_DIR/$f was not built" >&2; exit 1; }
done

OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

CFLAGS=(-std=c11 -O2 -Wall -Wextra -Werror -pedantic -I"$ROOT/include")

echo "+ $CC (static) tests/c/test_cblas.c libsimdnet.a"
"$CC" "${CFLAGS[@]}" tests/c/test_cblas.c "$LIB_DIR/libsimdnet.a" -lpthread -ldl -lm \
    -o "$OUT/test_cblas_static"
echo "+ $CC (shared) tests/c/test_cblas.c -lsimdnet"
"$CC" "${CFLAGS[@]}" tests/c/test_cblas.c -L"$LIB_DIR" -Wl,-rpath,"$LIB_DIR" -lsimdnet -lm \
    -o "$OUT/test_cblas_shared"
echo "+ $CC tests/c/bench_capi.c (the timing program: compiled, not run here)"
"$CC" "${CFLAGS[@]}" tests/c/bench_capi.c -L"$LIB_DIR" -Wl,-rpath,"$LIB_DIR" -lsimdnet \
    -o "$OUT/bench_capi"
# The shared build must really use the .so (not a stray static copy). ldd's output is captured
# before it is searched: piping it into `grep -q` under pipefail fails at random, because grep
# exits at the first match and ldd, still writing, then dies of SIGPIPE.
if command -v ldd >/dev/null; then
    linked=$(ldd "$OUT/test_cblas_shared")
    [[ $linked == *libsimdnet.so* ]] ||
        { printf 'error: test_cblas_shared does not link libsimdnet.so; ldd says:\n%s\n' "$linked" >&2; exit 1; }
fi

if command -v "$CXX" >/dev/null; then
    echo "+ $CXX: the header compiles as C++ (extern \"C\" guard) and links"
    printf '#include "simdnet.h"\nint main() { float c = 1; return simdnet_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, 1, 1, 0, 1.0f, nullptr, 1, nullptr, 1, 0.0f, &c, 1) != SIMDNET_OK || c != 0.0f; }\n' \
        >"$OUT/header.cpp"
    "$CXX" -std=c++11 -Wall -Wextra -Werror -I"$ROOT/include" "$OUT/header.cpp" \
        "$LIB_DIR/libsimdnet.a" -lpthread -ldl -lm -o "$OUT/header_cpp"
    "$OUT/header_cpp"
else
    echo "note: no C++ compiler ($CXX); the C++ header check did not run"
fi

echo "+ test_cblas (static)"
"$OUT/test_cblas_static" "$OUT"
echo "+ test_cblas (shared)"
"$OUT/test_cblas_shared" "$OUT"

if ! "$PYTHON" -c 'import numpy' 2>/dev/null; then
    # pyenv shims and virtualenvs may lack the distribution's numpy; try the system python.
    if [[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
        PYTHON=/usr/bin/python3
    else
        echo "error: $PYTHON cannot import numpy (apt-get install python3-numpy)" >&2
        exit 1
    fi
fi
echo "+ $PYTHON tests/python/test_capi.py"
SIMDNET_LIB="$LIB_DIR/libsimdnet.so" "$PYTHON" tests/python/test_capi.py
echo "capi tests: all passed"
