#!/usr/bin/env bash
# Checks one example through cargo-lambda's own Runtime API emulator:
# `cargo lambda watch --example NAME` builds and serves it, and
# `cargo lambda invoke` sends it a single event, a batch, a Function URL
# event and a bad event. Fails unless every answer is the expected one.
#
#   bash scripts/cargo-lambda-watch.sh [EXAMPLE]    # default: iris
#
# Environment: CARGO_LAMBDA_PORT (default: a free port from 9100 up),
# FEATURES_EVENT (default: a 4-feature row, the Iris shape).
# cargo-lambda comes from PyPI (`pip install --no-deps cargo-lambda`), installed
# here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

example="${1:-iris}"
features="${FEATURES_EVENT:-[5.1,3.5,1.4,0.2]}"

if ! command -v cargo-lambda >/dev/null 2>&1; then
  echo "cargo-lambda-watch: installing cargo-lambda from PyPI"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps 'cargo-lambda>=1.8,<2'
fi

port="${CARGO_LAMBDA_PORT:-}"
if [[ -z "$port" ]]; then
  for candidate in $(seq 9100 9199); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
      port=$candidate
      break
    fi
  done
fi

# Build first so that the watch below starts the function at once.
cargo build --quiet --example "$example"

log="$(mktemp -t cargo-lambda-watch.XXXXXX)"
cargo lambda watch --quiet --ignore-changes --invoke-address 127.0.0.1 --invoke-port "$port" \
  --example "$example" >"$log" 2>&1 &
watch_pid=$!
cleanup() {
  kill "$watch_pid" 2>/dev/null || true
  wait "$watch_pid" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT

invoke() {
  timeout 60 cargo lambda invoke --invoke-address 127.0.0.1 --invoke-port "$port" \
    --output-format json --data-ascii "$1" 2>&1 | tr -d ' \n' || true
}

# Wait for the emulator to accept connections.
for _ in $(seq 1 120); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  if ! kill -0 "$watch_pid" 2>/dev/null; then
    echo "cargo-lambda-watch: cargo lambda watch exited:"; cat "$log"; exit 1
  fi
  sleep 0.5
done

failures=0
expect() { # NAME OUTPUT NEEDLE...
  local name="$1" output="$2"; shift 2
  for needle in "$@"; do
    if [[ "$output" != *"$needle"* ]]; then
      echo "FAIL $name: expected $needle in: $output"
      failures=$((failures + 1))
      return
    fi
  done
  echo "ok   $name: ${output:0:160}"
}

out="$(invoke "{\"features\":$features}")"
expect single "$out" '"prediction"' '"cold_start":true'
out="$(invoke "{\"instances\":[$features,$features]}")"
expect batch "$out" '"predictions"' '"cold_start":false'
body="{\\\"features\\\":$features}"
out="$(invoke "{\"version\":\"2.0\",\"requestContext\":{\"http\":{\"method\":\"POST\"}},\"body\":\"$body\",\"isBase64Encoded\":false}")"
expect function-url "$out" '"statusCode":200' 'prediction'
out="$(invoke '{"features":[1.0]}')"
expect bad-event "$out" 'FeatureCount'
out="$(invoke "{\"features\":$features}")"
expect after-error "$out" '"prediction"'

if ((failures > 0)); then
  echo "cargo-lambda-watch: $failures check(s) failed; cargo lambda watch said:"
  cat "$log"
  exit 1
fi
echo "cargo-lambda-watch: example $example answered every event through cargo lambda watch"
