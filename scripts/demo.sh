#!/usr/bin/env bash
# plinth's main job on one machine: a node with a real TPM 2.0 (swtpm) proves what it is
# to a plinth server, gets a hardware-bound SPIFFE identity, and a workload on that node
# fetches its own SVID from the agent's SPIFFE Workload API.
#
#   scripts/demo.sh
#
# Installs the Debian packages it needs when missing, builds plinth in release mode, runs
# everything in a temporary directory and leaves nothing running. Exits non-zero on any
# failure.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib-swtpm.sh
source scripts/lib-swtpm.sh

step() { printf '\n==> %s\n' "$*"; }
run() { printf '    $ %s\n' "$*" >&2; "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/plinth-demo.XXXXXX")
SERVER_PID="" AGENT_PID=""
cleanup() {
    [[ -n $AGENT_PID ]] && kill "$AGENT_PID" 2>/dev/null && wait "$AGENT_PID" 2>/dev/null
    [[ -n $SERVER_PID ]] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null
    swtpm_stop
    rm -rf "$WORK"
}
trap cleanup EXIT
# Waits up to $1 seconds for the command after it to succeed.
wait_for() {
    local seconds=$1; shift
    for _ in $(seq 1 $((seconds * 5))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.2
    done
    echo "timed out waiting for: $*" >&2
    return 1
}

step "1/8 system packages (installed only if missing)"
bash scripts/install-deps.sh
for tool in swtpm swtpm_setup tpm2_quote cargo python3; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done

step "2/8 build plinth (release)"
run cargo build --release --locked -p plinth
PLINTH="${CARGO_TARGET_DIR:-$ROOT/target}/release/plinth"

step "3/8 the verifier alone: a real Google Compute Engine vTPM quote (testdata, nonce 0x9009)"
GCE=testdata/tpm/quotes/gce-cos85
run "$PLINTH" tpm verify-quote --ak "$GCE/ak_pub.tpmt_public.bin" \
    --quote "$GCE/quote_sha256.tpms_attest.bin" --signature "$GCE/quote_sha256.tpmt_signature.bin" \
    --nonce 9009 --pcrs "$GCE/pcrs.json"

step "4/8 manufacture the node's TPM 2.0 (swtpm), its EK certified by a local CA"
swtpm_start "$WORK/tpm"
echo "    swtpm pid $SWTPM_PID, TCTI $TPM2TOOLS_TCTI"
ROOT_PEM="$WORK/tpm/localca/swtpm-localca-rootca-cert.pem"
ROOT_SHA256=$(openssl x509 -in "$ROOT_PEM" -outform DER | sha256sum | cut -d' ' -f1)

step "5/8 start plinth server: its own CA, SQLite, a policy for this node's TPM"
mkdir -p "$WORK/policies" "$WORK/tpm-roots"
cp "$ROOT_PEM" "$WORK/tpm/localca/issuercert.pem" "$WORK/tpm-roots/"
cat >"$WORK/policies/node.toml" <<EOF
version = 1
name = "demo-node"
platform = "tpm"
description = "a freshly manufactured swtpm: PCR 0 untouched, EK from the demo's local CA"

[identity]
trust_domain = "example.org"
spiffe_id = "spiffe://{trust_domain}/node/tpm/{ek_hash}"
svid_ttl_seconds = 3600

[tpm.pcrs.sha256]
0 = ["$(printf '0%.0s' $(seq 64))"]

[tpm.identity]
roots = ["$ROOT_SHA256"]
EOF
PORT=$(free_port)
cat >"$WORK/server.toml" <<EOF
data_dir = "$WORK/server"
listen = "127.0.0.1:$PORT"
metrics_listen = "127.0.0.1:$(free_port)"
policies = "$WORK/policies"
tpm_roots = ["$WORK/tpm-roots"]
EOF
"$PLINTH" server --config "$WORK/server.toml" >"$WORK/server.out" 2>"$WORK/server.log" &
SERVER_PID=$!
wait_for 30 grep -q listening "$WORK/server.out"
sed 's/^/    /' "$WORK/server.out"
run "$PLINTH" bundle show --dir "$WORK/server/ca" >"$WORK/bundle.pem"

step "6/8 start plinth agent: attest with the TPM, serve the Workload API"
cat >"$WORK/agent.toml" <<EOF
server = "127.0.0.1:$PORT"
bundle = "$WORK/bundle.pem"
tcti = "$TPM2TOOLS_TCTI"
event_log = ""
socket = "$WORK/agent/api.sock"
EOF
TSS2_LOG=all+none "$PLINTH" agent --config "$WORK/agent.toml" >"$WORK/agent.out" 2>"$WORK/agent.log" &
AGENT_PID=$!
wait_for 60 grep -q "node attested" "$WORK/agent.log"
NODE=$("$PLINTH" node list --data-dir "$WORK/server" --json |
    python3 -c 'import json,sys; d=json.load(sys.stdin); d=d["nodes"] if isinstance(d,dict) else d; print(d[0]["spiffe_id"])')
echo "    the node proved its TPM (EK certificate, credential activation, quote, certified key)"
echo "    and holds an SVID whose key never leaves the TPM: $NODE"
run "$PLINTH" node list --data-dir "$WORK/server"

step "7/8 register a workload under the node; it fetches its SVID from the Workload API"
run "$PLINTH" registration create --data-dir "$WORK/server" \
    --spiffe-id spiffe://example.org/demo/workload --parent-id "$NODE" \
    --selector "unix:uid:$(id -u)"
export SPIFFE_ENDPOINT_SOCKET="unix://$WORK/agent/api.sock"
wait_for 30 "$PLINTH" workload
run "$PLINTH" workload --audience demo

step "8/8 the audit log: every appraisal hash-chained, checkpoints signed by the CA"
kill "$AGENT_PID"; wait "$AGENT_PID" || true; AGENT_PID=""
kill "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""   # signs a final checkpoint
run "$PLINTH" audit verify --data-dir "$WORK/server"

printf '\nAll steps passed.\n'
