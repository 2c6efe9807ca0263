#!/usr/bin/env bash
# What llvm-mca predicts for the NEON gemv and gemm inner loops on Graviton2
# (neoverse-n1) and Graviton3 (neoverse-v1), as a fraction of the FMA peak.
#
# NEON speed cannot be timed on this x86_64 machine (qemu is not a timing
# model), so this is the evidence we have: the release build's own assembly
# for the aarch64 target (the code that ships: generic aarch64, no
# target-cpu), the innermost loop of each kernel cut out of it, and
# llvm-mca's steady-state cycles per iteration on each core's scheduling
# model. Peak: Neoverse N1 issues two 128-bit FMLA per cycle, Neoverse V1
# four. The model assumes every load hits L1, so for gemv (one load per FMA)
# this is the in-cache bound, not what a weight matrix streamed from L2/DRAM
# reaches.
#
# Usage: bash scripts/llvm-mca-neon.sh   (needs scripts/setup-arm64.sh and
# Debian's llvm-19 for llvm-mca-19; llvm-mca 14 lacks neoverse-v1 details)
set -euo pipefail
cd "$(dirname "$0")/.."

mca=$(command -v llvm-mca-19 || command -v llvm-mca || true)
if [ -z "$mca" ]; then
  echo "llvm-mca not found: apt-get install llvm-19" >&2
  exit 1
fi

(
  . scripts/arm64-env.sh
  cargo rustc -q -p apr-runtime --release --lib --target aarch64-unknown-linux-gnu -- --emit asm
)
asm=$(ls -t target/debian/aarch64-unknown-linux-gnu/release/deps/apr_runtime-*.s | head -1)
out=target/llvm-mca
mkdir -p "$out"

# Cut the loop with the most FMLAs out of each kernel's entry point: the
# 6-row gemm tile and the 8-row gemv step.
python3 - "$asm" "$out" <<'EOF'
import re, sys
asm, out = sys.argv[1], sys.argv[2]
lines = open(asm).read().split("\n")
for kernel in ("gemv", "gemm"):
    pattern = re.compile(r"^_ZN11apr_runtime7kernels7aarch644neon5entry%d%s17h[0-9a-f]+E:$" % (len(kernel), kernel))
    start = next(i for i, l in enumerate(lines) if pattern.match(l))
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("\t.size"))
    body = lines[start:end]
    best = None
    for i, l in enumerate(body):
        m = re.match(r"^(\.LBB\w+):", l)
        if not m:
            continue
        label = m.group(1)
        for j in range(i + 1, len(body)):
            if re.search(r"\tb(\.\w+)?\s+%s$" % re.escape(label), body[j]) or \
               re.search(r"\tcb n?z\s+\w+, %s$" % re.escape(label), body[j]):
                loop = [x for x in body[i + 1:j + 1]
                        if x.startswith("\t") and not x.startswith("\t.") and not x.startswith("\t//")]
                if any(re.match(r"^\.LBB", x) for x in body[i + 1:j]):
                    break  # not a single basic block
                fmla = sum(1 for x in loop if x.startswith("\tfmla"))
                if best is None or fmla > best[0]:
                    best = (fmla, loop)
                break
    fmla, loop = best
    with open(f"{out}/{kernel}.s", "w") as f:
        f.write("\n".join(loop) + "\n")
    print(f"{kernel}: inner loop of {len(loop)} instructions, {fmla} FMLA (4 lanes each)")
EOF

printf '\n| kernel | core | cycles/iteration | FMLA/cycle | of FMA peak |\n|---|---|---|---|---|\n'
for kernel in gemv gemm; do
  fmla=$(grep -c '^\s*fmla' "$out/$kernel.s")
  for cpu in neoverse-n1 neoverse-v1; do
    case $cpu in neoverse-n1) peak=2 ;; neoverse-v1) peak=4 ;; esac
    report=$("$mca" -mtriple=aarch64-linux-gnu -mcpu=$cpu -iterations=1000 "$out/$kernel.s" 2>/dev/null)
    cycles=$(awk '/^Total Cycles:/ {print $3}' <<<"$report")
    python3 -c "
c = $cycles / 1000; f = $fmla / c
print(f'| $kernel | $cpu | {c:.2f} | {f:.2f} | {100 * f / $peak:.0f} % |')"
  done
done
