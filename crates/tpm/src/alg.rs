//! TPM_ALG_ID and TPM_ECC_CURVE values (TPM 2.0 Part 2, §6.3 and §6.4) and their mapping to
//! plinth's algorithm types.

use plinth_core::HashAlg;
use plinth_crypto::Curve;

use crate::Error;

pub(crate) const TPM_ALG_RSA: u16 = 0x0001;
pub(crate) const TPM_ALG_SHA1: u16 = 0x0004;
pub(crate) const TPM_ALG_AES: u16 = 0x0006;
pub(crate) const TPM_ALG_SHA256: u16 = 0x000B;
pub(crate) const TPM_ALG_SHA384: u16 = 0x000C;
pub(crate) const TPM_ALG_SHA512: u16 = 0x000D;
pub(crate) const TPM_ALG_NULL: u16 = 0x0010;
pub(crate) const TPM_ALG_RSASSA: u16 = 0x0014;
pub(crate) const TPM_ALG_RSAES: u16 = 0x0015;
pub(crate) const TPM_ALG_RSAPSS: u16 = 0x0016;
pub(crate) const TPM_ALG_OAEP: u16 = 0x0017;
pub(crate) const TPM_ALG_ECDSA: u16 = 0x0018;
pub(crate) const TPM_ALG_ECDH: u16 = 0x0019;
pub(crate) const TPM_ALG_ECDAA: u16 = 0x001A;
pub(crate) const TPM_ALG_SM2: u16 = 0x001B;
pub(crate) const TPM_ALG_ECSCHNORR: u16 = 0x001C;
pub(crate) const TPM_ALG_ECC: u16 = 0x0023;
pub(crate) const TPM_ALG_CFB: u16 = 0x0043;

const TPM_ECC_NIST_P256: u16 = 0x0003;
const TPM_ECC_NIST_P384: u16 = 0x0004;

/// Maps a TPM hash algorithm identifier to [`HashAlg`].
pub(crate) fn hash_alg(field: &'static str, alg: u16) -> Result<HashAlg, Error> {
    match alg {
        TPM_ALG_SHA1 => Ok(HashAlg::Sha1),
        TPM_ALG_SHA256 => Ok(HashAlg::Sha256),
        TPM_ALG_SHA384 => Ok(HashAlg::Sha384),
        TPM_ALG_SHA512 => Ok(HashAlg::Sha512),
        _ => Err(Error::UnsupportedAlgorithm { field, alg }),
    }
}

/// The TPM identifier of a [`HashAlg`].
pub(crate) const fn hash_alg_id(alg: HashAlg) -> u16 {
    match alg {
        HashAlg::Sha1 => TPM_ALG_SHA1,
        HashAlg::Sha256 => TPM_ALG_SHA256,
        HashAlg::Sha384 => TPM_ALG_SHA384,
        HashAlg::Sha512 => TPM_ALG_SHA512,
    }
}

/// Maps a TPM_ECC_CURVE to a [`Curve`].
pub(crate) fn curve(id: u16) -> Result<Curve, Error> {
    match id {
        TPM_ECC_NIST_P256 => Ok(Curve::P256),
        TPM_ECC_NIST_P384 => Ok(Curve::P384),
        _ => Err(Error::UnsupportedAlgorithm {
            field: "curveID",
            alg: id,
        }),
    }
}
