#!/usr/bin/env bash
# Installs NVIDIA's `ptxas` (PTX assembler) into <repo>/.cache/ptxas/bin/ptxas, taken from the
# PyPI wheel `nvidia-cuda-nvcc-cu12` (the binary lies at nvidia/cuda_nvcc/bin/ptxas inside it).
# Idempotent: does nothing when a working ptxas is already there.
# Usage: scripts/install-ptxas.sh            (repo root found from this script's location)
# Env:   TESSERA_PTXAS_WHEEL_VERSION=12.9.86 pins the wheel version (default: 12.9.86).
# Needs: python3 with pip (pip download), network access to PyPI. Linux x86_64 only.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$repo/.cache/ptxas"
bin="$dest/bin/ptxas"
version="${TESSERA_PTXAS_WHEEL_VERSION:-12.9.86}"

if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
    echo "ptxas already installed: $bin"
    exit 0
fi

case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) ;;
    *) echo "install-ptxas: only Linux x86_64 is supported (got $(uname -s)-$(uname -m))" >&2; exit 1 ;;
esac

if command -v python3 >/dev/null 2>&1; then py=python3; else py=python; fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "downloading nvidia-cuda-nvcc-cu12==$version from PyPI ..."
"$py" -m pip download --quiet --no-deps --only-binary=:all: \
    --platform manylinux2014_x86_64 --python-version 3 --implementation py \
    "nvidia-cuda-nvcc-cu12==$version" -d "$tmp" >&2 \
  || "$py" -m pip download --quiet --no-deps "nvidia-cuda-nvcc-cu12==$version" -d "$tmp" >&2

wheel="$(ls "$tmp"/nvidia_cuda_nvcc_cu12-*.whl | head -n 1)"
# A wheel is a zip file: extract the one member we need with Python (no unzip dependency).
"$py" - "$wheel" "$tmp/ptxas" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("nvidia/cuda_nvcc/bin/ptxas") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY

mkdir -p "$dest/bin"
chmod +x "$tmp/ptxas"
mv "$tmp/ptxas" "$bin"
"$bin" --version
echo "ptxas installed: $bin"
