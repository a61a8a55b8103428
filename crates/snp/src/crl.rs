//! AMD certificate revocation lists (KDS `/vcek/v1/{product}/crl`, `/vlek/v1/{product}/crl`):
//! X.509 v2 CRLs signed by the product's ARK with RSASSA-PSS/SHA-384, listing revoked
//! ASK/ASVK certificates.
//!
//! The CertificateList is parsed by [`plinth_x509::Crl`] (signature checked over the
//! TBSCertList bytes as received, trailing data rejected, a critical extension makes the
//! CRL unusable, sizes budgeted). This module adds AMD's rules: the signature algorithm
//! must be RSASSA-PSS with SHA-384, the signer must be the pinned ARK, and the CRL must be
//! current at `now`.

use plinth_core::{HashAlg, UnixTime};
use plinth_crypto::SignatureScheme;
use plinth_x509::Certificate;

use crate::Error;

/// The largest CRL accepted, in bytes (AMD's are about 1 KiB).
pub const MAX_CRL_LEN: usize = plinth_x509::MAX_CRL_LEN;
/// The most revoked entries one CRL may list.
pub const MAX_CRL_ENTRIES: usize = plinth_x509::MAX_CRL_ENTRIES;

/// The only algorithm AMD signs CRLs with: RSASSA-PSS, SHA-384, MGF1-SHA-384, a 48-byte
/// salt and the default trailer.
const AMD_CRL_SCHEME: SignatureScheme = SignatureScheme::RsaPss(HashAlg::Sha384);

/// A parsed, NOT yet verified AMD certificate revocation list.
#[derive(Debug, Clone)]
pub struct Crl {
    crl: plinth_x509::Crl,
}

impl Crl {
    /// Parses a DER CertificateList signed with RSASSA-PSS SHA-384.
    ///
    /// # Errors
    /// [`Error::CrlInvalid`] with the parser's reason (malformed, trailing data, over a
    /// budget, unknown critical extension); [`Error::CrlMalformed`] when the signature
    /// algorithm is not RSASSA-PSS SHA-384.
    pub fn from_der(der: &[u8]) -> Result<Self, Error> {
        let crl = plinth_x509::Crl::from_der(der).map_err(Error::CrlInvalid)?;
        if crl.signature_scheme() != Ok(AMD_CRL_SCHEME) {
            return Err(Error::CrlMalformed(
                "signature algorithm is not RSASSA-PSS SHA-384",
            ));
        }
        Ok(Self { crl })
    }

    /// The issuer Name DER, as received.
    pub fn issuer_der(&self) -> &[u8] {
        self.crl.issuer().der()
    }

    /// thisUpdate.
    pub const fn this_update(&self) -> UnixTime {
        self.crl.this_update()
    }

    /// nextUpdate, when present.
    pub const fn next_update(&self) -> Option<UnixTime> {
        self.crl.next_update()
    }

    /// The serial numbers listed (INTEGER contents as encoded).
    pub fn revoked_serials(&self) -> impl Iterator<Item = &[u8]> {
        self.crl.revoked_serials()
    }

    /// Checks the CRL was issued and signed by `ark` and is current at `now`.
    pub(crate) fn verify(&self, ark: &Certificate, now: UnixTime) -> Result<(), Error> {
        if self.issuer_der() != ark.subject().der() {
            return Err(Error::CrlIssuerMismatch);
        }
        let key = ark.public_key().map_err(|source| Error::Certificate {
            role: "ARK",
            source,
        })?;
        self.crl
            .verify_signed_by(&key)
            .map_err(|_| Error::CrlSignatureInvalid)?;
        let this_update = self.this_update();
        if now.as_secs() < this_update.as_secs() {
            return Err(Error::CrlNotYetValid { this_update, now });
        }
        if let Some(next_update) = self.next_update()
            && now.as_secs() > next_update.as_secs()
        {
            return Err(Error::CrlExpired { next_update, now });
        }
        Ok(())
    }

    /// Fails if `certificate` was issued by this CRL's issuer and is listed.
    pub(crate) fn check_not_revoked(&self, certificate: &Certificate) -> Result<(), Error> {
        if certificate.issuer().der() == self.issuer_der()
            && self
                .revoked_serials()
                .any(|serial| serial == certificate.serial())
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
        hex::decode(concat!(
            "304106092a864886f70d01010a3034a00f300d06096086480165030402020500",
            "a11c301a06092a864886f70d010108300d06096086480165030402020500a203020130"
        ))
        .unwrap()
    }

    /// A CRL issued under `issuer` (Name DER) revoking `serials`, with a bogus signature.
    pub(crate) fn unsigned_crl(issuer: &[u8], serials: &[&[u8]]) -> Vec<u8> {
        crl_signed_with(&pss_sha384(), issuer, serials)
    }

    /// As [`unsigned_crl`], naming `algorithm` (AlgorithmIdentifier DER) inside and out.
    fn crl_signed_with(algorithm: &[u8], issuer: &[u8], serials: &[&[u8]]) -> Vec<u8> {
        let entries: Vec<u8> = serials
            .iter()
            .flat_map(|s| tlv(0x30, &[tlv(0x02, s), tlv(0x17, b"230101000000Z")].concat()))
            .collect();
        let tbs = tlv(
            0x30,
            &[
                vec![0x02, 0x01, 0x01],
                algorithm.to_vec(),
                issuer.to_vec(),
                tlv(0x17, b"230101000000Z"),
                tlv(0x17, b"300101000000Z"),
                tlv(0x30, &entries),
            ]
            .concat(),
        );
        tlv(
            0x30,
            &[tbs, algorithm.to_vec(), tlv(0x03, &[0, 1, 2, 3])].concat(),
        )
    }

    #[test]
    fn the_pss_parameters_of_real_amd_certificates_are_accepted() {
        let pem = include_str!("../roots/milan_ask_ark_asvk.pem");
        for cert in plinth_x509::certificates_from_pem(pem.as_bytes()).unwrap() {
            assert_eq!(cert.signature_scheme(), Ok(AMD_CRL_SCHEME));
        }
        // Turin VCEKs omit the trailerField.
        let turin = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/sev-snp/oak/turin_oc_vcek.der"
        ))
        .unwrap();
        let cert = Certificate::from_der(&turin).unwrap();
        assert_eq!(cert.signature_scheme(), Ok(AMD_CRL_SCHEME));
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
    fn rejects_trailing_data_with_crl_invalid() {
        let mut der = unsigned_crl(&tlv(0x30, b""), &[]);
        der.push(0);
        assert_eq!(
            Crl::from_der(&der).err(),
            Some(Error::CrlInvalid(plinth_x509::Error::CrlTrailingData {
                extra: 1
            }))
        );
    }

    #[test]
    fn rejects_a_crl_not_signed_with_pss_sha384_with_crl_malformed() {
        // ecdsa-with-SHA384, inside and outside.
        let ecdsa = tlv(
            0x30,
            &tlv(0x06, &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03]),
        );
        let der = crl_signed_with(&ecdsa, &tlv(0x30, b""), &[]);
        assert_eq!(
            Crl::from_der(&der).err(),
            Some(Error::CrlMalformed(
                "signature algorithm is not RSASSA-PSS SHA-384"
            ))
        );
    }
}
