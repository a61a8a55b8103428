//! tpm2-tools flows the tests share: EK and AK creation, credential activation, PCRs,
//! quotes, child keys and `TPM2_Certify`.
//!
//! Every step goes through [`Swtpm::tool`], which flushes transient objects afterwards;
//! keys are carried between steps as saved-context files.

use std::fmt::Write as _;
use std::path::PathBuf;

use plinth_core::HashAlg;
use plinth_crypto::digest;
use plinth_tpm::{PcrValues, Public};

use crate::formats::{self, CertifyResponse};
use crate::{HarnessError, Swtpm};

/// NV index of the RSA-2048 EK certificate (TCG EK Credential Profile, low range).
pub const EK_CERT_NV_RSA: u32 = 0x01C0_0002;
/// NV index of the ECC P-384 EK certificate `swtpm_setup` writes (high range).
pub const EK_CERT_NV_ECC_P384: u32 = 0x01C0_0016;
/// Persistent handle of the RSA-2048 EK `swtpm_setup` creates.
pub const EK_PERSISTENT_RSA: u32 = 0x8101_0001;
/// Persistent handle of the ECC P-384 EK `swtpm_setup` creates.
pub const EK_PERSISTENT_ECC_P384: u32 = 0x8101_0016;

/// Key algorithm for EKs, AKs and child keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlg {
    /// RSA-2048.
    Rsa,
    /// ECC NIST P-256.
    EccP256,
}

impl KeyAlg {
    const fn tools_name(self) -> &'static str {
        match self {
            Self::Rsa => "rsa",
            Self::EccP256 => "ecc",
        }
    }

    /// The AK signing scheme `tpm2_createak` is given.
    const fn ak_scheme(self) -> &'static str {
        match self {
            Self::Rsa => "rsassa",
            Self::EccP256 => "ecdsa",
        }
    }
}

/// A TPM object the tools can use: its saved context and public area.
#[derive(Debug, Clone)]
pub struct TpmKey {
    /// The saved context (`-c`/`-C` argument), or a persistent handle in hex.
    pub context: String,
    /// The `TPM2B_PUBLIC` as tpm2-tools wrote it.
    pub public_tpm2b: Vec<u8>,
    /// The path of that `TPM2B_PUBLIC` file.
    pub public_path: PathBuf,
}

impl TpmKey {
    /// The public area, parsed by plinth.
    ///
    /// # Errors
    /// [`HarnessError::Output`] when plinth cannot parse what the TPM produced.
    pub fn public(&self) -> Result<Public, HarnessError> {
        Public::from_tpm2b(&self.public_tpm2b).map_err(|error| HarnessError::Output {
            what: "TPM2B_PUBLIC",
            detail: error.to_string(),
        })
    }

    /// The `TPMT_PUBLIC` bytes (the `TPM2B_PUBLIC` without its size).
    pub fn tpmt_public(&self) -> &[u8] {
        self.public_tpm2b.get(2..).unwrap_or_default()
    }
}

/// A quote as the TPM produced it, plus the PCR values read right after.
#[derive(Debug, Clone)]
pub struct Quote {
    /// `TPMS_ATTEST` bytes (`tpm2_quote -m`).
    pub attest: Vec<u8>,
    /// `TPMT_SIGNATURE` bytes (`tpm2_quote -s`).
    pub signature: Vec<u8>,
    /// Path of the `TPMS_ATTEST` file.
    pub attest_path: PathBuf,
    /// Path of the `TPMT_SIGNATURE` file.
    pub signature_path: PathBuf,
    /// Path of the PCR file in tpm2-tools' own format, for `tpm2_checkquote -f`.
    pub tools_pcrs_path: PathBuf,
    /// The quoted PCRs' values, from `tpm2_pcrread`.
    pub pcrs: PcrValues,
}

fn path_arg(path: &std::path::Path) -> String {
    path.display().to_string()
}

