//! The AMD SEV-SNP collector: attestation reports from the guest's AMD Secure Processor,
//! through the Linux configfs-tsm report interface.
//!
//! ```text
//!  challenge.nonce ──┐
//!  new P-256 key ────┴─► REPORT_DATA = SHA-512(nonce ‖ SPKI DER)      (no key: SHA-512(nonce))
//!  (guest memory)                │
//!                                ▼
//!   SnpDevice::report(REPORT_DATA, VMPL) ─► report (1184 bytes, as the firmware signed it)
//!   └ TsmReportDevice: configfs-tsm         + the host's certificate table (raw, or empty)
//!                                │
//!   self-check: the report parses and its REPORT_DATA is the one asked for; the table parses
//!                                ▼
//!   SnpEvidence { report, key_spki, certificate_table }  (signature, chain, TCB: the server)
//! ```
//!
//! # Why configfs-tsm and not the `sev` crate
//! The `sev` crate's guest API (`Firmware::get_ext_report`, through the `/dev/sev-guest`
//! ioctls) returns the certificate table already split into entries, not the raw table,
//! and splits it by following the host's offsets and lengths through raw pointers with no
//! bounds check against the buffer the kernel filled (`parse_table` in sev 8.0.0
//! `src/firmware/linux/host/types/snp.rs`). The host is outside SEV-SNP's trust boundary, so
//! a malicious host could make the agent read out of bounds. configfs-tsm (Linux 6.7+,
//! `Documentation/ABI/testing/configfs-tsm`) hands over the report and the table as plain
//! byte files (`outblob`, `auxblob`): the agent reads them within budgets and sends the
//! table as received, and the server parses it with `plinth_snp::CertTable`'s bounded
//! parser. No `unsafe`, no extra dependency. In the kernel (`sev_report_new` in
//! `drivers/virt/coco/sev-guest/sev-guest.c`), the provider is named `sev_guest`; `inblob`
//! must be exactly 64 bytes (REPORT_DATA); `privlevel` is the VMPL asked for and
//! `privlevel_floor` the VMPL of the kernel's VMPCK; `outblob` is the firmware's report,
//! `report_size` bytes after the response header; `auxblob` is the host's table cut to
//! the extent of its entries, at most 16 KiB.
//!
//! # VMPL
//! The report's VMPL field says at which privilege level the request was made. The agent
//! asks for the lowest level the kernel permits (`privlevel_floor`): 0 in a guest without
//! an SVSM, the guest's own VMPL under one (where the firmware refuses a more privileged
//! level). That is the most privileged claim that is true. The verifier accepts VMPL 0–3
//! and reports it; plinth's policy does not yet constrain it.
//!
//! # Certificates
//! The VCEK or VLEK comes from the host's certificate table when the host provides one
//! (`auxblob`, the GHCB `cert_table` format), sent raw in `certificate_table`. When the
//! host provides none, the evidence carries no certificate, and the server must find the
//! VCEK elsewhere (it refuses the report otherwise).

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use plinth_api::attestation::{
    ChallengeResponse, Evidence, Hello, SnpEvidence, SnpHello, evidence, hello,
};
use plinth_core::HashAlg;
use plinth_crypto::{Curve, EcdsaSigningKey, Hasher, SystemRandom};
use plinth_snp::{AttestationReport, CertTable, MAX_CERT_TABLE_LEN};
use rustls::sign::SigningKey;

use crate::Error;
use crate::collect::EvidenceSource;
use crate::tls::MemorySigningKey;

/// The configfs-tsm report directory (Linux 6.7+, configfs mounted at /sys/kernel/config).
pub const DEFAULT_TSM_REPORT_DIR: &str = "/sys/kernel/config/tsm/report";

/// The largest `outblob` read: an SNP report is 1184 bytes.
const MAX_REPORT_LEN: u64 = 4096;
/// The most REPORT_DATA holds.
const REPORT_DATA_LEN: usize = 64;
/// The largest VCEK/VLEK certificate file read (they are about 1.3 KiB).
const MAX_VEK_CERTIFICATE_LEN: u64 = 16 * 1024;
/// The configfs-tsm provider of SEV-SNP guests.
const SEV_GUEST_PROVIDER: &str = "sev_guest";

/// What one report request returns: the report exactly as the firmware signed it, and the
/// host's certificate table as the kernel handed it over (empty when the host has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnpReport {
    /// The attestation report.
    pub report: Vec<u8>,
    /// The extended report's certificate table (GHCB `cert_table` format), or empty.
    pub certificate_table: Vec<u8>,
}

