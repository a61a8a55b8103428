//! Certificate signature algorithms: `AlgorithmIdentifier` DER → [`SignatureScheme`].

use plinth_core::HashAlg;
use plinth_crypto::SignatureScheme;

use crate::Error;
use crate::der::{self, Reader, TAG_INTEGER, TAG_NULL, TAG_OID, TAG_SEQUENCE};

// OBJECT IDENTIFIER contents (RFC 8017 appendix C, RFC 5758 section 3.2, NIST CSOR).
const SHA1_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x05];
const SHA256_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b];
const SHA384_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c];
const SHA512_WITH_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d];
const RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
const MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
const ECDSA_WITH_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
const ECDSA_WITH_SHA384: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03];
const ECDSA_WITH_SHA512: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04];
const SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];
const SHA512: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x03];

/// Context-specific constructed tags of `RSASSA-PSS-params` (RFC 8017 appendix A.2.3).
const PSS_HASH: u8 = 0xa0;
const PSS_MGF: u8 = 0xa1;
const PSS_SALT: u8 = 0xa2;
const PSS_TRAILER: u8 = 0xa3;

/// Maps a DER `AlgorithmIdentifier` (the whole SEQUENCE) to the scheme that verifies it.
///
/// Accepted: sha1/256/384/512WithRSAEncryption (parameters NULL or absent),
/// ecdsa-with-SHA256/384/512 (parameters absent), and RSASSA-PSS with SHA-256/384/512,
/// MGF1 with the same hash, a salt as long as the hash and trailer field 1.
pub(crate) fn signature_scheme(algorithm_identifier: &[u8]) -> Result<SignatureScheme, Error> {
    let mut outer = Reader::new(algorithm_identifier);
    let seq = outer.read_tag(TAG_SEQUENCE, "signature AlgorithmIdentifier")?;
    outer.finish("signature AlgorithmIdentifier")?;
    let mut inner = Reader::new(seq.value);
    let oid = inner.read_tag(TAG_OID, "signature algorithm OID")?.value;
    let unsupported = || Error::UnsupportedSignatureAlgorithm {
        oid: der::oid_to_dotted(oid),
    };
    let rsa_pkcs1 = |hash| -> Result<SignatureScheme, Error> {
        // RFC 4055 section 5: parameters MUST be NULL; absent is tolerated as in practice.
        if let Some(params) = inner_params(seq.value)?
            && (params.tag != TAG_NULL || !params.value.is_empty())
        {
            return Err(unsupported());
        }
        Ok(SignatureScheme::RsaPkcs1(hash))
    };
    let ecdsa = |hash| -> Result<SignatureScheme, Error> {
        // RFC 5758 section 3.2: parameters MUST be absent.
        if inner_params(seq.value)?.is_some() {
            return Err(unsupported());
        }
        Ok(SignatureScheme::EcdsaDer(hash))
    };
    match oid {
        SHA1_WITH_RSA => rsa_pkcs1(HashAlg::Sha1),
        SHA256_WITH_RSA => rsa_pkcs1(HashAlg::Sha256),
        SHA384_WITH_RSA => rsa_pkcs1(HashAlg::Sha384),
        SHA512_WITH_RSA => rsa_pkcs1(HashAlg::Sha512),
        ECDSA_WITH_SHA256 => ecdsa(HashAlg::Sha256),
        ECDSA_WITH_SHA384 => ecdsa(HashAlg::Sha384),
        ECDSA_WITH_SHA512 => ecdsa(HashAlg::Sha512),
        RSASSA_PSS => {
            let params = inner_params(seq.value)?
                .ok_or(Error::UnsupportedPssParameters("parameters are absent"))?;
            pss_params(params).map(SignatureScheme::RsaPss)
        }
        _ => Err(unsupported()),
    }
}

