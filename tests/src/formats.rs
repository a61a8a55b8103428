//! The file and wire formats the tests exchange with tpm2-tools and the TPM.
//!
//! - tpm2-tools' credential file (`tpm2_makecredential -o`, `tpm2_activatecredential -i`):
//!   the 32-bit magic `0xBADCC0DE`, the 32-bit version 1, then `TPM2B_ID_OBJECT` and
//!   `TPM2B_ENCRYPTED_SECRET`, each with its 16-bit size (all big-endian). Checked against
//!   tpm2-tools' own output by the `tools_credential_file_layout` test.
//! - `tpm2_pcrread` and `tpm2_getcap pcrs` YAML.
//! - `TPM2_Certify` marshalled by hand for `tpm2_send`: tpm2-tools 5.4's `tpm2_certify` has
//!   no option for qualifying data, and the nonce in qualifying data is the point.

use plinth_core::{Digest, HashAlg};
use plinth_tpm::{CredentialChallenge, PcrValues};

use crate::HarnessError;

/// The first four bytes of a tpm2-tools credential file.
pub const CREDENTIAL_MAGIC: u32 = 0xBADC_C0DE;
/// The credential file version tpm2-tools writes.
pub const CREDENTIAL_VERSION: u32 = 1;

const TPM_ST_SESSIONS: u16 = 0x8002;
const TPM_CC_CERTIFY: u32 = 0x0000_0148;
const TPM_RS_PW: u32 = 0x4000_0009;
const TPM_ALG_NULL: u16 = 0x0010;

fn output_error(what: &'static str, detail: impl Into<String>) -> HarnessError {
    HarnessError::Output {
        what,
        detail: detail.into(),
    }
}

fn put_tpm2b(out: &mut Vec<u8>, what: &'static str, contents: &[u8]) -> Result<(), HarnessError> {
    let len = u16::try_from(contents.len())
        .map_err(|_| output_error(what, format!("{} bytes do not fit a TPM2B", contents.len())))?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(contents);
    Ok(())
}

/// A big-endian reader for the few TPM responses the harness decodes.
struct Cursor<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize) -> Result<&'a [u8], HarnessError> {
        if len > self.bytes.len() {
            return Err(output_error(
                self.what,
                format!("truncated: wanted {len} more bytes"),
            ));
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Ok(head)
    }

    fn u16(&mut self) -> Result<u16, HarnessError> {
        let bytes = self.take(2)?;
        <[u8; 2]>::try_from(bytes)
            .map(u16::from_be_bytes)
            .map_err(|_| output_error(self.what, "u16"))
    }

    fn u32(&mut self) -> Result<u32, HarnessError> {
        let bytes = self.take(4)?;
        <[u8; 4]>::try_from(bytes)
            .map(u32::from_be_bytes)
            .map_err(|_| output_error(self.what, "u32"))
    }

    fn tpm2b(&mut self) -> Result<&'a [u8], HarnessError> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }
}

/// Writes a plinth credential challenge in the file format `tpm2_activatecredential -i`
/// reads.
///
/// # Errors
/// [`HarnessError::Output`] if a part is larger than a TPM2B can hold.
pub fn credential_file(challenge: &CredentialChallenge) -> Result<Vec<u8>, HarnessError> {
    let mut out = Vec::new();
    out.extend_from_slice(&CREDENTIAL_MAGIC.to_be_bytes());
    out.extend_from_slice(&CREDENTIAL_VERSION.to_be_bytes());
    put_tpm2b(&mut out, "TPM2B_ID_OBJECT", &challenge.id_object)?;
    put_tpm2b(
        &mut out,
        "TPM2B_ENCRYPTED_SECRET",
        &challenge.encrypted_secret,
    )?;
    Ok(out)
}

/// The two parts of a tpm2-tools credential file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CredentialFile {
    /// Contents of the `TPM2B_ID_OBJECT`.
    pub id_object: Vec<u8>,
    /// Contents of the `TPM2B_ENCRYPTED_SECRET`.
    pub encrypted_secret: Vec<u8>,
}

