//! AMD certificate revocation lists (KDS `/vcek/v1/{product}/crl`, `/vlek/v1/{product}/crl`):
//! X.509 v2 CRLs signed by the product's ARK with RSASSA-PSS/SHA-384, listing revoked
//! ASK/ASVK certificates.
//!
//! `plinth-x509` does not handle revocation, so the CertificateList is read here, with the
//! same rules: the signature is checked over the TBSCertList bytes as received, a critical
//! extension this code does not understand makes the CRL unusable (fail closed), and
//! sizes are budgeted.

use plinth_core::{HashAlg, UnixTime};
use plinth_crypto::SignatureScheme;
use plinth_x509::Certificate;

use crate::Error;
use crate::asn1::{
    self, Malformed, Reader, TAG_BIT_STRING, TAG_GENERALIZED_TIME, TAG_INTEGER, TAG_OCTET_STRING,
    TAG_SEQUENCE, TAG_UTC_TIME,
};

/// The largest CRL accepted, in bytes (AMD's are about 1 KiB).
pub const MAX_CRL_LEN: usize = 256 * 1024;
/// The most revoked entries one CRL may list.
pub const MAX_CRL_ENTRIES: usize = 4096;

/// `[0]` EXPLICIT crlExtensions.
const TAG_CRL_EXTENSIONS: u8 = 0xa0;
const TAG_BOOLEAN: u8 = 0x01;
const TAG_OID: u8 = 0x06;
const TAG_NULL: u8 = 0x05;

/// DER of the OID rsassaPss (1.2.840.113549.1.1.10), contents only.
const OID_RSASSA_PSS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0a];
/// DER of the OID id-mgf1 (1.2.840.113549.1.1.8), contents only.
const OID_MGF1: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08];
/// DER of the OID id-sha384 (2.16.840.1.101.3.4.2.2), contents only.
const OID_SHA384: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x02];

/// A parsed, NOT yet verified certificate revocation list.
#[derive(Debug, Clone)]
pub struct Crl {
    tbs: Vec<u8>,
    signature: Vec<u8>,
    issuer: Vec<u8>,
    this_update: UnixTime,
    next_update: Option<UnixTime>,
    revoked: Vec<Vec<u8>>,
}

fn malformed(what: &'static str) -> impl Fn(Malformed) -> Error {
    move |Malformed| Error::CrlMalformed(what)
}

/// Checks an AlgorithmIdentifier is RSASSA-PSS with SHA-384, MGF1-SHA-384, a 48-byte salt
/// and the default trailer: the only algorithm AMD signs with.
fn check_pss_sha384(algorithm: &[u8]) -> Result<(), Malformed> {
    fn hash_sha384(tlv: &[u8]) -> Result<(), Malformed> {
        let mut r = Reader::new(asn1::single(tlv, TAG_SEQUENCE)?);
        if r.read_tag(TAG_OID)?.value != OID_SHA384 {
            return Err(Malformed);
        }
        let _null = r.read_optional(TAG_NULL)?;
        r.finish()
    }
    let mut r = Reader::new(asn1::single(algorithm, TAG_SEQUENCE)?);
    if r.read_tag(TAG_OID)?.value != OID_RSASSA_PSS {
        return Err(Malformed);
    }
    let mut params = Reader::new(r.read_tag(TAG_SEQUENCE)?.value);
    r.finish()?;
    hash_sha384(params.read_tag(0xa0)?.value)?;
    let mut mgf = Reader::new(asn1::single(params.read_tag(0xa1)?.value, TAG_SEQUENCE)?);
    if mgf.read_tag(TAG_OID)?.value != OID_MGF1 {
        return Err(Malformed);
    }
    hash_sha384(mgf.read()?.whole)?;
    mgf.finish()?;
    if asn1::small_uint(params.read_tag(0xa2)?.value)? != 48 {
        return Err(Malformed);
    }
    if let Some(trailer) = params.read_optional(0xa3)? {
        if asn1::small_uint(trailer.value)? != 1 {
            return Err(Malformed);
        }
    }
    params.finish()
}

/// Reads Extensions and fails on any critical one (none is understood here).
fn check_extensions(extensions: &[u8]) -> Result<(), Error> {
    let mut list =
        Reader::new(asn1::single(extensions, TAG_SEQUENCE).map_err(malformed("extensions"))?);
    while !list.is_empty() {
        let mut ext = Reader::new(
            list.read_tag(TAG_SEQUENCE)
                .map_err(malformed("extension"))?
                .value,
        );
        let _oid = ext.read_tag(TAG_OID).map_err(malformed("extension"))?;
        if let Some(critical) = ext
            .read_optional(TAG_BOOLEAN)
            .map_err(malformed("extension"))?
        {
            if critical.value != [0x00] {
                return Err(Error::CrlMalformed("unsupported critical extension"));
            }
        }
        let _value = ext
            .read_tag(TAG_OCTET_STRING)
            .map_err(malformed("extension"))?;
        ext.finish().map_err(malformed("extension"))?;
    }
    Ok(())
}

