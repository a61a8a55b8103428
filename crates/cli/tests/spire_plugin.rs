//! `plinth spire-plugin server|agent` as SPIRE loads them: the go-plugin handshake, the
//! broker, Init, Configure, Attest and AidAttestation, Deinit and Shutdown, driven by the
//! host harness in `plinth_spire::host` (SPIFFE-SPIRE-FACTS §1–2) against real evidence:
//! swtpm through both plugin processes, and the Nitro and SEV-SNP vectors through the
//! server plugin's library at their fixed times.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure should abort loudly"
)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use plinth_api::attestation::{Evidence, NitroEvidence, SnpEvidence, evidence};
use plinth_core::{HashAlg, Platform, UnixTime};
use plinth_e2e::Swtpm;
use plinth_evidence::PendingChallenge;
use plinth_spire::host::{LoadedPlugin, PluginProcess, Tampered, attest_through};
use plinth_spire::{Clock, Configurable as _, Error, ServerPlugin, proto};
use prost::Message as _;
use tonic::Code;

const PLINTH: &str = env!("CARGO_BIN_EXE_plinth");
const TD: &str = "example.org";

fn testdata(path: &str) -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata")).join(path)
}

fn firmware_policy(name: &str) -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../firmware-policies"
    ))
    .join(name)
}

/// Starts a plugin process and loads it as SPIRE does (broker, Init).
async fn load(side: &str) -> (PluginProcess, LoadedPlugin) {
    let process = PluginProcess::spawn(Path::new(PLINTH), &["spire-plugin", side]).unwrap();
    assert!(
        process.handshake_line().starts_with("1|1|unix|/"),
        "{}",
        process.handshake_line()
    );
    assert!(process.handshake_line().trim_end().ends_with("|grpc"));
    let required = if side == "server" {
        proto::SERVER_NODE_ATTESTOR
    } else {
        proto::AGENT_NODE_ATTESTOR
    };
    let channel = process.connect().await.unwrap();
    let plugin = LoadedPlugin::load(channel, required).await.unwrap();
    assert!(plugin.plugin_services.iter().any(|s| s == proto::CONFIG));
    (process, plugin)
}

/// Deinit and Shutdown; the process must exit 0 within SPIRE's 2 s grace period, having
/// written nothing to stdout after the handshake line.
async fn unload(mut process: PluginProcess, plugin: LoadedPlugin) {
    plugin.unload().await.unwrap();
    let (status, stdout) =
        tokio::task::spawn_blocking(move || process.wait_exit(Duration::from_secs(2)))
            .await
            .unwrap()
            .unwrap();
    let status = status.expect("the plugin did not exit within 2 s of Shutdown");
    assert!(status.success(), "{status}");
    assert!(
        stdout.is_empty(),
        "stdout after the handshake: {:?}",
        String::from_utf8_lossy(&stdout)
    );
}

