# Sourced by scripts/demo.sh and scripts/bench-checkquote.sh: a throwaway swtpm.
#
#   swtpm_start DIR   manufactures a TPM 2.0 in DIR (EK certificates from a local CA that
#                     lives in DIR/localca), starts `swtpm socket` on free ports and exports
#                     TPM2TOOLS_TCTI. The caller must call swtpm_stop (e.g. from an EXIT trap).
#   swtpm_stop        kills that swtpm (only that process, by its pid).
#   tpm  TOOL ARGS    runs a tpm2-tools program, then flushes the transient objects it left
#                     loaded (swtpm has three slots and there is no resource manager).
#   pcrs_json NONCE   reads `tpm2_pcrread` YAML on stdin, prints
#                     {"nonce_hex": NONCE, "pcrs": {"sha256": {"0": "<hex>", ...}}}.

SWTPM_PID=""

swtpm_start() {
    local dir=$1
    mkdir -p "$dir/localca" "$dir/state"
    cat >"$dir/localca/swtpm-localca.conf" <<EOF
statedir = $dir/localca
signingkey = $dir/localca/signkey.pem
issuercert = $dir/localca/issuercert.pem
certserial = $dir/localca/certserial
EOF
    if [[ -r /etc/swtpm-localca.options ]]; then
        cp /etc/swtpm-localca.options "$dir/localca/swtpm-localca.options"
    else
        printf -- '--platform-manufacturer plinth\n--platform-version 2.1\n--platform-model swtpm\n' \
            >"$dir/localca/swtpm-localca.options"
    fi
    cat >"$dir/localca/swtpm_setup.conf" <<EOF
create_certs_tool = $(command -v swtpm_localca)
create_certs_tool_config = $dir/localca/swtpm-localca.conf
create_certs_tool_options = $dir/localca/swtpm-localca.options
active_pcr_banks = sha256
EOF
    local banks=()
    swtpm_setup --help 2>&1 | grep -q -- --pcr-banks && banks=(--pcr-banks sha1,sha256,sha384)
    swtpm_setup --tpm2 --tpmstate "$dir/state" --create-ek-cert --create-platform-cert \
        --lock-nvram --config "$dir/localca/swtpm_setup.conf" --overwrite "${banks[@]}" \
        >"$dir/swtpm_setup.log" 2>&1 || { cat "$dir/swtpm_setup.log" >&2; return 1; }

    # swtpm writes its pid file only after binding both ports, so a pid file naming our
    # child means the ports are ours. The TCTI uses port N for commands, N+1 for control.
    local attempt port
    for attempt in $(seq 1 20); do
        port=$((20000 + RANDOM % 40000))
        rm -f "$dir/swtpm.pid"
        swtpm socket --tpm2 \
            --server "type=tcp,port=$port,bindaddr=127.0.0.1" \
            --ctrl "type=tcp,port=$((port + 1)),bindaddr=127.0.0.1" \
            --tpmstate "dir=$dir/state" --pid "file=$dir/swtpm.pid" \
            --flags not-need-init,startup-clear >"$dir/swtpm.log" 2>&1 &
        SWTPM_PID=$!
        local waited
        for waited in $(seq 1 400); do
            if ! kill -0 "$SWTPM_PID" 2>/dev/null; then
                wait "$SWTPM_PID" 2>/dev/null || true
                SWTPM_PID=""
                break
            fi
            if [[ -s $dir/swtpm.pid && $(cat "$dir/swtpm.pid") == "$SWTPM_PID" ]]; then
                export TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$port"
                tpm2_getcap properties-fixed >/dev/null
                return 0
            fi
            sleep 0.025
        done
        if [[ -n $SWTPM_PID ]]; then
            echo "swtpm did not start:" >&2
            cat "$dir/swtpm.log" >&2
            swtpm_stop
            return 1
        fi
        grep -q "Address already in use" "$dir/swtpm.log" || { cat "$dir/swtpm.log" >&2; return 1; }
    done
    echo "swtpm: no free port pair after 20 attempts" >&2
    return 1
}

swtpm_stop() {
    if [[ -n $SWTPM_PID ]]; then
        kill "$SWTPM_PID" 2>/dev/null || true
        wait "$SWTPM_PID" 2>/dev/null || true
        SWTPM_PID=""
    fi
}

tpm() {
    local status=0
    "$@" || status=$?
    tpm2_flushcontext --transient-object
    return "$status"
}

pcrs_json() {
    awk -v nonce="$1" '
        /^ *sha[0-9]+: *$/ {
            bank = $1; sub(/:$/, "", bank)
            order[++nbanks] = bank
            next
        }
        /^ *[0-9]+ *: *0x[0-9A-Fa-f]+ *$/ {
            split($0, kv, ":")
            index_ = kv[1]; gsub(/ /, "", index_)
            value = kv[2]; gsub(/ |0x/, "", value)
            entries[bank] = entries[bank] (entries[bank] == "" ? "" : ",\n") \
                "   \"" index_ "\": \"" tolower(value) "\""
            next
        }
        NF { print "unexpected tpm2_pcrread line: " $0 > "/dev/stderr"; bad = 1 }
        END {
            if (bad || nbanks == 0) exit 1
            print "{"
            print " \"nonce_hex\": \"" nonce "\","
            print " \"pcrs\": {"
            for (i = 1; i <= nbanks; i++)
                printf "  \"%s\": {\n%s\n  }%s\n", order[i], entries[order[i]], (i < nbanks ? "," : "")
            print " }"
            print "}"
        }'
}