/// The parameters element of an `AlgorithmIdentifier`'s contents, if any (exactly one).
fn inner_params(contents: &[u8]) -> Result<Option<der::Tlv<'_>>, Error> {
    let mut reader = Reader::new(contents);
    let _oid = reader.read_tag(TAG_OID, "algorithm OID")?;
    if reader.is_empty() {
        return Ok(None);
    }
    let params = reader.read("algorithm parameters")?;
    reader.finish("algorithm parameters")?;
    Ok(Some(params))
}

/// Reads `RSASSA-PSS-params` and returns the one hash they use throughout.
fn pss_params(params: der::Tlv<'_>) -> Result<HashAlg, Error> {
    if params.tag != TAG_SEQUENCE {
        return Err(Error::UnsupportedPssParameters(
            "parameters are not a SEQUENCE",
        ));
    }
    let mut reader = Reader::new(params.value);
    // hashAlgorithm [0] DEFAULT sha1: absence means SHA-1, which is not accepted.
    let hash_field = reader
        .read_optional(PSS_HASH, "PSS hashAlgorithm")?
        .ok_or(Error::UnsupportedPssParameters("hash is the SHA-1 default"))?;
    let hash = hash_algorithm(explicit_inner(hash_field.value, "PSS hashAlgorithm")?)?;
    // maskGenAlgorithm [1] DEFAULT mgf1SHA1.
    let mgf_field = reader
        .read_optional(PSS_MGF, "PSS maskGenAlgorithm")?
        .ok_or(Error::UnsupportedPssParameters(
            "MGF is the MGF1-SHA-1 default",
        ))?;
    let mgf = explicit_inner(mgf_field.value, "PSS maskGenAlgorithm")?;
    let mut mgf_reader = Reader::new(mgf.value);
    if mgf.tag != TAG_SEQUENCE || mgf_reader.read_tag(TAG_OID, "PSS MGF OID")?.value != MGF1 {
        return Err(Error::UnsupportedPssParameters("MGF is not MGF1"));
    }
    let mgf_hash = hash_algorithm(mgf_reader.read("PSS MGF1 hash")?)?;
    mgf_reader.finish("PSS maskGenAlgorithm")?;
    if mgf_hash != hash {
        return Err(Error::UnsupportedPssParameters(
            "MGF1 hash differs from the message hash",
        ));
    }
    // saltLength [2] DEFAULT 20: must equal the hash length, and 20 is no hash we accept.
    let salt_field = reader.read_optional(PSS_SALT, "PSS saltLength")?.ok_or(
        Error::UnsupportedPssParameters("salt length is the default 20"),
    )?;
    let salt = small_integer(explicit_inner(salt_field.value, "PSS saltLength")?)?;
    if salt != hash.output_len() {
        return Err(Error::UnsupportedPssParameters(
            "salt length differs from the hash length",
        ));
    }
    // trailerField [3] DEFAULT 1: only 1 is defined.
    if let Some(trailer) = reader.read_optional(PSS_TRAILER, "PSS trailerField")?
        && small_integer(explicit_inner(trailer.value, "PSS trailerField")?)? != 1
    {
        return Err(Error::UnsupportedPssParameters("trailer field is not 1"));
    }
    reader.finish("RSASSA-PSS-params")?;
    Ok(hash)
}

/// The single element inside an EXPLICIT tag.
fn explicit_inner<'a>(contents: &'a [u8], what: &'static str) -> Result<der::Tlv<'a>, Error> {
    let mut reader = Reader::new(contents);
    let tlv = reader.read(what)?;
    reader.finish(what)?;
    Ok(tlv)
}

/// A hash `AlgorithmIdentifier`: SHA-256/384/512, parameters NULL or absent.
fn hash_algorithm(tlv: der::Tlv<'_>) -> Result<HashAlg, Error> {
    if tlv.tag != TAG_SEQUENCE {
        return Err(Error::UnsupportedPssParameters(
            "hash is not an AlgorithmIdentifier",
        ));
    }
    let hash = match Reader::new(tlv.value).read_tag(TAG_OID, "hash OID")?.value {
        SHA256 => HashAlg::Sha256,
        SHA384 => HashAlg::Sha384,
        SHA512 => HashAlg::Sha512,
        _ => {
            return Err(Error::UnsupportedPssParameters(
                "hash is not SHA-256/384/512",
            ));
        }
    };
    if let Some(params) = inner_params(tlv.value)?
        && (params.tag != TAG_NULL || !params.value.is_empty())
    {
        return Err(Error::UnsupportedPssParameters(
            "hash parameters are not NULL",
        ));
    }
    Ok(hash)
}

