#!/usr/bin/env bash
# Installs, idempotently, what building and testing for AWS Graviton (aarch64)
# needs on a Debian 12 x86_64 machine:
#   - Debian's Rust toolchain, which ships an aarch64 standard library
#     (rustup here cannot add targets, and nothing in this repo asks it to),
#     and its clippy, to lint the aarch64 build;
#   - the aarch64 cross linker and libc;
#   - qemu user-mode emulation, to run aarch64 binaries and tests;
#   - cargo-lambda, from PyPI (its `--compiler cargo` mode needs no zig).
# Needs root (apt-get). Safe to run again: it only installs what is missing.
set -euo pipefail

packages=(rustc-web cargo-web rust-web-clippy libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu
          libc6-dev-arm64-cross qemu-user-static)

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  $sudo dpkg --add-architecture arm64
  need_update=1
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-arm64: installing ${missing[*]}"
  if [ "${need_update:-0}" = 1 ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ] || ! apt-cache policy libstd-rust-web-dev:arm64 | grep -q Candidate; then
    $sudo apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends --no-upgrade "${missing[@]}" >/dev/null
else
  echo "setup-arm64: Debian aarch64 toolchain and qemu already installed"
fi

if ! command -v cargo-lambda >/dev/null 2>&1; then
  echo "setup-arm64: installing cargo-lambda from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps 'cargo-lambda>=1.8,<2'
fi

echo "setup-arm64: $(/usr/bin/rustc --version) (Debian), aarch64 std in $(/usr/bin/rustc --print sysroot)/lib/rustlib/aarch64-unknown-linux-gnu"
echo "setup-arm64: $(qemu-aarch64-static --version | head -n 1)"
echo "setup-arm64: $(cargo-lambda lambda --version 2>/dev/null || cargo-lambda --version)"