/// The guest's way to the AMD Secure Processor: [`TsmReportDevice`], or a test double.
pub trait SnpDevice: Send {
    /// An attestation report with `report_data` as REPORT_DATA, requested at `vmpl`.
    ///
    /// # Errors
    /// The device's errors.
    fn report(&mut self, report_data: &[u8; 64], vmpl: u32) -> Result<SnpReport, Error>;
}

/// A configfs-tsm report instance of this agent: a directory made under the report root on
/// open and removed on drop, so that no other process writes to it.
#[derive(Debug)]
pub struct TsmReportDevice {
    dir: PathBuf,
    privlevel_floor: u32,
}

impl TsmReportDevice {
    /// Makes a report instance under `root` ([`DEFAULT_TSM_REPORT_DIR`]) and checks that
    /// its provider is SEV-SNP's.
    ///
    /// # Errors
    /// [`Error::SnpDevice`] when `root` is missing (no configfs-tsm: not an SEV-SNP guest,
    /// a kernel before 6.7, or configfs not mounted) or the instance cannot be made;
    /// [`Error::SnpProvider`] for another TEE's provider.
    pub fn open(root: &Path) -> Result<Self, Error> {
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "plinth-agent-{}-{}",
            std::process::id(),
            INSTANCES.fetch_add(1, Ordering::Relaxed)
        );
        let dir = root.join(name);
        fs::create_dir(&dir).map_err(|source| Error::SnpDevice {
            what: if root.is_dir() {
                "making the report instance"
            } else {
                "no configfs-tsm report directory (not an SEV-SNP guest, a kernel before 6.7, or configfs not mounted)"
            },
            path: dir.clone(),
            source,
        })?;
        // From here on, Drop removes the instance.
        let mut device = Self {
            dir,
            privlevel_floor: 0,
        };
        let provider = device.read_text("provider")?;
        if provider != SEV_GUEST_PROVIDER {
            return Err(Error::SnpProvider { found: provider });
        }
        device.privlevel_floor = device
            .read_text("privlevel_floor")?
            .parse()
            .map_err(|_| Error::SnpUnexpected("privlevel_floor is not a number"))?;
        Ok(device)
    }

    /// The lowest VMPL the kernel lets this guest request (`privlevel_floor`).
    pub const fn privlevel_floor(&self) -> u32 {
        self.privlevel_floor
    }

    fn attribute(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn io_error(&self, name: &str, what: &'static str) -> impl FnOnce(io::Error) -> Error {
        let path = self.attribute(name);
        move |source| Error::SnpDevice { path, what, source }
    }

    /// Reads attribute `name`, at most `max` bytes.
    fn read(&self, name: &str, max: u64, too_large: &'static str) -> Result<Vec<u8>, Error> {
        let file = fs::File::open(self.attribute(name)).map_err(self.io_error(name, "opening"))?;
        let mut bytes = Vec::new();
        let _ = file
            .take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(self.io_error(name, "reading"))?;
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > max {
            return Err(Error::SnpUnexpected(too_large));
        }
        Ok(bytes)
    }

    fn read_text(&self, name: &str) -> Result<String, Error> {
        let bytes = self.read(name, 64, "a text attribute is too long")?;
        String::from_utf8(bytes)
            .map(|s| s.trim().to_owned())
            .map_err(|_| Error::SnpUnexpected("a text attribute is not UTF-8"))
    }

    fn generation(&self) -> Result<u64, Error> {
        self.read_text("generation")?
            .parse()
            .map_err(|_| Error::SnpUnexpected("generation is not a number"))
    }

    fn write(&self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .open(self.attribute(name))
            .map_err(self.io_error(name, "opening"))?;
        file.write_all(bytes)
            .map_err(self.io_error(name, "writing"))
    }
}

