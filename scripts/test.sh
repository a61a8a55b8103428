#!/usr/bin/env bash
# Runs every plinth test: unit, real-vector, CLI and swtpm end-to-end tests.
# Installs the system packages it needs first (Debian).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo test --workspace --all-targets --locked "$@"
# Doc tests are not covered by --all-targets.
cargo test --workspace --doc --locked