impl Swtpm {
    /// Creates a transient EK from the TCG default template (`tpm2_createek`); for RSA this
    /// is the same key as the persistent EK `swtpm_setup` certified.
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`].
    pub fn create_ek(&self, alg: KeyAlg, label: &str) -> Result<TpmKey, HarnessError> {
        let context = path_arg(&self.path(&format!("{label}.ctx")));
        let public_path = self.path(&format!("{label}.pub"));
        let _out = self.tool(
            "tpm2_createek",
            &[
                "-c",
                &context,
                "-G",
                alg.tools_name(),
                "-u",
                &path_arg(&public_path),
            ],
        )?;
        let public_tpm2b = self.read(&format!("{label}.pub"))?;
        Ok(TpmKey {
            context,
            public_tpm2b,
            public_path,
        })
    }

    /// The public area of a persistent object (for example the EK `swtpm_setup` made).
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`].
    pub fn persistent_key(&self, handle: u32, label: &str) -> Result<TpmKey, HarnessError> {
        self.key_at(format!("{handle:#x}"), label)
    }

    /// The key at `context` (a saved context file or a persistent handle), with its public
    /// area read by `tpm2_readpublic` into `<label>.pub`.
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`].
    pub fn key_at(&self, context: String, label: &str) -> Result<TpmKey, HarnessError> {
        let public_path = self.path(&format!("{label}.pub"));
        let _out = self.tool(
            "tpm2_readpublic",
            &["-c", &context, "-o", &path_arg(&public_path)],
        )?;
        let public_tpm2b = self.read(&format!("{label}.pub"))?;
        Ok(TpmKey {
            context,
            public_tpm2b,
            public_path,
        })
    }

    /// Creates an AK under `ek` (`tpm2_createak`, SHA-256, RSASSA or ECDSA P-256): a
    /// restricted, fixedTPM, fixedParent signing key.
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`].
    pub fn create_ak(&self, ek: &TpmKey, alg: KeyAlg, label: &str) -> Result<TpmKey, HarnessError> {
        let context = path_arg(&self.path(&format!("{label}.ctx")));
        let public_path = self.path(&format!("{label}.pub"));
        let _out = self.tool(
            "tpm2_createak",
            &[
                "-C",
                &ek.context,
                "-c",
                &context,
                "-G",
                alg.tools_name(),
                "-g",
                "sha256",
                "-s",
                alg.ak_scheme(),
                "-u",
                &path_arg(&public_path),
                "-n",
                &path_arg(&self.path(&format!("{label}.name"))),
                "-r",
                &path_arg(&self.path(&format!("{label}.priv"))),
            ],
        )?;
        let public_tpm2b = self.read(&format!("{label}.pub"))?;
        Ok(TpmKey {
            context,
            public_tpm2b,
            public_path,
        })
    }

    /// The name of `key` as the TPM computes it (`tpm2_readpublic -n`).
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`].
    pub fn tpm_name(&self, key: &TpmKey) -> Result<Vec<u8>, HarnessError> {
        let name = self.path("readpublic.name");
        let _out = self.tool(
            "tpm2_readpublic",
            &["-c", &key.context, "-n", &path_arg(&name)],
        )?;
        self.read("readpublic.name")
    }

    /// `tpm2_makecredential -T none`: tpm2-tools' own software `MakeCredential`, returning
    /// its credential file.
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`].
    pub fn tools_make_credential(
        &self,
        ek: &TpmKey,
        secret: &[u8],
        name: &[u8],
    ) -> Result<Vec<u8>, HarnessError> {
        let secret_path = self.write("tools-secret.bin", secret)?;
        let out = self.path("tools-credential.bin");
        let _out = self.tool_keep_loaded(
            "tpm2_makecredential",
            &[
                "-T",
                "none",
                "-u",
                &path_arg(&ek.public_path),
                "-s",
                &path_arg(&secret_path),
                "-n",
                &hex::encode(name),
                "-o",
                &path_arg(&out),
            ],
        )?;
        self.read("tools-credential.bin")
    }

    /// `TPM2_ActivateCredential` of `credential_file` (tpm2-tools format) with `ak` and `ek`,
    /// authorizing the EK with the PolicySecret(endorsement) session its template demands.
    /// Returns the recovered secret.
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`] when the TPM refuses (its stderr has the `TPM_RC`).
    pub fn activate_credential(
        &self,
        ak: &TpmKey,
        ek: &TpmKey,
        credential_file: &[u8],
    ) -> Result<Vec<u8>, HarnessError> {
        let input = self.write("activate-in.bin", credential_file)?;
        let output = self.path("activate-out.bin");
        let session = path_arg(&self.path("ek-policy.session"));
        let _out = self.tool(
            "tpm2_startauthsession",
            &["--policy-session", "-S", &session],
        )?;
        let activated = self
            .tool("tpm2_policysecret", &["-S", &session, "-c", "e"])
            .and_then(|_| {
                self.tool(
                    "tpm2_activatecredential",
                    &[
                        "-c",
                        &ak.context,
                        "-C",
                        &ek.context,
                        "-i",
                        &path_arg(&input),
                        "-o",
                        &path_arg(&output),
                        "-P",
                        &format!("session:{session}"),
                    ],
                )
            });
        // The session must go whether or not activation worked.
        let flushed = self.flush_all();
        let _out = activated?;
        flushed?;
        self.read("activate-out.bin")
    }

    /// The banks with PCRs allocated (`tpm2_getcap pcrs`).
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`].
    pub fn active_banks(&self) -> Result<Vec<HashAlg>, HarnessError> {
        let out = self.tool("tpm2_getcap", &["pcrs"])?;
        Ok(formats::parse_active_banks(&String::from_utf8_lossy(&out)))
    }

    /// Extends PCR `index` in every active bank with that bank's hash of `data`.
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`].
    pub fn pcr_extend(&self, index: u8, data: &[u8]) -> Result<(), HarnessError> {
        let mut spec = format!("{index}:");
        for (i, bank) in self.active_banks()?.into_iter().enumerate() {
            let separator = if i == 0 { "" } else { "," };
            let _ok = write!(spec, "{separator}{bank}={}", digest(bank, data).to_hex());
        }
        self.tool("tpm2_pcrextend", &[&spec]).map(drop)
    }

    /// Reads PCRs (`tpm2_pcrread <selection>`, for example `sha256:0,7,16`).
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`] or [`HarnessError::Output`].
    pub fn pcr_read(&self, selection: &str) -> Result<PcrValues, HarnessError> {
        let out = self.tool("tpm2_pcrread", &[selection])?;
        formats::parse_pcrread(&String::from_utf8_lossy(&out))
    }

    /// `TPM2_Quote` by `ak` over `selection` with `nonce` as qualifying data, signed with
    /// SHA-256 (`tpm2_quote -g sha256`), then the PCR values it covered.
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`] or [`HarnessError::Output`].
    pub fn quote(
        &self,
        ak: &TpmKey,
        selection: &str,
        nonce: &[u8],
        label: &str,
    ) -> Result<Quote, HarnessError> {
        let attest_path = self.path(&format!("{label}.attest"));
        let signature_path = self.path(&format!("{label}.sig"));
        let tools_pcrs_path = self.path(&format!("{label}.pcrs"));
        let _out = self.tool(
            "tpm2_quote",
            &[
                "-c",
                &ak.context,
                "-l",
                selection,
                "-q",
                &hex::encode(nonce),
                "-m",
                &path_arg(&attest_path),
                "-s",
                &path_arg(&signature_path),
                "-o",
                &path_arg(&tools_pcrs_path),
                "-g",
                "sha256",
            ],
        )?;
        let pcrs = self.pcr_read(selection)?;
        Ok(Quote {
            attest: self.read(&format!("{label}.attest"))?,
            signature: self.read(&format!("{label}.sig"))?,
            attest_path,
            signature_path,
            tools_pcrs_path,
            pcrs,
        })
    }

    /// `tpm2_checkquote`: tpm2-tools' (OpenSSL's) verdict on `quote` with `ak` and `nonce`.
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`] when `tpm2_checkquote` rejects it.
    pub fn check_quote(
        &self,
        ak: &TpmKey,
        quote: &Quote,
        nonce: &[u8],
    ) -> Result<(), HarnessError> {
        self.tool_keep_loaded(
            "tpm2_checkquote",
            &[
                "-u",
                &path_arg(&ak.public_path),
                "-m",
                &path_arg(&quote.attest_path),
                "-s",
                &path_arg(&quote.signature_path),
                "-f",
                &path_arg(&quote.tools_pcrs_path),
                "-g",
                "sha256",
                "-q",
                &hex::encode(nonce),
            ],
        )
        .map(drop)
    }

    /// An ECC P-256 storage primary in the owner hierarchy (`tpm2_createprimary -C o`).
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`].
    pub fn create_owner_primary(&self, label: &str) -> Result<TpmKey, HarnessError> {
        let context = path_arg(&self.path(&format!("{label}.ctx")));
        let _out = self.tool(
            "tpm2_createprimary",
            &["-C", "o", "-G", "ecc256", "-c", &context],
        )?;
        self.key_at(context, label)
    }

    /// Creates and loads a child of `parent` (`tpm2_create -G <alg> -a <attributes>`, then
    /// `tpm2_load`).
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`].
    pub fn create_child(
        &self,
        parent: &TpmKey,
        alg: &str,
        attributes: &str,
        label: &str,
    ) -> Result<TpmKey, HarnessError> {
        let public_path = self.path(&format!("{label}.pub"));
        let private = path_arg(&self.path(&format!("{label}.priv")));
        let context = path_arg(&self.path(&format!("{label}.ctx")));
        let _out = self.tool(
            "tpm2_create",
            &[
                "-C",
                &parent.context,
                "-G",
                alg,
                "-a",
                attributes,
                "-u",
                &path_arg(&public_path),
                "-r",
                &private,
            ],
        )?;
        let _out = self.tool(
            "tpm2_load",
            &[
                "-C",
                &parent.context,
                "-u",
                &path_arg(&public_path),
                "-r",
                &private,
                "-c",
                &context,
            ],
        )?;
        let public_tpm2b = self.read(&format!("{label}.pub"))?;
        Ok(TpmKey {
            context,
            public_tpm2b,
            public_path,
        })
    }

    /// Makes `key` persistent at `handle` in the owner hierarchy (`tpm2_evictcontrol`) and
    /// returns it addressed by that handle.
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`].
    pub fn persist(&self, key: &TpmKey, handle: u32) -> Result<TpmKey, HarnessError> {
        let handle_arg = format!("{handle:#x}");
        let _out = self.tool(
            "tpm2_evictcontrol",
            &["-C", "o", "-c", &key.context, &handle_arg],
        )?;
        Ok(TpmKey {
            context: handle_arg,
            ..key.clone()
        })
    }

    /// `TPM2_Certify` of the persistent object `object` by the persistent AK `ak`, with
    /// `qualifying_data`, sent raw through `tpm2_send` (tpm2-tools 5.4's `tpm2_certify`
    /// cannot set qualifying data).
    ///
    /// # Errors
    /// [`HarnessError::TpmResponse`] when the TPM refuses.
    pub fn certify(
        &self,
        object: u32,
        ak: u32,
        qualifying_data: &[u8],
    ) -> Result<CertifyResponse, HarnessError> {
        let command = formats::certify_command(object, ak, qualifying_data)?;
        let command_path = self.write("certify.cmd", &command)?;
        let response_path = self.path("certify.rsp");
        let _out = self.tool(
            "tpm2_send",
            &["-o", &path_arg(&response_path), &path_arg(&command_path)],
        )?;
        formats::parse_certify_response(&self.read("certify.rsp")?)
    }

    /// The key's `SubjectPublicKeyInfo` as tpm2-tools (OpenSSL) encodes it
    /// (`tpm2_readpublic -f pem`), as DER.
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`] or [`HarnessError::Output`].
    pub fn public_key_der(&self, key: &TpmKey) -> Result<Vec<u8>, HarnessError> {
        let pem = self.path("readpublic.pem");
        let _out = self.tool(
            "tpm2_readpublic",
            &["-c", &key.context, "-f", "pem", "-o", &path_arg(&pem)],
        )?;
        formats::pem_to_der(&String::from_utf8_lossy(&self.read("readpublic.pem")?))
    }

    /// The EK certificate stored at NV `index` (`tpm2_nvread`), DER.
    ///
    /// # Errors
    /// [`HarnessError::ToolFailed`].
    pub fn ek_certificate(&self, index: u32) -> Result<Vec<u8>, HarnessError> {
        let out = self.path("ekcert.der");
        let _out = self.tool(
            "tpm2_nvread",
            &[&format!("{index:#x}"), "-o", &path_arg(&out)],
        )?;
        self.read("ekcert.der")
    }
}
