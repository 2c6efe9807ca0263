#!/usr/bin/env bash
# The whole test suite, as CI runs it: lint, x86_64 tests (unit, property,
# fixtures, trybuild, end-to-end against a local Runtime API and through
# `cargo lambda watch`), the 50 MB compile check, the same
# runtime tests on aarch64 under qemu with the NEON kernels, and the Graviton
# `bootstrap` built by `cargo lambda build --arm64` answering real events
# under qemu. Installs what it needs first (Debian packages and cargo-lambda).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "setup: Debian aarch64 toolchain, qemu, cargo-lambda"
bash scripts/setup-arm64.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo clippy -D warnings, aarch64 (the NEON table and everything built only there)"
(
  . scripts/arm64-env.sh
  cargo clippy --workspace --all-targets --all-features --target aarch64-unknown-linux-gnu -- -D warnings
)

step "x86_64: cargo test --workspace --all-features"
cargo test --workspace --all-features

step "cargo lambda watch + cargo lambda invoke: the iris example through cargo-lambda's emulator"
bash scripts/cargo-lambda-watch.sh iris

step "x86_64: apr-runtime without default features (no Lambda, no v1)"
cargo test -p apr-runtime --no-default-features --lib

step "aarch64 under qemu (QEMU_CPU=neoverse-n1): kernels, models, handler"
(
  . scripts/arm64-env.sh
  cargo test -p apr-runtime --all-features --target aarch64-unknown-linux-gnu --lib --tests
)

step "a 50 MB model compiles with no more memory than its include_bytes! (dev and release)"
if [ ! -x /usr/bin/time ]; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends time >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends time >/dev/null; }
fi
cargo test --all-features --test trybuild -- --ignored --nocapture large_model

step "arm64 Lambda: cargo lambda build --release --arm64, then serve real events under qemu (one at a time and, as Managed Instances, four at once)"
bash scripts/build-arm64.sh iris
APR_E2E_BOOTSTRAP="$PWD/target/debian/lambda/iris/bootstrap" \
APR_E2E_RUNNER=qemu-aarch64-static \
APR_E2E_MODEL="$PWD/models/model.apr" \
APR_E2E_EXPECT_KERNELS=neon \
  cargo test --all-features --test e2e -- --ignored --nocapture external_bootstrap
APR_E2E_BOOTSTRAP="$PWD/target/debian/lambda/iris/bootstrap" \
APR_E2E_RUNNER=qemu-aarch64-static \
  cargo test --all-features --test e2e_concurrency -- --ignored --nocapture external_bootstrap_managed_instances

step "arm64 Lambda from ONNX: the converter stays out of the bootstrap, which does not grow"
bash scripts/build-arm64.sh iris_onnx
iris_bytes=$(stat -c %s target/debian/lambda/iris/bootstrap)
onnx_bytes=$(stat -c %s target/debian/lambda/iris_onnx/bootstrap)
echo "bootstrap: iris (.apr) $iris_bytes bytes; iris_onnx (.onnx, converted while compiling) $onnx_bytes bytes"
if grep -q -a "ModelProto" target/debian/lambda/iris_onnx/bootstrap; then
  echo "the ONNX decoder reached the Lambda binary" >&2
  exit 1
fi
if [ "$onnx_bytes" -gt $((iris_bytes + 16384)) ]; then
  echo "the ONNX example's bootstrap is more than 16 KiB larger than iris's" >&2
  exit 1
fi
APR_E2E_BOOTSTRAP="$PWD/target/debian/lambda/iris_onnx/bootstrap" \
APR_E2E_RUNNER=qemu-aarch64-static \
APR_E2E_EXPECT_KERNELS=neon \
  cargo test --all-features --test e2e -- --ignored --nocapture external_bootstrap

step "all green"
