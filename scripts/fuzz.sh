#!/usr/bin/env bash
# Runs every cargo-fuzz target for a short time (default 30 s each):
#   bash scripts/fuzz.sh [seconds]
# cargo-fuzz needs nightly compiler flags; on a stable toolchain RUSTC_BOOTSTRAP=1 enables
# them. Crashes are left in fuzz/artifacts/<target>/ and fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
export RUSTC_BOOTSTRAP=1
cd fuzz
for target in $(cargo fuzz list); do
    echo "--- fuzzing $target for ${seconds}s"
    mkdir -p "corpus/$target"
    cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -max_len=65536 \
        -print_final_stats=0
done
