//! SEV-SNP evidence: the report, its VCEK/VLEK, and REPORT_DATA's key binding.

use plinth_api::attestation::SnpEvidence;
use plinth_core::{Nonce, Platform, UnixTime};
use plinth_policy::Evidence;
use plinth_snp::{CertTable, Collateral, VerifiedReport};

use crate::appraised::Facts;
use crate::challenge::budget;
use crate::{Error, Trust};

const MAX_REPORT_LEN: usize = 4096;
const MAX_CERTIFICATE_LEN: usize = 8 * 1024;
const MAX_CERTIFICATE_TABLE_LEN: usize = 64 * 1024;
const MAX_SPKI_LEN: usize = 1024;

/// A verified report.
pub(crate) struct Verified(VerifiedReport, Option<plinth_core::BoundKey>);

impl Verified {
    pub(crate) const fn evidence(&self) -> Evidence<'_> {
        Evidence::Snp(&self.0)
    }

    pub(crate) fn facts(&self) -> Facts {
        let report = &self.0;
        let mut selectors = vec![
            format!("snp:measurement:{}", hex::encode(report.measurement())),
            format!("snp:reported_tcb:{:016x}", report.reported_tcb().raw()),
        ];
        if let Some(chip) = report.chip_id() {
            selectors.push(format!("snp:chip_id:{}", hex::encode(chip)));
        }
        Facts {
            platform: Platform::SevSnp,
            hardware_id: report.chip_id().map(hex::encode),
            bound_key: self.1.clone(),
            selectors,
        }
    }
}

/// Verifies a report answering `nonce`: REPORT_DATA must be SHA-512(nonce ‖ key_spki)
/// (with an empty `key_spki` when the caller binds no key, as under SPIRE).
pub(crate) fn verify(
    trust: &Trust,
    evidence: &SnpEvidence,
    nonce: &[u8],
    now: UnixTime,
) -> Result<Verified, Error> {
    budget("report", evidence.report.len(), MAX_REPORT_LEN)?;
    budget("key_spki", evidence.key_spki.len(), MAX_SPKI_LEN)?;
    budget(
        "vek_certificate",
        evidence.vek_certificate.len(),
        MAX_CERTIFICATE_LEN,
    )?;
    budget(
        "certificate_table",
        evidence.certificate_table.len(),
        MAX_CERTIFICATE_TABLE_LEN,
    )?;
    let mut collateral = if evidence.certificate_table.is_empty() {
        Collateral::new()
    } else {
        Collateral::from_cert_table(&CertTable::parse(&evidence.certificate_table)?)?
    };
    if !evidence.vek_certificate.is_empty() {
        collateral.add_endorsement(&evidence.vek_certificate)?;
    }
    let collateral = collateral.with_builtin_intermediates()?;
    let report = plinth_snp::verify(&evidence.report, &collateral, &trust.amd, None, now)?;
    let nonce = Nonce::from_slice(nonce).map_err(|_| Error::NonceMismatch)?;
    let key = report.verify_key_binding(&nonce, &evidence.key_spki)?;
    let key = (!evidence.key_spki.is_empty()).then_some(key);
    Ok(Verified(report, key))
}