impl SnpDevice for TsmReportDevice {
    fn report(&mut self, report_data: &[u8; 64], vmpl: u32) -> Result<SnpReport, Error> {
        // Every attribute write bumps `generation`; the report read back must be the one
        // made from exactly these two writes (configfs-tsm's documented conflict check).
        let before = self.generation()?;
        self.write("privlevel", vmpl.to_string().as_bytes())?;
        self.write("inblob", report_data)?;
        let report = self.read("outblob", MAX_REPORT_LEN, "the report is too large")?;
        let certificate_table = match self.read(
            "auxblob",
            u64::try_from(MAX_CERT_TABLE_LEN).unwrap_or(u64::MAX),
            "the certificate table is too large",
        ) {
            Ok(table) => table,
            // No auxblob attribute: the provider emits no auxiliary data.
            Err(Error::SnpDevice { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Vec::new()
            }
            Err(e) => return Err(e),
        };
        if self.generation()? != before.wrapping_add(2) {
            return Err(Error::SnpUnexpected(
                "another writer changed the report instance",
            ));
        }
        Ok(SnpReport {
            report,
            certificate_table,
        })
    }
}

impl Drop for TsmReportDevice {
    fn drop(&mut self) {
        // configfs removes the instance's attributes with the directory.
        let _ = fs::remove_dir(&self.dir);
    }
}

/// A confidential VM's evidence source: the SEV-SNP firmware behind an [`SnpDevice`].
pub struct SnpCollector {
    device: Box<dyn SnpDevice>,
    vmpl: u32,
    /// Sent when the host provides no certificate table (DER; empty for none).
    vek_certificate: Vec<u8>,
}

impl std::fmt::Debug for SnpCollector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnpCollector")
            .field("vmpl", &self.vmpl)
            .finish_non_exhaustive()
    }
}

impl SnpCollector {
    /// Opens the guest's configfs-tsm report interface ([`DEFAULT_TSM_REPORT_DIR`]) and
    /// requests reports at its lowest permitted VMPL.
    ///
    /// # Errors
    /// As [`TsmReportDevice::open`]: [`Error::SnpDevice`] on a machine that is not an
    /// SEV-SNP guest (or whose kernel predates configfs-tsm).
    pub fn open() -> Result<Self, Error> {
        let device = TsmReportDevice::open(Path::new(DEFAULT_TSM_REPORT_DIR))?;
        let vmpl = device.privlevel_floor();
        Ok(Self::with_device(Box::new(device), vmpl))
    }

    /// A collector over any device, requesting reports at `vmpl` (tests use a double).
    pub fn with_device(device: Box<dyn SnpDevice>, vmpl: u32) -> Self {
        Self {
            device,
            vmpl,
            vek_certificate: Vec::new(),
        }
    }

    /// Sends `der`, this chip's VCEK or VLEK (from AMD's KDS, fetched by the operator),
    /// whenever the host provides no certificate table. The server verifies it like any
    /// other: it must chain to AMD's pinned roots and match the report.
    ///
    /// # Errors
    /// [`Error::SnpVekCertificate`] when `der` is not a VCEK or VLEK certificate.
    pub fn with_vek_certificate(mut self, der: Vec<u8>, source: &Path) -> Result<Self, Error> {
        let _ =
            plinth_snp::EndorsementKey::from_der(&der).map_err(|e| Error::SnpVekCertificate {
                path: source.to_owned(),
                reason: e.to_string(),
            })?;
        self.vek_certificate = der;
        Ok(self)
    }

    /// A report binding `nonce` and `key_spki` (empty: the nonce alone), self-checked.
    fn evidence(&mut self, nonce: &[u8], key_spki: Vec<u8>) -> Result<Evidence, Error> {
        let report_data = report_data(nonce, &key_spki);
        let SnpReport {
            report,
            certificate_table,
        } = self.device.report(&report_data, self.vmpl)?;
        self_check(&report, &report_data, &certificate_table)?;
        let vek_certificate = if certificate_table.is_empty() {
            if self.vek_certificate.is_empty() {
                tracing::warn!(
                    "the host provided no SEV-SNP certificate table and no snp_vek_certificate is configured: the server will refuse the report for want of the VCEK"
                );
            }
            self.vek_certificate.clone()
        } else {
            Vec::new()
        };
        Ok(Evidence {
            nonce: nonce.to_vec(),
            platform: Some(evidence::Platform::Snp(SnpEvidence {
                report,
                key_spki,
                vek_certificate,
                certificate_table,
            })),
        })
    }
}

/// Reads a VCEK/VLEK certificate file (DER, as AMD's KDS serves it), within a budget.
///
/// # Errors
/// [`Error::SnpVekCertificate`].
pub fn read_vek_certificate(path: &Path) -> Result<Vec<u8>, Error> {
    let unusable = |reason: String| Error::SnpVekCertificate {
        path: path.to_owned(),
        reason,
    };
    let file = fs::File::open(path).map_err(|e| unusable(e.to_string()))?;
    let mut der = Vec::new();
    let _ = file
        .take(MAX_VEK_CERTIFICATE_LEN.saturating_add(1))
        .read_to_end(&mut der)
        .map_err(|e| unusable(e.to_string()))?;
    if u64::try_from(der.len()).unwrap_or(u64::MAX) > MAX_VEK_CERTIFICATE_LEN {
        return Err(unusable(format!(
            "larger than {MAX_VEK_CERTIFICATE_LEN} bytes"
        )));
    }
    Ok(der)
}

