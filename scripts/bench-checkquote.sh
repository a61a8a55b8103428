#!/usr/bin/env bash
# Benchmarks `plinth tpm verify-quote` against tpm2-tools' `tpm2_checkquote` on the same
# real quotes, one from an ECC P-256 AK and one from an RSA-2048 AK, both made by swtpm.
#
#   scripts/bench-checkquote.sh [OUT_DIR]
#
# OUT_DIR receives ecc/ and rsa/, each with:
#   ak_pub.tpmt_public.bin           the AK public area (TPMT_PUBLIC)
#   ak_pub.tpm2b_public.bin          the same as TPM2B_PUBLIC (what tpm2_checkquote reads)
#   quote_sha256.tpms_attest.bin     TPMS_ATTEST (tpm2_quote -m)
#   quote_sha256.tpmt_signature.bin  TPMT_SIGNATURE (tpm2_quote -s)
#   quote_sha256.tools_pcrs.bin      the PCR values in tpm2-tools' format (tpm2_quote -o)
#   pcrs.json                        {"nonce_hex": ..., "pcrs": {"sha256": {"0": ...}}}
#   nonce.hex                        the 32-byte qualifying data, hex
# Without OUT_DIR a temporary directory is used and removed. testdata/tpm/swtpm-quotes was
# made with `scripts/bench-checkquote.sh testdata/tpm/swtpm-quotes`.
#
# hyperfine's table is printed, and also written to $BENCH_MD when that is set.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=scripts/lib-swtpm.sh
source scripts/lib-swtpm.sh

WORK=$(mktemp -d "${TMPDIR:-/tmp}/plinth-bench.XXXXXX")
if (($# > 0)); then
    mkdir -p "$1"
    OUT=$(cd "$1" && pwd)
else
    OUT=$WORK/out
fi
cleanup() {
    swtpm_stop
    rm -rf "$WORK"
}
trap cleanup EXIT

bash scripts/install-deps.sh
cargo build --release --locked -p plinth
PLINTH="${CARGO_TARGET_DIR:-$ROOT/target}/release/plinth"

swtpm_start "$WORK/tpm"
cd "$WORK"
SELECTION=sha256:0,1,2,3,4,5,6,7,16
tpm tpm2_createek -c ek.ctx -G rsa -u ek.pub >/dev/null
tpm tpm2_pcrextend "16:sha256=$(printf 'plinth bench' | sha256sum | cut -d' ' -f1)"
for alg in ecc rsa; do
    dir=$OUT/$alg
    mkdir -p "$dir"
    case $alg in
        ecc) scheme=ecdsa ;;
        rsa) scheme=rsassa ;;
    esac
    tpm tpm2_createak -C ek.ctx -c "ak-$alg.ctx" -G "$alg" -g sha256 -s "$scheme" \
        -u "$dir/ak_pub.tpm2b_public.bin" >/dev/null
    tail -c +3 "$dir/ak_pub.tpm2b_public.bin" >"$dir/ak_pub.tpmt_public.bin"
    nonce=$(od -An -v -N32 -tx1 /dev/urandom | tr -d ' \n')
    echo "$nonce" >"$dir/nonce.hex"
    tpm tpm2_quote -c "ak-$alg.ctx" -l "$SELECTION" -q "$nonce" -g sha256 \
        -m "$dir/quote_sha256.tpms_attest.bin" -s "$dir/quote_sha256.tpmt_signature.bin" \
        -o "$dir/quote_sha256.tools_pcrs.bin" >/dev/null
    tpm tpm2_pcrread "$SELECTION" | pcrs_json "$nonce" >"$dir/pcrs.json"
done
swtpm_stop
chmod 0644 "$OUT"/*/*
# Both verifiers are offline: no TPM from here on.
unset TPM2TOOLS_TCTI

commands=()
for alg in ecc rsa; do
    dir=$OUT/$alg
    nonce=$(cat "$dir/nonce.hex")
    checkquote="tpm2_checkquote -u $dir/ak_pub.tpm2b_public.bin -m $dir/quote_sha256.tpms_attest.bin -s $dir/quote_sha256.tpmt_signature.bin -f $dir/quote_sha256.tools_pcrs.bin -g sha256 -q $nonce"
    plinth="$PLINTH tpm verify-quote --ak $dir/ak_pub.tpmt_public.bin --quote $dir/quote_sha256.tpms_attest.bin --signature $dir/quote_sha256.tpmt_signature.bin --nonce $nonce --pcrs $dir/pcrs.json"
    # Both must accept before their speed means anything.
    $checkquote >/dev/null
    $plinth >/dev/null
    commands+=(-n "tpm2_checkquote ($alg AK)" "$checkquote" -n "plinth tpm verify-quote ($alg AK)" "$plinth")
done

hyperfine -N --warmup 20 --min-runs 200 --export-markdown "$WORK/bench.md" "${commands[@]}"
RESULTS=${BENCH_MD:-$WORK/results.md}
{
    echo "# tpm2_checkquote vs plinth tpm verify-quote (one process per verification)"
    echo
    echo "$(swtpm --version 2>&1 | head -1 | cut -d, -f1); $(tpm2_checkquote --version); $("$PLINTH" --version)"
    echo
    cat "$WORK/bench.md"
} >"$RESULTS"
echo
cat "$RESULTS"
