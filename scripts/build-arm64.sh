#!/usr/bin/env bash
# Builds an example Lambda for Graviton (arm64, provided.al2023) with
# `cargo lambda build --release --arm64 --compiler cargo`, and packages it as
# bootstrap.zip. Usage: scripts/build-arm64.sh [EXAMPLE]   (default: iris)
# Output: target/debian/lambda/EXAMPLE/bootstrap and .../bootstrap.zip
set -euo pipefail
cd "$(dirname "$0")/.."
example="${1:-iris}"
bash scripts/setup-arm64.sh >/dev/null
. scripts/arm64-env.sh
out="$CARGO_TARGET_DIR/lambda/$example"
# The zip build reuses the binary and leaves it beside the zip.
cargo lambda build --release --arm64 --compiler cargo --example "$example"
cargo lambda build --release --arm64 --compiler cargo --example "$example" --output-format zip
od -An -c -N4 "$out/bootstrap" | grep -q "E   L   F" && echo "aarch64 ELF: $out/bootstrap"
ls -l "$out/bootstrap" "$out/bootstrap.zip"