/// REPORT_DATA for `nonce` and `key_spki`: SHA-512(nonce ‖ key_spki), the binding the
/// server checks (`plinth_snp::VerifiedReport::verify_key_binding`).
fn report_data(nonce: &[u8], key_spki: &[u8]) -> [u8; REPORT_DATA_LEN] {
    let mut hasher = Hasher::new(HashAlg::Sha512);
    hasher.update(nonce);
    hasher.update(key_spki);
    let mut out = [0; REPORT_DATA_LEN];
    for (o, b) in out.iter_mut().zip(hasher.finish().as_bytes()) {
        *o = *b;
    }
    out
}

/// Parses `report` (layout and field rules only: the signature, chain and TCB are the
/// server's to check), requires its REPORT_DATA to be `report_data`, and parses the
/// certificate table when there is one.
fn self_check(report: &[u8], report_data: &[u8; 64], table: &[u8]) -> Result<(), Error> {
    let parsed = AttestationReport::parse(report).map_err(|source| Error::SnpSelfCheck {
        what: "report",
        source,
    })?;
    if parsed.report_data() != report_data {
        return Err(Error::SnpReportDataMismatch);
    }
    if !table.is_empty() {
        let _ = CertTable::parse(table).map_err(|source| Error::SnpSelfCheck {
            what: "certificate table",
            source,
        })?;
    }
    Ok(())
}

impl EvidenceSource for SnpCollector {
    fn hello(&mut self) -> Result<Hello, Error> {
        Ok(Hello {
            platform: Some(hello::Platform::Snp(SnpHello {})),
        })
    }

    fn evidence_for_new_key(
        &mut self,
        challenge: &ChallengeResponse,
    ) -> Result<(Evidence, Arc<dyn SigningKey>), Error> {
        let key = EcdsaSigningKey::generate(Curve::P256, &SystemRandom)?;
        let spki = key.public_key().spki_der().to_vec();
        let evidence = self.evidence(&challenge.nonce, spki)?;
        let signer: Arc<dyn SigningKey> = Arc::new(MemorySigningKey::new(key)?);
        Ok((evidence, signer))
    }