/// A non-negative INTEGER of at most two content bytes.
fn small_integer(tlv: der::Tlv<'_>) -> Result<usize, Error> {
    if tlv.tag != TAG_INTEGER || tlv.value.is_empty() || tlv.value.len() > 2 {
        return Err(Error::UnsupportedPssParameters(
            "integer field out of range",
        ));
    }
    if tlv.value.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(Error::UnsupportedPssParameters("integer field is negative"));
    }
    Ok(tlv
        .value
        .iter()
        .fold(0usize, |acc, &b| (acc << 8) | usize::from(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alg_id(oid: &[u8], params: &[u8]) -> Vec<u8> {
        let mut body = vec![TAG_OID, u8::try_from(oid.len()).unwrap()];
        body.extend_from_slice(oid);
        body.extend_from_slice(params);
        let mut out = vec![TAG_SEQUENCE, u8::try_from(body.len()).unwrap()];
        out.extend(body);
        out
    }

    #[test]
    fn maps_pkcs1_and_ecdsa() {
        assert_eq!(
            signature_scheme(&alg_id(SHA256_WITH_RSA, &[0x05, 0x00])).unwrap(),
            SignatureScheme::RsaPkcs1(HashAlg::Sha256)
        );
        assert_eq!(
            signature_scheme(&alg_id(SHA1_WITH_RSA, &[])).unwrap(),
            SignatureScheme::RsaPkcs1(HashAlg::Sha1)
        );
        assert_eq!(
            signature_scheme(&alg_id(ECDSA_WITH_SHA384, &[])).unwrap(),
            SignatureScheme::EcdsaDer(HashAlg::Sha384)
        );
        assert!(matches!(
            signature_scheme(&alg_id(ECDSA_WITH_SHA384, &[0x05, 0x00])),
            Err(Error::UnsupportedSignatureAlgorithm { .. })
        ));
        // md5WithRSAEncryption.
        let md5 = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x04];
        assert_eq!(
            signature_scheme(&alg_id(&md5, &[0x05, 0x00])),
            Err(Error::UnsupportedSignatureAlgorithm {
                oid: "1.2.840.113549.1.1.4".into()
            })
        );
    }

    /// `RSASSA-PSS-params` for SHA-384 as AMD's KDS certificates carry them.
    const AMD_PSS_PARAMS: &str = "3034a00f300d06096086480165030402020500a11c301a06092a864886f70d010108300d06096086480165030402020500a203020130";

    #[test]
    fn maps_pss_sha384() {
        let params = hex::decode(AMD_PSS_PARAMS).unwrap();
        assert_eq!(
            signature_scheme(&alg_id(RSASSA_PSS, &params)).unwrap(),
            SignatureScheme::RsaPss(HashAlg::Sha384)
        );
    }

    #[test]
    fn rejects_pss_with_wrong_salt_or_defaults() {
        let mut params = hex::decode(AMD_PSS_PARAMS).unwrap();
        *params.last_mut().unwrap() = 0x20;
        assert_eq!(
            signature_scheme(&alg_id(RSASSA_PSS, &params)),
            Err(Error::UnsupportedPssParameters(
                "salt length differs from the hash length"
            ))
        );
        assert_eq!(
            signature_scheme(&alg_id(RSASSA_PSS, &[0x30, 0x00])),
            Err(Error::UnsupportedPssParameters("hash is the SHA-1 default"))
        );
        assert_eq!(
            signature_scheme(&alg_id(RSASSA_PSS, &[])),
            Err(Error::UnsupportedPssParameters("parameters are absent"))
        );
    }
}
