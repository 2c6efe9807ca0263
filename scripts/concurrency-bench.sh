#!/usr/bin/env bash
# Concurrency benchmark (Lambda Managed Instances): invocations/s against a
# local Lambda Runtime API, one invocation at a time vs
# AWS_LAMBDA_MAX_CONCURRENCY = 2, 4, 8.
#
#   bash scripts/concurrency-bench.sh [ROUNDS] [SECONDS]   # default 5 rounds of 2.5 s per point
#   LEVELS=1,2,4 bash scripts/concurrency-bench.sh
#
# Builds, with the workspace release profile (stripped, fat LTO):
#   - examples/serve_manual.rs, serving (APR_MODEL_PATH) a 64 -> 256 -> 256 -> 10
#     softmax MLP written with AprWriter into target/concurrency-bench/models/;
#     events: 64-row batches ({"instances": [...]}), CPU-heavy;
#   - examples/iris.rs (the default model); events: one row ({"features": [...]}),
#     dominated by the Runtime API round trip;
# then, for each round, each workload and each concurrency C, starts the
# function (AWS_LAMBDA_MAX_CONCURRENCY=C, unset for C = 1) against a fresh
# Runtime API (tests/support/runtime_api.rs), keeps max(2, 2 C) invocations
# queued or in flight (one driver thread refilling the queue as answers come:
# a thread per invocation would wake in a herd on every emulator event and
# take CPU from the function), warms up for 0.5 s and counts the answers in
# SECONDS.
# Every answer is checked to be a success of the expected shape. Prints a
# markdown table: median invocations/s over the rounds and the ratio to C = 1
# (scripts/concurrency-bench.rs does the measuring).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
rounds="${1:-5}"
seconds="${2:-2.5}"
levels="${LEVELS:-1,2,4,8}"
bench="$root/target/concurrency-bench"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
mkdir -p "$bench/models"

# The bench crate: the driver and the model writer. Its own workspace, the
# same release profile.
cp Cargo.lock "$bench/Cargo.lock"
cat >"$bench/Cargo.toml" <<EOF
[package]
name = "apr-concurrency-bench"
version = "0.0.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
apr-runtime = { path = "$root/apr-runtime" }
serde_json = "1"

[[bin]]
name = "concurrency-bench"
path = "$root/scripts/concurrency-bench.rs"

[profile.release]
opt-level = 3
lto = "fat"
codegen-units = 1
strip = "symbols"
panic = "unwind"
EOF

echo "==> building release binaries (fat LTO; this takes a few minutes)"
cargo build --release --example serve_manual --example iris
(cd "$bench" && CARGO_TARGET_DIR="$target_dir" cargo build --release --bin concurrency-bench)

rel="$target_dir/release"
model="$bench/models/mlp-64-256-256-10.apr"
echo "==> writing the MLP model"
"$rel/concurrency-bench" model "$model"

echo "==> $rounds rounds, ${seconds} s per point, concurrency $levels ($(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
"$rel/concurrency-bench" run --rounds "$rounds" --seconds "$seconds" --levels "$levels" \
  --mlp "$rel/examples/serve_manual" "$model" --iris "$rel/examples/iris"