/// Reads a tpm2-tools credential file, checking magic, version and that nothing trails.
///
/// # Errors
/// [`HarnessError::Output`] naming what does not fit the format.
pub fn parse_credential_file(bytes: &[u8]) -> Result<CredentialFile, HarnessError> {
    let mut cursor = Cursor {
        bytes,
        what: "credential file",
    };
    let magic = cursor.u32()?;
    if magic != CREDENTIAL_MAGIC {
        return Err(output_error(
            "credential file",
            format!("magic {magic:#010x}"),
        ));
    }
    let version = cursor.u32()?;
    if version != CREDENTIAL_VERSION {
        return Err(output_error(
            "credential file",
            format!("version {version}"),
        ));
    }
    let id_object = cursor.tpm2b()?.to_vec();
    let encrypted_secret = cursor.tpm2b()?.to_vec();
    if !cursor.bytes.is_empty() {
        return Err(output_error(
            "credential file",
            format!("{} trailing bytes", cursor.bytes.len()),
        ));
    }
    Ok(CredentialFile {
        id_object,
        encrypted_secret,
    })
}

/// Recognizes a bank header line (`sha256:`), returning the bank.
fn bank_header(line: &str) -> Option<HashAlg> {
    line.trim()
        .strip_suffix(':')
        .and_then(|name| name.parse().ok())
}

/// Parses `tpm2_pcrread` output:
///
/// ```text
///   sha256:
///     0 : 0x0000…
///     16: 0x342F…
/// ```
///
/// # Errors
/// [`HarnessError::Output`] for a value line outside a bank, a bad index or bad hex.
pub fn parse_pcrread(yaml: &str) -> Result<PcrValues, HarnessError> {
    let mut pcrs = PcrValues::default();
    let mut bank = None;
    for line in yaml.lines().filter(|line| !line.trim().is_empty()) {
        if let Some(header) = bank_header(line) {
            bank = Some(header);
            continue;
        }
        let (index, value) = line
            .split_once(':')
            .ok_or_else(|| output_error("tpm2_pcrread", format!("line {line:?}")))?;
        let bank = bank
            .ok_or_else(|| output_error("tpm2_pcrread", format!("value before bank: {line:?}")))?;
        let index: u8 = index
            .trim()
            .parse()
            .map_err(|_| output_error("tpm2_pcrread", format!("PCR index in {line:?}")))?;
        let value = value.trim();
        let hex = value.strip_prefix("0x").unwrap_or(value);
        let digest = Digest::from_hex(bank, hex)
            .map_err(|error| output_error("tpm2_pcrread", format!("{line:?}: {error}")))?;
        pcrs.insert(bank, index, digest)
            .map_err(|error| output_error("tpm2_pcrread", format!("{line:?}: {error}")))?;
    }
    Ok(pcrs)
}

/// Parses `tpm2_getcap pcrs`, returning the banks that have at least one PCR allocated:
///
/// ```text
/// selected-pcrs:
///   - sha1: [ 0, 1, … ]
///   - sha512: [ ]
/// ```
pub fn parse_active_banks(yaml: &str) -> Vec<HashAlg> {
    yaml.lines()
        .filter_map(|line| {
            let (name, list) = line.trim().strip_prefix("- ")?.split_once(':')?;
            let bank: HashAlg = name.trim().parse().ok()?;
            let allocated = list
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .trim();
            (!allocated.is_empty()).then_some(bank)
        })
        .collect()
}

/// The DER inside the first PEM block of `pem`.
///
/// # Errors
/// [`HarnessError::Output`] when there is no block or its base64 is bad.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>, HarnessError> {
    use base64::Engine as _;
    let body: String = pem
        .lines()
        .skip_while(|line| !line.starts_with("-----BEGIN "))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END "))
        .collect();
    if body.is_empty() {
        return Err(output_error("PEM", "no PEM block"));
    }
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|error| output_error("PEM", error.to_string()))
}