fn hcl_string(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

// ---- the protocol alone ------------------------------------------------------------------

#[test]
fn refuses_to_run_without_the_magic_cookie() {
    let out = Command::new(PLINTH)
        .args(["spire-plugin", "server"])
        .env_remove("NodeAttestor")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"@level\":\"error\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_plugin_loads_configures_and_exits_like_spire_expects() {
    let (process, server) = load("server").await;
    // Attest before Configure: FailedPrecondition.
    let status = server
        .attest(
            b"\x0a\x00".to_vec(),
            plinth_spire::host::FnAnswer(|_| Ok(Vec::new())),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status}");

    let dir = tempfile::tempdir().unwrap();
    let bad = [
        String::new(),
        "policies = \"/nonexistent/plinth\"".to_owned(),
        format!(
            "policies = {}\nunknown = 1",
            hcl_string(&firmware_policy("gce-cos85.toml"))
        ),
        format!(
            "policies = {}\nnonce_ttl = \"1d\"",
            hcl_string(&firmware_policy("gce-cos85.toml"))
        ),
        format!("policies = {}", hcl_string(dir.path())),
        "{\"policies\": 7}".to_owned(),
    ];
    for text in &bad {
        let status = server.configure(TD, text).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{text}: {status}");
    }
    let status = server
        .configure(
            "Not A Trust Domain",
            &format!(
                "policies = {}",
                hcl_string(&firmware_policy("gce-cos85.toml"))
            ),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    // JSON, as plugin_data_file may hold it.
    server
        .configure(
            TD,
            &format!(
                "{{\"policies\": {}, \"nonce_ttl\": \"30s\"}}",
                hcl_string(&firmware_policy("gce-cos85.toml"))
            ),
        )
        .await
        .unwrap();
    // A payload that is no Hello: InvalidArgument.
    let status = server
        .attest(
            b"\xff\xff\xff\xff".to_vec(),
            plinth_spire::host::FnAnswer(|_| Ok(Vec::new())),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    unload(process, server).await;
}

// ---- swtpm: agent plugin ↔ server plugin -------------------------------------------------

/// What the swtpm test's TPM has in PCR 16 after one extend with `data`: a fresh TPM's
/// PCR 16 is zero, and extending sets it to SHA-256(old ‖ data).
fn extended_pcr16(data: &[u8; 32]) -> String {
    let mut input = [0u8; 64];
    input[32..].copy_from_slice(data);
    plinth_crypto::digest(HashAlg::Sha256, &input).to_hex()
}

fn write_tpm_policy(dir: &Path, name: &str, pcr16: &str) {
    let text = format!(
        "version = 1\nname = \"{name}\"\nplatform = \"tpm\"\n\n[identity]\n\
         trust_domain = \"example.org\"\n\
         spiffe_id = \"spiffe://{{trust_domain}}/node/tpm/{{ek_hash}}\"\n\
         selectors = [\"tpm:ek:{{ek_hash}}\"]\nsvid_ttl_seconds = 3600\n\n\
         [tpm.pcrs.sha256]\n16 = [\"{pcr16}\"]\n"
    );
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
}

fn server_config(tpm: &Swtpm, policies: &Path) -> String {
    format!(
        "policies = {}\ntrust_anchors = [{}]\nek_intermediates = {}\nnonce_ttl = \"60s\"\n",
        hcl_string(policies),
        hcl_string(&tpm.root_ca_pem()),
        hcl_string(&tpm.issuer_cert_pem()),
    )
}

fn with_nonce_flipped(answer: &[u8]) -> Vec<u8> {
    let mut evidence = Evidence::decode(answer).unwrap();
    evidence.nonce[0] ^= 1;
    evidence.encode_to_vec()
}

/// A configuration error leaves the last good configuration in force; a root the TPM does
/// not chain to refuses it.
async fn configuration_changes_keep_serving(
    tpm: &Swtpm,
    agent: &LoadedPlugin,
    server: &LoadedPlugin,
    good: &Path,
    agent_id: &str,
) {
    // A configuration error leaves the last good configuration in force.
    server
        .configure(TD, &server_config(tpm, good))
        .await
        .unwrap();
    let status = server
        .configure(TD, "policies = \"/nonexistent/plinth\"")
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert_eq!(
        attest_through(agent, server).await.unwrap().spiffe_id,
        agent_id
    );

    // An EK root the TPM does not chain to: PermissionDenied.
    let other_root = testdata("tpm/ca-roots/google-vtpm/tpm_ek_root_1.cer");
    server
        .configure(
            TD,
            &format!(
                "policies = {}\ntrust_anchors = {}\n",
                hcl_string(good),
                hcl_string(&other_root)
            ),
        )
        .await
        .unwrap();
    let status = attest_through(agent, server).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status}");
}

/// A forged nonce, a challenge response or a payload that is no message: each refused
/// with its status, each followed by a good attestation on the same plugins.
async fn tampered_exchanges_are_refused(
    agent: &LoadedPlugin,
    server: &LoadedPlugin,
    agent_id: &str,
) {
    // A challenge response with another nonce: PermissionDenied.
    let (payload, mut stream) = agent.aid_attestation().await.unwrap();
    let status = server
        .attest(
            payload,
            Tampered {
                agent: &mut stream,
                tamper: |answer: Vec<u8>| with_nonce_flipped(&answer),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status}");
    drop(stream);
    assert_eq!(
        attest_through(agent, server).await.unwrap().spiffe_id,
        agent_id
    );

    // A challenge response that is no Evidence: InvalidArgument.
    let (payload, mut stream) = agent.aid_attestation().await.unwrap();
    let status = server
        .attest(
            payload,
            Tampered {
                agent: &mut stream,
                tamper: |_| vec![0xff; 8],
            },
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    drop(stream);

    // A malformed payload: InvalidArgument; then a good attestation.
    let status = server
        .attest(
            vec![0x0a, 0x05, 0x01],
            plinth_spire::host::FnAnswer(|_| Ok(Vec::new())),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status}");
    assert!(attest_through(agent, server).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swtpm_agent_and_server_plugins_attest_and_keep_serving_after_each_refusal() {
    let tpm = Swtpm::start().unwrap();
    let data = [0x5a; 32];
    let _out = tpm
        .tool(
            "tpm2_pcrextend",
            &[&format!("16:sha256={}", hex::encode(data))],
        )
        .unwrap();
    let pcr16 = extended_pcr16(&data);
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    write_tpm_policy(&good, "swtpm-pcr16", &pcr16);
    let refusing = dir.path().join("refusing");
    write_tpm_policy(&refusing, "swtpm-other-pcr16", &"00".repeat(32));

    let (server_process, server) = load("server").await;
    let (agent_process, agent) = load("agent").await;
    server
        .configure(TD, &server_config(&tpm, &good))
        .await
        .unwrap();
    agent
        .configure(
            TD,
            &format!("tcti = \"{}\"\nevent_log = \"\"\n", tpm.tcti()),
        )
        .await
        .unwrap();

    let attested = match attest_through(&agent, &server).await {
        Ok(attested) => attested,
        Err(status) => panic!(
            "{status}\nserver: {}\nagent: {}",
            server_process.stderr(),
            agent_process.stderr()
        ),
    };
    let prefix = "spiffe://example.org/spire/agent/plinth/tpm/";
    let ek_hash = attested
        .spiffe_id
        .strip_prefix(prefix)
        .unwrap_or_else(|| panic!("{}", attested.spiffe_id));
    assert_eq!(ek_hash.len(), 64);
    assert!(attested.can_reattest);
    for expected in [
        "platform:tpm".to_owned(),
        "policy:swtpm-pcr16".to_owned(),
        "verdict:affirming".to_owned(),
        format!("tpm:ek_hash:{ek_hash}"),
    ] {
        assert!(
            attested.selector_values.contains(&expected),
            "{expected} not in {:?}",
            attested.selector_values
        );
    }
    assert!(
        attested
            .selector_values
            .iter()
            .any(|s| s.starts_with("policy_hash:") && s.len() == "policy_hash:".len() + 64)
    );
    // The policy's own selector, rendered from the verified EK.
    assert!(
        attested
            .selector_values
            .contains(&format!("tpm:ek:{ek_hash}"))
    );

    // Re-attestation gives the same agent ID (stable hardware ID, fresh AK and nonce).
    let again = attest_through(&agent, &server).await.unwrap();
    assert_eq!(again.spiffe_id, attested.spiffe_id);

    tampered_exchanges_are_refused(&agent, &server, &attested.spiffe_id).await;

    // Evidence that fails the policy: PermissionDenied.
    server
        .configure(TD, &server_config(&tpm, &refusing))
        .await
        .unwrap();
    let status = attest_through(&agent, &server).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status}");
    assert!(
        server_process
            .stderr()
            .contains("refused by policy swtpm-other-pcr16")
    );

    configuration_changes_keep_serving(&tpm, &agent, &server, &good, &attested.spiffe_id).await;

    unload(agent_process, agent).await;
    unload(server_process, server).await;
}

// ---- Nitro and SEV-SNP vectors through the server plugin's library ---------------------

/// A clock stopped at a vector's time.
struct Fixed(UnixTime);

impl Clock for Fixed {
    fn now(&self) -> Result<UnixTime, Error> {
        Ok(self.0)
    }
}

fn plugin_at(now: UnixTime, policies: &Path) -> ServerPlugin {
    let plugin = ServerPlugin::new(Arc::new(Fixed(now)), Arc::new(plinth_crypto::SystemRandom));
    plugin
        .configure(TD, &format!("policies = {}", hcl_string(policies)))
        .unwrap();
    plugin
}

/// evervault's production enclave document: nonce of 256 bytes, 2022-10-13T08:58:02.136Z.
const EVERVAULT_AT_MS: u64 = 1_665_651_482_136;

fn evervault() -> (Vec<u8>, Vec<u8>) {
    let document = std::fs::read(testdata("nitro/evervault/valid-attestation-doc-bytes")).unwrap();
    let now = UnixTime::from_millis(EVERVAULT_AT_MS);
    let verified =
        plinth_nitro::verify(&document, &plinth_nitro::NitroTrust::aws_root_g1(), now).unwrap();
    let nonce = verified.document().nonce().unwrap().to_vec();
    assert_eq!(nonce.len(), 256);
    (document, nonce)
}

fn write_nitro_policy(dir: &Path, pcr0: &str) -> PathBuf {
    let path = dir.join("evervault.toml");
    let text = format!(
        "version = 1\nname = \"evervault-beta\"\nplatform = \"nitro\"\n\n[identity]\n\
         trust_domain = \"example.org\"\n\
         spiffe_id = \"spiffe://{{trust_domain}}/enclave/{{pcr0}}\"\nsvid_ttl_seconds = 900\n\n\
         [nitro]\nallow_debug = false\nmax_age_seconds = 300\n\n[nitro.pcrs]\n0 = [\"{pcr0}\"]\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// PCR0 of the evervault document (its enclave image), as `plinth nitro verify` prints it.
const EVERVAULT_PCR0: &str = "f4d48b81a460c9916d1e685119074bf24660afd3e34fae9fca0a0d28d9d5599936332687e6f66fc890ac8cf150142d8b";

fn nitro_evidence(document: Vec<u8>, nonce: Vec<u8>) -> Vec<u8> {
    Evidence {
        nonce,
        platform: Some(evidence::Platform::Nitro(NitroEvidence { document })),
    }
    .encode_to_vec()
}

#[test]
fn nitro_vector_through_server_plugin_yields_module_id_and_pcr_selectors() {
    let (document, nonce) = evervault();
    let dir = tempfile::tempdir().unwrap();
    let now = UnixTime::from_millis(EVERVAULT_AT_MS + 1_000);
    let plugin = plugin_at(now, &write_nitro_policy(dir.path(), EVERVAULT_PCR0));
    let pending = PendingChallenge::for_test_vector(
        nonce.clone(),
        Platform::Nitro,
        UnixTime::from_millis(EVERVAULT_AT_MS + 60_000),
    );
    let attributes = plugin
        .finish_recorded(pending, &nitro_evidence(document, nonce))
        .unwrap();
    assert_eq!(
        attributes.spiffe_id,
        "spiffe://example.org/spire/agent/plinth/nitro/i-020b6af9246d90e92-enc0183d09086c24190"
    );
    assert!(attributes.can_reattest);
    for expected in [
        "platform:nitro".to_owned(),
        "policy:evervault-beta".to_owned(),
        format!("nitro:pcr0:{EVERVAULT_PCR0}"),
    ] {
        assert!(
            attributes.selector_values.contains(&expected),
            "{expected} not in {:?}",
            attributes.selector_values
        );
    }
}

#[test]
fn rejects_nitro_vector_answering_another_nonce_with_nonce_mismatch() {
    let (document, nonce) = evervault();
    let dir = tempfile::tempdir().unwrap();
    let now = UnixTime::from_millis(EVERVAULT_AT_MS + 1_000);
    let plugin = plugin_at(now, &write_nitro_policy(dir.path(), EVERVAULT_PCR0));
    let mut other = nonce.clone();
    other[0] ^= 1;
    let pending = PendingChallenge::for_test_vector(
        other,
        Platform::Nitro,
        UnixTime::from_millis(EVERVAULT_AT_MS + 60_000),
    );
    let error = plugin
        .finish_recorded(pending, &nitro_evidence(document, nonce))
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::Evidence(plinth_evidence::Error::NonceMismatch)
        ),
        "{error:?}"
    );
    assert_eq!(error.to_status().code(), Code::PermissionDenied);
}

#[test]
fn rejects_nitro_vector_after_the_challenge_expired_with_challenge_expired() {
    let (document, nonce) = evervault();
    let dir = tempfile::tempdir().unwrap();
    let now = UnixTime::from_millis(EVERVAULT_AT_MS + 61_000);
    let plugin = plugin_at(now, &write_nitro_policy(dir.path(), EVERVAULT_PCR0));
    let pending = PendingChallenge::for_test_vector(
        nonce.clone(),
        Platform::Nitro,
        UnixTime::from_millis(EVERVAULT_AT_MS + 60_000),
    );
    let error = plugin
        .finish_recorded(pending, &nitro_evidence(document, nonce))
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::Evidence(plinth_evidence::Error::ChallengeExpired { .. })
        ),
        "{error:?}"
    );
    assert_eq!(error.to_status().code(), Code::PermissionDenied);
}

#[test]
fn rejects_nitro_vector_failing_policy_with_refused() {
    let (document, nonce) = evervault();
    let dir = tempfile::tempdir().unwrap();
    let now = UnixTime::from_millis(EVERVAULT_AT_MS + 1_000);
    let plugin = plugin_at(now, &write_nitro_policy(dir.path(), &"11".repeat(48)));
    let pending = PendingChallenge::for_test_vector(
        nonce.clone(),
        Platform::Nitro,
        UnixTime::from_millis(EVERVAULT_AT_MS + 60_000),
    );
    let error = plugin
        .finish_recorded(pending, &nitro_evidence(document, nonce))
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::Evidence(plinth_evidence::Error::Refused { .. })
        ),
        "{error:?}"
    );
    assert_eq!(error.to_status().code(), Code::PermissionDenied);
}

/// Oak's Milan release report, checked at a time inside its VCEK's validity. Its
/// REPORT_DATA was chosen by Oak, not as SHA-512(nonce ‖ key): no public report answers a
/// plinth challenge, so the server plugin verifies its signature and VCEK chain and then
/// refuses it at the binding check, which is what this proves.
#[test]
fn rejects_snp_vector_not_answering_the_challenge_with_key_binding_mismatch() {
    let report = std::fs::read(testdata("sev-snp/oak/milan_oc_release_report.bin")).unwrap();
    let vcek = std::fs::read(testdata("sev-snp/oak/milan_oc_release_vcek.der")).unwrap();
    let now = UnixTime::parse("2026-11-23T00:00:00Z").unwrap();
    let plugin = plugin_at(now, &firmware_policy("snp-milan-oak.toml"));
    let nonce = vec![0x42; 32];
    let pending = PendingChallenge::for_test_vector(
        nonce.clone(),
        Platform::SevSnp,
        UnixTime::from_millis(now.as_millis() + 60_000),
    );
    let evidence = Evidence {
        nonce,
        platform: Some(evidence::Platform::Snp(SnpEvidence {
            report,
            key_spki: Vec::new(),
            vek_certificate: vcek,
            certificate_table: Vec::new(),
        })),
    };
    let error = plugin
        .finish_recorded(pending, &evidence.encode_to_vec())
        .unwrap_err();
    assert!(
        matches!(
            error,
            Error::Evidence(plinth_evidence::Error::Snp(
                plinth_snp::Error::KeyBindingMismatch
            ))
        ),
        "{error:?}"
    );
    assert_eq!(error.to_status().code(), Code::PermissionDenied);
}

/// The Nitro vector through the whole Attest RPC, as SPIRE sends it: the server plugin is
/// served in this process (the same `goplugin::serve` as the binary, so the clock can stay
/// at the vector's time) and replays the vector's recorded challenge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nitro_vector_through_the_attest_rpc_yields_attributes_and_refusals_keep_serving() {
    let (document, nonce) = evervault();
    let dir = tempfile::tempdir().unwrap();
    let policy = write_nitro_policy(dir.path(), EVERVAULT_PCR0);
    let now = UnixTime::from_millis(EVERVAULT_AT_MS + 1_000);
    let pending = PendingChallenge::for_test_vector(
        nonce.clone(),
        Platform::Nitro,
        UnixTime::from_millis(EVERVAULT_AT_MS + 60_000),
    );
    let plugin = Arc::new(ServerPlugin::replaying(
        Arc::new(Fixed(now)),
        Arc::new(plinth_crypto::SystemRandom),
        pending,
    ));
    let socket = plinth_spire::goplugin::PluginSocket::bind(Some(dir.path())).unwrap();
    let socket_path = socket.path().to_path_buf();
    let shutdown = plinth_spire::goplugin::ShutdownSignal::new();
    let serving = tokio::spawn(plinth_spire::goplugin::serve(
        socket,
        plugin.routes(),
        shutdown,
    ));
    let server = LoadedPlugin::load(
        plinth_spire::host::connect(&socket_path).await.unwrap(),
        proto::SERVER_NODE_ATTESTOR,
    )
    .await
    .unwrap();
    server
        .configure(TD, &format!("policies = {}", hcl_string(&policy)))
        .await
        .unwrap();
    let payload = plinth_api::attestation::Hello {
        platform: Some(plinth_api::attestation::hello::Platform::Nitro(
            plinth_api::attestation::NitroHello {},
        )),
    }
    .encode_to_vec();
    let good = nitro_evidence(document.clone(), nonce.clone());
    let mut seen_challenge = Vec::new();
    let attributes = server
        .attest(
            payload.clone(),
            plinth_spire::host::FnAnswer(|challenge: Vec<u8>| {
                seen_challenge = challenge;
                Ok(good.clone())
            }),
        )
        .await
        .unwrap();
    let challenge =
        plinth_api::attestation::ChallengeResponse::decode(seen_challenge.as_slice()).unwrap();
    assert_eq!(challenge.nonce, nonce);
    assert_eq!(
        attributes.spiffe_id,
        "spiffe://example.org/spire/agent/plinth/nitro/i-020b6af9246d90e92-enc0183d09086c24190"
    );
    assert!(attributes.can_reattest);
    assert!(
        attributes
            .selector_values
            .contains(&format!("nitro:pcr0:{EVERVAULT_PCR0}"))
    );

    // The document answering another nonce, over the wire: PermissionDenied; then the
    // good one again.
    let mut other = nonce.clone();
    other[0] ^= 1;
    let forged = nitro_evidence(document, other);
    let status = server
        .attest(
            payload.clone(),
            plinth_spire::host::FnAnswer(|_| Ok(forged.clone())),
        )
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status}");
    let again = server
        .attest(payload, plinth_spire::host::FnAnswer(|_| Ok(good.clone())))
        .await
        .unwrap();
    assert_eq!(again, attributes);

    server.unload().await.unwrap();
    serving.await.unwrap().unwrap();
}
