//! TPMS_ATTEST: what a TPM signs when it quotes PCRs or certifies an object
//! (TPM 2.0 Part 2, §10.12).

use plinth_core::HashAlg;

use crate::Error;
use crate::alg;
use crate::codec::Reader;
use crate::public::MAX_DIGEST;

/// TPM_GENERATED_VALUE: only the TPM writes structures that begin with it.
const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
const TPM_ST_ATTEST_CERTIFY: u16 = 0x8017;
const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;
const TPM_ST_ATTEST_CREATION: u16 = 0x801A;

/// Largest TPM2B_NAME: a hash algorithm identifier and a SHA-512 digest.
const MAX_NAME: usize = 2 + 64;
/// Largest TPM2B_DATA (extraData): the size of the largest digest.
const MAX_EXTRA_DATA: usize = 64;
/// Most PCR banks a selection may list.
const MAX_PCR_BANKS: u32 = 8;
/// Largest sizeofSelect: 4 bytes select PCRs 0..=31.
const MAX_PCR_SELECT_BYTES: u8 = 4;

/// The TPM's clock state when it signed (TPMS_CLOCK_INFO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClockInfo {
    /// Milliseconds the TPM has been powered since it was last cleared.
    pub clock: u64,
    /// TPM resets (power cycles) since the last clear.
    pub reset_count: u32,
    /// TPM restarts (resume from hibernate) since the last reset.
    pub restart_count: u32,
    /// Whether `clock` is guaranteed not to have rolled back.
    pub safe: bool,
}

/// The PCRs selected in one bank (TPMS_PCR_SELECTION).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PcrSelection {
    /// The bank.
    pub bank: HashAlg,
    /// Selected PCR indices, ascending.
    pub indices: Vec<u8>,
}

/// The type-specific part of an attestation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Attested {
    Quote {
        selection: Vec<PcrSelection>,
        pcr_digest: Vec<u8>,
    },
    Certify {
        name: Vec<u8>,
        qualified_name: Vec<u8>,
    },
    Creation {
        object_name: Vec<u8>,
        creation_hash: Vec<u8>,
    },
}

/// A parsed TPMS_ATTEST. Parsing trusts nothing; see the `verify_*` functions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attest {
    pub(crate) magic: u32,
    pub(crate) kind: u16,
    pub(crate) qualified_signer: Vec<u8>,
    pub(crate) extra_data: Vec<u8>,
    pub(crate) clock_info: ClockInfo,
    pub(crate) firmware_version: u64,
    pub(crate) attested: Attested,
}

impl Attest {
    /// Parses a TPMS_ATTEST that must fill `bytes` exactly. The magic is read, not judged,
    /// so that a signature failure is reported first.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = Reader::new(bytes, "TPMS_ATTEST");
        let magic = r.u32()?;
        let attest_type = r.u16()?;
        let qualified_signer = r.tpm2b("qualifiedSigner", MAX_NAME)?.to_vec();
        let extra_data = r.tpm2b("extraData", MAX_EXTRA_DATA)?.to_vec();
        let clock_info = ClockInfo {
            clock: r.u64()?,
            reset_count: r.u32()?,
            restart_count: r.u32()?,
            safe: match r.u8()? {
                0 => false,
                1 => true,
                other => {
                    return Err(Error::InvalidValue {
                        field: "safe",
                        value: other.into(),
                    });
                }
            },
        };
        let firmware_version = r.u64()?;
        let attested = match attest_type {
            TPM_ST_ATTEST_QUOTE => Attested::Quote {
                selection: read_pcr_selection(&mut r)?,
                pcr_digest: r.tpm2b("pcrDigest", MAX_DIGEST)?.to_vec(),
            },
            TPM_ST_ATTEST_CERTIFY => Attested::Certify {
                name: r.tpm2b("name", MAX_NAME)?.to_vec(),
                qualified_name: r.tpm2b("qualifiedName", MAX_NAME)?.to_vec(),
            },
            TPM_ST_ATTEST_CREATION => Attested::Creation {
                object_name: r.tpm2b("objectName", MAX_NAME)?.to_vec(),
                creation_hash: r.tpm2b("creationHash", MAX_DIGEST)?.to_vec(),
            },
            other => {
                return Err(Error::WrongAttestType {
                    expected: "quote, certify or creation",
                    found: other,
                });
            }
        };
        r.finish()?;
        Ok(Self {
            magic,
            kind: attest_type,
            qualified_signer,
            extra_data,
            clock_info,
            firmware_version,
            attested,
        })
    }

    /// Fails unless the TPM generated this structure.
    pub(crate) const fn check_magic(&self) -> Result<(), Error> {
        if self.magic == TPM_GENERATED_VALUE {
            Ok(())
        } else {
            Err(Error::NotTpmGenerated(self.magic))
        }
    }
}

fn read_pcr_selection(r: &mut Reader<'_>) -> Result<Vec<PcrSelection>, Error> {
    let count = r.u32()?;
    if count > MAX_PCR_BANKS {
        return Err(Error::TooLarge {
            field: "TPML_PCR_SELECTION count",
            len: usize::try_from(count).unwrap_or(usize::MAX),
            max: usize::try_from(MAX_PCR_BANKS).unwrap_or(usize::MAX),
        });
    }
    let mut banks: Vec<PcrSelection> = Vec::new();
    for _ in 0..count {
        let bank = alg::hash_alg("PCR bank", r.u16()?)?;
        let size = r.u8()?;
        if size > MAX_PCR_SELECT_BYTES {
            return Err(Error::TooLarge {
                field: "sizeofSelect",
                len: size.into(),
                max: MAX_PCR_SELECT_BYTES.into(),
            });
        }
        let bitmap = r.take(size.into())?;
        if banks.iter().any(|b| b.bank == bank) {
            return Err(Error::InvalidValue {
                field: "PCR bank listed twice",
                value: alg::hash_alg_id(bank).into(),
            });
        }
        let indices = (0_u8..)
            .zip(
                bitmap
                    .iter()
                    .flat_map(|byte| (0..8).map(move |bit| byte & (1 << bit) != 0)),
            )
            .filter_map(|(index, selected)| selected.then_some(index))
            .collect();
        banks.push(PcrSelection { bank, indices });
    }
    Ok(banks)
}