/// `TPM2_Certify` (Part 3, §18.2) of `object` by `sign_with`, both authorized with an empty
/// password, with `qualifying_data` and the signing key's own scheme (`TPM_ALG_NULL`).
///
/// # Errors
/// [`HarnessError::Output`] when the qualifying data is too long.
pub fn certify_command(
    object: u32,
    sign_with: u32,
    qualifying_data: &[u8],
) -> Result<Vec<u8>, HarnessError> {
    let mut password_session = Vec::new();
    password_session.extend_from_slice(&TPM_RS_PW.to_be_bytes());
    put_tpm2b(&mut password_session, "nonceCaller", &[])?;
    password_session.push(0); // sessionAttributes
    put_tpm2b(&mut password_session, "hmac", &[])?;

    let mut body = Vec::new();
    body.extend_from_slice(&object.to_be_bytes());
    body.extend_from_slice(&sign_with.to_be_bytes());
    let auth_size = u32::try_from(password_session.len().saturating_mul(2))
        .map_err(|_| output_error("TPM2_Certify", "authorization size"))?;
    body.extend_from_slice(&auth_size.to_be_bytes());
    body.extend_from_slice(&password_session);
    body.extend_from_slice(&password_session);
    put_tpm2b(&mut body, "qualifyingData", qualifying_data)?;
    body.extend_from_slice(&TPM_ALG_NULL.to_be_bytes());

    let size = u32::try_from(body.len().saturating_add(10))
        .map_err(|_| output_error("TPM2_Certify", "command size"))?;
    let mut command = Vec::new();
    command.extend_from_slice(&TPM_ST_SESSIONS.to_be_bytes());
    command.extend_from_slice(&size.to_be_bytes());
    command.extend_from_slice(&TPM_CC_CERTIFY.to_be_bytes());
    command.extend_from_slice(&body);
    Ok(command)
}

/// What `TPM2_Certify` returns: the `TPMS_ATTEST` and `TPMT_SIGNATURE` bytes as the TPM wrote
/// them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifyResponse {
    /// certifyInfo: the contents of the `TPM2B_ATTEST`.
    pub attest: Vec<u8>,
    /// signature: the `TPMT_SIGNATURE`.
    pub signature: Vec<u8>,
}

/// Splits a `TPM2_Certify` response.
///
/// # Errors
/// [`HarnessError::TpmResponse`] when the TPM returned an error code;
/// [`HarnessError::Output`] when the response is malformed.
pub fn parse_certify_response(response: &[u8]) -> Result<CertifyResponse, HarnessError> {
    let mut cursor = Cursor {
        bytes: response,
        what: "TPM2_Certify response",
    };
    let _tag = cursor.u16()?;
    let size = cursor.u32()?;
    if usize::try_from(size).ok() != Some(response.len()) {
        return Err(output_error(
            "TPM2_Certify response",
            format!("size {size}, got {}", response.len()),
        ));
    }
    let rc = cursor.u32()?;
    if rc != 0 {
        return Err(HarnessError::TpmResponse {
            command: "TPM2_Certify",
            rc,
        });
    }
    let parameter_size = cursor.u32()?;
    let parameters = cursor.take(
        usize::try_from(parameter_size)
            .map_err(|_| output_error("TPM2_Certify response", "size"))?,
    )?;
    let mut parameters = Cursor {
        bytes: parameters,
        what: "TPM2_Certify parameters",
    };
    let attest = parameters.tpm2b()?.to_vec();
    let signature = parameters.bytes.to_vec();
    Ok(CertifyResponse { attest, signature })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pcrread_output() {
        let yaml = "  sha1:\n    0 : 0x0000000000000000000000000000000000000000\n  sha256:\n    16: \
                    0x342FBD5AA695C62DE39FCC96969AB643E5BCEF9D675DA5C83E50996CC4EC7C06\n";
        let pcrs = parse_pcrread(yaml).unwrap();
        assert_eq!(
            pcrs.get(HashAlg::Sha1, 0),
            Some(&Digest::zero(HashAlg::Sha1))
        );
        assert_eq!(
            pcrs.get(HashAlg::Sha256, 16).unwrap().to_hex(),
            "342fbd5aa695c62de39fcc96969ab643e5bcef9d675da5c83e50996cc4ec7c06"
        );
        assert_eq!(pcrs.iter().count(), 2);
    }

    #[test]
    fn parses_getcap_pcrs() {
        let yaml = "selected-pcrs:\n  - sha1: [ 0, 1, 2 ]\n  - sha256: [ 0, 1 ]\n  - sha512: [ ]\n";
        assert_eq!(
            parse_active_banks(yaml),
            vec![HashAlg::Sha1, HashAlg::Sha256]
        );
    }

    #[test]
    fn credential_file_round_trips() {
        let challenge = CredentialChallenge {
            id_object: vec![1, 2, 3],
            encrypted_secret: vec![4; 5],
        };
        let file = credential_file(&challenge).unwrap();
        assert_eq!(&file[..10], &[0xBA, 0xDC, 0xC0, 0xDE, 0, 0, 0, 1, 0, 3]);
        let parsed = parse_credential_file(&file).unwrap();
        assert_eq!(parsed.id_object, challenge.id_object);
        assert_eq!(parsed.encrypted_secret, challenge.encrypted_secret);
    }
}