fn read_time(r: &mut Reader<'_>, what: &'static str) -> Result<UnixTime, Error> {
    asn1::time(r.read().map_err(malformed(what))?).map_err(malformed(what))
}

impl Crl {
    /// Parses a DER CertificateList.
    ///
    /// # Errors
    /// [`Error::CrlMalformed`] naming the part that is wrong, including an unsupported
    /// signature algorithm or critical extension, or a budget exceeded.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        if der.len() > MAX_CRL_LEN {
            return Err(Error::CrlMalformed("larger than the size budget"));
        }
        let mut outer = Reader::new(der);
        let list = outer
            .read_tag(TAG_SEQUENCE)
            .map_err(malformed("CertificateList"))?;
        outer.finish().map_err(malformed("trailing data"))?;
        let mut parts = Reader::new(list.value);
        let tbs = parts
            .read_tag(TAG_SEQUENCE)
            .map_err(malformed("TBSCertList"))?;
        let algorithm = parts
            .read_tag(TAG_SEQUENCE)
            .map_err(malformed("signatureAlgorithm"))?;
        let signature = parts
            .read_tag(TAG_BIT_STRING)
            .map_err(malformed("signatureValue"))?;
        parts.finish().map_err(malformed("CertificateList"))?;
        let Some((0, signature)) = signature.value.split_first() else {
            return Err(Error::CrlMalformed("signatureValue"));
        };
        check_pss_sha384(algorithm.whole).map_err(|Malformed| {
            Error::CrlMalformed("signature algorithm is not RSASSA-PSS SHA-384")
        })?;

        let mut t = Reader::new(tbs.value);
        if let Some(version) = t.read_optional(TAG_INTEGER).map_err(malformed("version"))? {
            if version.value != [0x01] {
                return Err(Error::CrlMalformed("version"));
            }
        }
        let inner_algorithm = t.read_tag(TAG_SEQUENCE).map_err(malformed("signature"))?;
        if inner_algorithm.whole != algorithm.whole {
            return Err(Error::CrlMalformed(
                "inner and outer signature algorithms differ",
            ));
        }
        let issuer = t.read_tag(TAG_SEQUENCE).map_err(malformed("issuer"))?;
        let this_update = read_time(&mut t, "thisUpdate")?;
        let next_update = match t.peek_tag() {
            Some(TAG_UTC_TIME | TAG_GENERALIZED_TIME) => Some(read_time(&mut t, "nextUpdate")?),
            _ => None,
        };
        let mut revoked = Vec::new();
        if let Some(entries) = t
            .read_optional(TAG_SEQUENCE)
            .map_err(malformed("revokedCertificates"))?
        {
            let mut entries = Reader::new(entries.value);
            while !entries.is_empty() {
                if revoked.len() >= MAX_CRL_ENTRIES {
                    return Err(Error::CrlMalformed("more entries than the budget"));
                }
                let entry = entries
                    .read_tag(TAG_SEQUENCE)
                    .map_err(malformed("revoked entry"))?;
                let mut e = Reader::new(entry.value);
                let serial = e
                    .read_tag(TAG_INTEGER)
                    .map_err(malformed("userCertificate"))?;
                let _date = read_time(&mut e, "revocationDate")?;
                if let Some(extensions) = e
                    .read_optional(TAG_SEQUENCE)
                    .map_err(malformed("crlEntryExtensions"))?
                {
                    check_extensions(extensions.whole)?;
                }
                e.finish().map_err(malformed("revoked entry"))?;
                revoked.push(serial.value.to_vec());
            }
        }
        if let Some(extensions) = t
            .read_optional(TAG_CRL_EXTENSIONS)
            .map_err(malformed("crlExtensions"))?
        {
            check_extensions(extensions.value)?;
        }
        t.finish().map_err(malformed("TBSCertList"))?;

        Ok(Self {
            tbs: tbs.whole.to_vec(),
            signature: signature.to_vec(),
            issuer: issuer.whole.to_vec(),
            this_update,
            next_update,
            revoked,
        })
    }

    /// The issuer Name DER, as received.
    pub fn issuer_der(&self) -> &[u8] {
        &self.issuer
    }

    /// thisUpdate.
    pub const fn this_update(&self) -> UnixTime {
        self.this_update
    }

    /// nextUpdate, when present.
    pub const fn next_update(&self) -> Option<UnixTime> {
        self.next_update
    }

    /// The serial numbers listed (INTEGER contents as encoded).
    pub fn revoked_serials(&self) -> impl Iterator<Item = &[u8]> {
        self.revoked.iter().map(Vec::as_slice)
    }

    /// Checks the CRL was issued and signed by `ark` and is current at `now`.
    pub(crate) fn verify(&self, ark: &Certificate, now: UnixTime) -> Result<(), Error> {
        if self.issuer != ark.subject().der() {
            return Err(Error::CrlIssuerMismatch);
        }
        let key = ark.public_key().map_err(|source| Error::Certificate {
            role: "ARK",
            source,
        })?;
        key.verify(
            SignatureScheme::RsaPss(HashAlg::Sha384),
            &self.tbs,
            &self.signature,
        )
        .map_err(|_| Error::CrlSignatureInvalid)?;
        if now.as_secs() < self.this_update.as_secs() {
            return Err(Error::CrlNotYetValid {
                this_update: self.this_update,
                now,
            });
        }
        if let Some(next_update) = self.next_update {
            if now.as_secs() > next_update.as_secs() {
                return Err(Error::CrlExpired { next_update, now });
            }
        }
        Ok(())
    }

    /// Fails if `certificate` was issued by this CRL's issuer and is listed.
    pub(crate) fn check_not_revoked(&self, certificate: &Certificate) -> Result<(), Error> {
        if certificate.issuer().der() == self.issuer.as_slice()
            && self
                .revoked
                .iter()
                .any(|serial| serial.as_slice() == certificate.serial())
        {
            return Err(Error::Revoked {
                subject: certificate.subject().to_string(),
                serial: hex::encode(certificate.serial()),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(u8::try_from(len).unwrap());
        } else if len < 0x100 {
            out.extend([0x81, u8::try_from(len).unwrap()]);
        } else {
            out.extend([
                0x82,
                u8::try_from(len >> 8).unwrap(),
                u8::try_from(len & 0xff).unwrap(),
            ]);
        }
        out.extend_from_slice(content);
        out
    }

    /// RSASSA-PSS SHA-384 AlgorithmIdentifier as AMD encodes it (with trailerField).
    pub(crate) fn pss_sha384() -> Vec<u8> {
        let sha384 = tlv(0x30, &[tlv(0x06, OID_SHA384), vec![0x05, 0x00]].concat());
        let mgf = tlv(0x30, &[tlv(0x06, OID_MGF1), sha384.clone()].concat());
        let params = tlv(
            0x30,
            &[
                tlv(0xa0, &sha384),
                tlv(0xa1, &mgf),
                tlv(0xa2, &[0x02, 0x01, 0x30]),
                tlv(0xa3, &[0x02, 0x01, 0x01]),
            ]
            .concat(),
        );
        tlv(0x30, &[tlv(0x06, OID_RSASSA_PSS), params].concat())
    }

    /// A CRL issued under `issuer` (Name DER) revoking `serials`, with a bogus signature.
    pub(crate) fn unsigned_crl(issuer: &[u8], serials: &[&[u8]]) -> Vec<u8> {
        let entries: Vec<u8> = serials
            .iter()
            .flat_map(|s| tlv(0x30, &[tlv(0x02, s), tlv(0x17, b"230101000000Z")].concat()))
            .collect();
        let tbs = tlv(
            0x30,
            &[
                vec![0x02, 0x01, 0x01],
                pss_sha384(),
                issuer.to_vec(),
                tlv(0x17, b"230101000000Z"),
                tlv(0x17, b"300101000000Z"),
                tlv(0x30, &entries),
            ]
            .concat(),
        );
        tlv(
            0x30,
            &[tbs, pss_sha384(), tlv(0x03, &[0, 1, 2, 3])].concat(),
        )
    }

    #[test]
    fn the_pss_parameters_of_real_amd_certificates_are_accepted() {
        let pem = include_str!("../roots/milan_ask_ark_asvk.pem");
        for cert in plinth_x509::certificates_from_pem(pem.as_bytes()).unwrap() {
            assert_eq!(check_pss_sha384(cert.signature_algorithm_der()), Ok(()));
        }
        // Turin VCEKs omit the trailerField.
        let turin = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/sev-snp/oak/turin_oc_vcek.der"
        ))
        .unwrap();
        let cert = Certificate::from_der(&turin).unwrap();
        assert_eq!(check_pss_sha384(cert.signature_algorithm_der()), Ok(()));
    }

    #[test]
    fn parses_entries_and_times() {
        let issuer = tlv(0x30, b"");
        let crl = Crl::from_der(&unsigned_crl(&issuer, &[&[0x01, 0x00, 0x01], &[0x05]])).unwrap();
        assert_eq!(
            crl.revoked_serials().collect::<Vec<_>>(),
            [&[1, 0, 1][..], &[5]]
        );
        assert_eq!(crl.this_update(), UnixTime::from_secs(1_672_531_200));
        assert_eq!(crl.next_update(), Some(UnixTime::from_secs(1_893_456_000)));
    }

    #[test]
    fn rejects_trailing_data_with_crl_malformed() {
        let mut der = unsigned_crl(&tlv(0x30, b""), &[]);
        der.push(0);
        assert_eq!(
            Crl::from_der(&der).err(),
            Some(Error::CrlMalformed("trailing data"))
        );
    }
}
