# shellcheck shell=bash
# Source this file (`. scripts/arm64-env.sh`) to build and test for aarch64
# with Debian's Rust toolchain, which carries the aarch64 standard library that
# rustup cannot add here. It puts Debian's cargo/rustc first on PATH (cargo
# lambda then never tries `rustup target add`), and keeps their build output in
# a target dir of its own so it never invalidates the rustup builds.
# `scripts/setup-arm64.sh` installs everything this needs.
_apr_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_apr_bin="$_apr_repo/target/debian-toolchain/bin"
mkdir -p "$_apr_bin"
for _apr_tool in cargo rustc rustdoc cargo-clippy clippy-driver; do
  if [ -x "/usr/bin/$_apr_tool" ]; then
    ln -sf "/usr/bin/$_apr_tool" "$_apr_bin/$_apr_tool"
  fi
done
export PATH="$_apr_bin:$PATH"
export RUSTC=/usr/bin/rustc
export RUSTDOC=/usr/bin/rustdoc
export CARGO_TARGET_DIR="$_apr_repo/target/debian"
# Graviton2 is the floor: NEON, dotprod, fp16, no SVE.
export QEMU_CPU="${QEMU_CPU:-neoverse-n1}"
unset _apr_repo _apr_bin _apr_tool
