#!/usr/bin/env bash
# Installs everything the project needs to build, test and run, from Debian 12 packages only.
# Safe to run more than once; does nothing when every package is already present.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config
  # simulation
  libsystemc-dev verilator
  # configuration, command line
  libboost-json1.81-dev libboost-program-options1.81-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # oneDNN: the MXM's batched int8 products and the benchmarks' GEMM baseline; its CMake package
  # asks for OpenCL, which Debian only recommends
  libdnnl-dev ocl-icd-opencl-dev
  # ONNX front end
  libonnx-dev libonnx-testdata libprotobuf-dev protobuf-compiler
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
