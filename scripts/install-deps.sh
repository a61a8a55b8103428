#!/usr/bin/env bash
# Installs the Debian packages plinth's build and tests need, if any are missing.
# Used by scripts/test.sh, scripts/demo.sh and .ci/run; safe to run repeatedly.
set -euo pipefail

packages=(
    swtpm swtpm-tools tpm2-tools   # a real TPM 2.0 for the tests, and the tools that drive it
    libtss2-dev pkg-config         # tpm2-tss, for the agent's tss-esapi
    protobuf-compiler              # protoc, for the gRPC definitions
    libprotobuf-dev                # protoc's well-known types (google/protobuf/struct.proto)
    hyperfine                      # benchmark comparisons against peer tools
    softhsm2                       # a PKCS#11 token for the CA-key-in-HSM tests (plinth-ca)
    openssl                        # the openssl binary: independent X.509-SVID verification in tests
    pesign                         # independent Authenticode digests for `plinth measure` tests
    postgresql                     # a real PostgreSQL for the HA datastore tests (plinth-store)
)

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$package")
done

if ((${#missing[@]})); then
    echo "installing: ${missing[*]}" >&2
    sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
fi