    fn evidence_without_key(&mut self, challenge: &ChallengeResponse) -> Result<Evidence, Error> {
        self.evidence(&challenge.nonce, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use plinth_crypto::PublicKey;

    use super::*;

    /// REPORT_DATA's offset in the report (SEV-SNP ABI, Table "ATTESTATION_REPORT").
    const REPORT_DATA_OFFSET: usize = 0x50;

    fn vector_path(rel: &str) -> std::path::PathBuf {
        std::path::PathBuf::from(format!(
            "{}/../../testdata/sev-snp/{rel}",
            env!("CARGO_MANIFEST_DIR")
        ))
    }

    fn vector(rel: &str) -> Vec<u8> {
        std::fs::read(vector_path(rel)).unwrap()
    }

    /// A stand-in firmware: records each request and answers with a real report, either
    /// as it is (`echo: false`) or with REPORT_DATA replaced by the one asked for (its
    /// signature then no longer verifies; the collector's self-check does not check
    /// signatures, the server does).
    struct Firmware {
        report: Vec<u8>,
        table: Vec<u8>,
        echo: bool,
        requests: Requests,
    }

    impl SnpDevice for Firmware {
        fn report(&mut self, report_data: &[u8; 64], vmpl: u32) -> Result<SnpReport, Error> {
            self.requests.lock().unwrap().push((*report_data, vmpl));
            let mut report = self.report.clone();
            if self.echo {
                report[REPORT_DATA_OFFSET..REPORT_DATA_OFFSET + 64].copy_from_slice(report_data);
            }
            Ok(SnpReport {
                report,
                certificate_table: self.table.clone(),
            })
        }
    }

    type Requests = Arc<Mutex<Vec<([u8; 64], u32)>>>;

    fn collector(echo: bool, table: Vec<u8>) -> (SnpCollector, Requests) {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let device = Firmware {
            report: vector("go-sev-guest/attestation.bin"),
            table,
            echo,
            requests: Arc::clone(&requests),
        };
        (SnpCollector::with_device(Box::new(device), 0), requests)
    }

    fn challenge(nonce: &[u8]) -> ChallengeResponse {
        ChallengeResponse {
            nonce: nonce.to_vec(),
            ..ChallengeResponse::default()
        }
    }

    /// SHA-512(nonce ‖ spki), computed apart from the collector: one-shot over the
    /// concatenation.
    fn expected_binding(nonce: &[u8], spki: &[u8]) -> Vec<u8> {
        plinth_crypto::digest(HashAlg::Sha512, &[nonce, spki].concat())
            .as_bytes()
            .to_vec()
    }

    #[test]
    fn report_data_is_sha512_of_nonce_then_spki() {
        // FIPS 180-2 example: SHA-512("abc"), with "abc" split across the two parts.
        let expected = "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
                        2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
        let expected: Vec<u8> = (0..expected.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&expected[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(report_data(b"ab", b"c").to_vec(), expected);
    }

    #[test]
    fn hello_is_the_empty_snp_hello() {
        let (mut c, requests) = collector(true, Vec::new());
        let hello = c.hello().unwrap();
        assert_eq!(hello.platform, Some(hello::Platform::Snp(SnpHello {})));
        assert!(requests.lock().unwrap().is_empty());
    }

    #[test]
    fn binds_the_challenge_nonce_and_the_tls_key_into_report_data() {
        let (mut c, requests) = collector(true, Vec::new());
        let nonce = [0x42_u8; 32];
        let (evidence, key) = c.evidence_for_new_key(&challenge(&nonce)).unwrap();
        assert_eq!(evidence.nonce, nonce);
        let Some(evidence::Platform::Snp(snp)) = evidence.platform else {
            panic!("not SNP evidence")
        };
        let (asked, vmpl) = requests.lock().unwrap()[0];
        assert_eq!(vmpl, 0);
        assert_eq!(asked.to_vec(), expected_binding(&nonce, &snp.key_spki));
        let parsed = AttestationReport::parse(&snp.report).unwrap();
        assert_eq!(parsed.report_data(), &asked);
        assert!(snp.vek_certificate.is_empty());
        assert!(snp.certificate_table.is_empty());

        // The key handed to TLS is the key bound: its signatures verify under key_spki.
        let signer = key
            .choose_scheme(&[rustls::SignatureScheme::ECDSA_NISTP256_SHA256])
            .unwrap();
        let signature = signer.sign(b"handshake transcript").unwrap();
        PublicKey::from_spki_der(&snp.key_spki)
            .unwrap()
            .verify(
                plinth_crypto::SignatureScheme::EcdsaDer(HashAlg::Sha256),
                b"handshake transcript",
                &signature,
            )
            .unwrap();
    }

    #[test]
    fn without_key_binds_an_empty_spki() {
        let (mut c, requests) = collector(true, Vec::new());
        let nonce = [0x17_u8; 32];
        let evidence = c.evidence_without_key(&challenge(&nonce)).unwrap();
        let Some(evidence::Platform::Snp(snp)) = evidence.platform else {
            panic!("not SNP evidence")
        };
        assert!(snp.key_spki.is_empty());
        let (asked, _) = requests.lock().unwrap()[0];
        assert_eq!(asked.to_vec(), expected_binding(&nonce, &[]));
        assert_eq!(
            asked.to_vec(),
            plinth_crypto::digest(HashAlg::Sha512, &nonce).as_bytes()
        );
    }

    #[test]
    fn rejects_a_real_report_over_other_data_with_snp_report_data_mismatch() {
        let (mut c, requests) = collector(false, Vec::new());
        let err = c.evidence_for_new_key(&challenge(&[1; 32])).unwrap_err();
        assert!(matches!(err, Error::SnpReportDataMismatch), "{err:?}");
        let err = c.evidence_without_key(&challenge(&[1; 32])).unwrap_err();
        assert!(matches!(err, Error::SnpReportDataMismatch), "{err:?}");
        assert_eq!(requests.lock().unwrap().len(), 2);
    }

    #[test]
    fn rejects_a_report_that_does_not_parse_with_snp_self_check() {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let mut report = vector("go-sev-guest/attestation.bin");
        report.truncate(1000);
        let mut c = SnpCollector::with_device(
            Box::new(Firmware {
                report,
                table: Vec::new(),
                echo: false,
                requests,
            }),
            0,
        );
        let err = c.evidence_without_key(&challenge(&[1; 32])).unwrap_err();
        assert!(
            matches!(err, Error::SnpSelfCheck { what: "report", .. }),
            "{err:?}"
        );
    }

    /// A GHCB certificate table holding `vcek` (the VCEK GUID
    /// 63da758d-e664-4564-adc5-f4b93be8accd, RFC 4122 byte order), then the terminator.
    fn cert_table(vcek: &[u8]) -> Vec<u8> {
        let guid = [
            0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8,
            0xac, 0xcd,
        ];
        let mut table = Vec::new();
        table.extend_from_slice(&guid);
        table.extend_from_slice(&48_u32.to_le_bytes());
        table.extend_from_slice(&u32::try_from(vcek.len()).unwrap().to_le_bytes());
        table.extend_from_slice(&[0; 24]);
        table.extend_from_slice(vcek);
        table
    }

    #[test]
    fn sends_the_hosts_certificate_table_as_received() {
        let table = cert_table(&vector("go-sev-guest/vcek.testcer"));
        let (mut c, _) = collector(true, table.clone());
        let evidence = c.evidence_without_key(&challenge(&[3; 32])).unwrap();
        let Some(evidence::Platform::Snp(snp)) = evidence.platform else {
            panic!("not SNP evidence")
        };
        assert_eq!(snp.certificate_table, table);
        let parsed = CertTable::parse(&snp.certificate_table).unwrap();
        assert_eq!(
            parsed.get(plinth_snp::CertKind::Vcek),
            Some(&vector("go-sev-guest/vcek.testcer")[..])
        );
    }

    /// The SNP evidence `c` sends without a key.
    fn snp_evidence(c: &mut SnpCollector) -> SnpEvidence {
        let Some(evidence::Platform::Snp(snp)) = c
            .evidence_without_key(&challenge(&[3; 32]))
            .unwrap()
            .platform
        else {
            panic!("not SNP evidence")
        };
        snp
    }

    #[test]
    fn sends_the_configured_vek_only_when_the_host_has_no_table() {
        let path = vector_path("go-sev-guest/vcek.testcer");
        let vcek = read_vek_certificate(&path).unwrap();
        let (c, _) = collector(true, Vec::new());
        let snp = snp_evidence(&mut c.with_vek_certificate(vcek.clone(), &path).unwrap());
        assert_eq!(snp.vek_certificate, vcek);
        assert!(snp.certificate_table.is_empty());

        let table = cert_table(&vcek);
        let (c, _) = collector(true, table.clone());
        let snp = snp_evidence(&mut c.with_vek_certificate(vcek, &path).unwrap());
        assert!(snp.vek_certificate.is_empty(), "the host's table wins");
        assert_eq!(snp.certificate_table, table);
    }

    #[test]
    fn rejects_a_configured_vek_that_is_not_one_with_snp_vek_certificate() {
        let path = vector_path("../nitro/anjuna/attestdoc/sample_prod_doc.bin");
        let not_a_certificate = read_vek_certificate(&path).unwrap();
        let (c, _) = collector(true, Vec::new());
        assert!(matches!(
            c.with_vek_certificate(not_a_certificate, &path),
            Err(Error::SnpVekCertificate { .. })
        ));
        assert!(matches!(
            read_vek_certificate(std::path::Path::new("/nonexistent/vcek.der")),
            Err(Error::SnpVekCertificate { .. })
        ));
    }

    #[test]
    fn rejects_a_broken_certificate_table_with_snp_self_check() {
        let (mut c, _) = collector(true, vec![0xAB; 30]);
        let err = c.evidence_without_key(&challenge(&[3; 32])).unwrap_err();
        assert!(
            matches!(
                err,
                Error::SnpSelfCheck {
                    what: "certificate table",
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn open_without_configfs_tsm_fails_with_snp_device() {
        let root = Path::new("/nonexistent/plinth-test/tsm/report");
        let err = TsmReportDevice::open(root).unwrap_err();
        let Error::SnpDevice { path, source, .. } = err else {
            panic!("expected SnpDevice, got {err:?}")
        };
        assert!(path.starts_with(root));
        assert_eq!(source.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn open_of_a_directory_that_is_not_configfs_tsm_fails_and_cleans_up() {
        // A plain directory: the instance is made, but has no `provider` attribute.
        let root = tempfile::tempdir().unwrap();
        let err = TsmReportDevice::open(root.path()).unwrap_err();
        let Error::SnpDevice { path, .. } = err else {
            panic!("expected SnpDevice, got {err:?}")
        };
        assert!(path.ends_with("provider"));
        assert_eq!(std::fs::read_dir(root.path()).unwrap().count(), 0);
    }
}
