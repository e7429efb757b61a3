#!/usr/bin/env bash
# Build step of the GPU twin measurement (issue 8), run on a CUDA machine through the
# `device` tool from the repository root, with .gpu/ carried (see README.md here).
# Builds llama.cpp (same vendored commit as llama-cpp-python 0.3.36) with CUDA for sm_90 as
# shared libraries + llama-bench, and writes the two Q4_K_M twins. Idempotent.
set -euo pipefail
PY=${PY:-python3}
G=.gpu
B=${BUILD_DIR:-/tmp/lcbuild}  # outside the tree: a carried .gpu/ replaces what is there
export PYTHONPATH="$PWD:$PWD/$G/lcp:$PWD/$G/site"
mkdir -p "$G/site"
"$PY" -m pip install -q --no-index --no-deps --target "$G/site" "$G"/wheels/*.whl 2>&1 | tail -2 || true

if [ ! -x "$B/bin/llama-bench" ]; then
  mkdir -p "$G/src" && tar xzf "$G/llama-cpp-src.tgz" -C "$G/src"
  cmake -S "$G/src/llama.cpp" -B "$B" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGGML_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 -DBUILD_SHARED_LIBS=ON -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF > "$B.cmake.log" 2>&1 || { tail -30 "$B.cmake.log"; exit 1; }
  ( time cmake --build "$B" --target llama-bench llama -j 16 ) > "$B.log" 2>&1 &
  BUILD=$!
fi

TW=${TWIN_DIR:-/tmp/twins}
mkdir -p "$TW"
for name in gemma-4-26b-a4b qwen3.5-35b-a3b; do
  [ -s "$TW/$name.gguf" ] || "$PY" -m workbench twin "catalog:$name" --quant Q4_K_M \
      -o "$TW/$name.gguf" --json > "$TW/$name.json" &
done
wait
[ -x "$B/bin/llama-bench" ] || { tail -40 "$B.log"; exit 1; }
tail -3 "$B.log"
ls -la "$TW"
