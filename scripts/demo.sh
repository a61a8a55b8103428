#!/usr/bin/env bash
# plinth quick start: verify a real cloud TPM quote, then a quote and an EK certificate
# from a real TPM 2.0 (swtpm) made on the spot.
#
#   scripts/demo.sh
#
# Installs the Debian packages it needs (swtpm, swtpm-tools, tpm2-tools, ...) when missing,
# builds plinth in release mode, and leaves nothing running. Exits non-zero on any failure.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib-swtpm.sh
source scripts/lib-swtpm.sh

step() { printf '\n==> %s\n' "$*"; }
run() { printf '    $ %s\n' "$*" >&2; "$@"; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/plinth-demo.XXXXXX")
cleanup() {
    swtpm_stop
    rm -rf "$WORK"
}
trap cleanup EXIT

step "1/6 system packages (installed only if missing)"
bash scripts/install-deps.sh
for tool in swtpm swtpm_setup tpm2_quote cargo; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 1; }
done
echo "    swtpm $(swtpm --version 2>&1 | sed -n 's/.*version \([0-9.]*\).*/\1/p'), $(tpm2_quote --version | sed -n 's/.*version="\([^"]*\)".*/tpm2-tools \1/p')"

step "2/6 build plinth (release)"
run cargo build --release --locked -p plinth
PLINTH="${CARGO_TARGET_DIR:-$ROOT/target}/release/plinth"

step "3/6 verify a real Google Compute Engine vTPM quote (testdata, nonce 0x9009)"
GCE=testdata/tpm/quotes/gce-cos85
run "$PLINTH" tpm verify-quote --ak "$GCE/ak_pub.tpmt_public.bin" \
    --quote "$GCE/quote_sha256.tpms_attest.bin" --signature "$GCE/quote_sha256.tpmt_signature.bin" \
    --nonce 9009 --pcrs "$GCE/pcrs.json"

step "4/6 manufacture a throwaway TPM 2.0 (swtpm) with EK certificates from a local CA"
swtpm_start "$WORK/tpm"
echo "    swtpm pid $SWTPM_PID, TPM2TOOLS_TCTI=$TPM2TOOLS_TCTI"
cd "$WORK"
run tpm tpm2_createek -c ek.ctx -G rsa -u ek.pub >/dev/null
run tpm tpm2_createak -C ek.ctx -c ak.ctx -G ecc -g sha256 -s ecdsa -u ak.pub -n ak.name >/dev/null
echo "    AK name: $(od -An -v -tx1 ak.name | tr -d ' \n')"
run tpm tpm2_pcrextend "16:sha256=$(printf 'plinth demo' | sha256sum | cut -d' ' -f1)"

step "5/6 quote PCRs 0-7 and 16 with a fresh random nonce; plinth verifies it"
NONCE=$(od -An -v -N32 -tx1 /dev/urandom | tr -d ' \n')
SELECTION=sha256:0,1,2,3,4,5,6,7,16
run tpm tpm2_quote -c ak.ctx -l "$SELECTION" -q "$NONCE" -g sha256 \
    -m quote.attest -s quote.sig >/dev/null
tpm tpm2_pcrread "$SELECTION" | pcrs_json "$NONCE" >pcrs.json
run "$PLINTH" tpm verify-quote --ak ak.pub --quote quote.attest --signature quote.sig \
    --nonce "$NONCE" --pcrs pcrs.json
echo "    ... and with a different nonce it must refuse (a replayed quote):"
OTHER=$(od -An -v -N32 -tx1 /dev/urandom | tr -d ' \n')
if "$PLINTH" tpm verify-quote --ak ak.pub --quote quote.attest --signature quote.sig \
    --nonce "$OTHER" --pcrs pcrs.json; then
    echo "ERROR: plinth accepted a quote for another nonce" >&2
    exit 1
fi

step "6/6 the TPM's EK certificate chains to the swtpm local CA"
run tpm tpm2_nvread 0x1c00002 -o ek-cert.der
mkdir -p roots intermediates
cp "$WORK/tpm/localca/swtpm-localca-rootca-cert.pem" roots/
cp "$WORK/tpm/localca/issuercert.pem" intermediates/
run "$PLINTH" tpm verify-ek ek-cert.der --roots roots --intermediates intermediates \
    --ek-public ek.pub

cd "$ROOT"
swtpm_stop
printf '\nAll steps passed.\n'
