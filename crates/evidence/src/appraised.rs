//! The appraisal of verified evidence, and the one value an SVID may be minted from.

use plinth_core::{BoundKey, Platform, UnixTime};
use plinth_policy::{Appraisal, AppraisedIdentity, Evidence, Policy, Verdict};

use crate::Error;

/// What the platform verifier established besides the policy-visible evidence.
#[derive(Debug, Clone)]
pub(crate) struct Facts {
    pub(crate) platform: Platform,
    pub(crate) hardware_id: Option<String>,
    pub(crate) bound_key: Option<BoundKey>,
    pub(crate) selectors: Vec<String>,
}

/// Verified evidence and its appraisal, passing or not. Made only by
/// [`crate::Verifier::verify`].
#[derive(Debug, Clone)]
pub struct Appraised {
    appraisal: Appraisal,
    facts: Facts,
}

/// An attestation that passed its policy and binds a key: what the CA mints from. Made
/// only by [`Appraised::passed`].
#[derive(Debug, Clone)]
pub struct PassedAttestation {
    appraised: Appraised,
    key: BoundKey,
}

impl Appraised {
    /// The appraisal: verdict, trust vector, every rule.
    pub const fn appraisal(&self) -> &Appraisal {
        &self.appraisal
    }

    /// The platform.
    pub const fn platform(&self) -> Platform {
        self.facts.platform
    }

    /// The hardware's stable identifier: the SHA-256 of the EK's public key, the Nitro
    /// module ID, the SNP chip ID.
    pub fn hardware_id(&self) -> Option<&str> {
        self.facts.hardware_id.as_deref()
    }

    /// The key the evidence binds, if it binds one.
    pub const fn bound_key(&self) -> Option<&BoundKey> {
        self.facts.bound_key.as_ref()
    }

    /// The selectors: the policy's own (when it passed), then `plinth:platform:<p>`,
    /// `plinth:policy:<name>`, `plinth:policy_hash:<hex>` and the platform's
    /// (`tpm:ek_hash:`, `tpm:secure_boot:`, `nitro:pcrN:`, `snp:measurement:`,
    /// `snp:chip_id:`, `snp:reported_tcb:`).
    pub fn selectors(&self) -> Vec<String> {
        let mut selectors: Vec<String> = self
            .appraisal
            .identity()
            .map(|identity| identity.selectors().to_vec())
            .unwrap_or_default();
        selectors.push(format!("plinth:platform:{}", self.facts.platform));
        selectors.push(format!("plinth:policy:{}", self.appraisal.policy_name()));
        selectors.push(format!(
            "plinth:policy_hash:{}",
            self.appraisal.policy_hash().to_hex()
        ));
        selectors.extend(self.facts.selectors.iter().cloned());
        selectors
    }

    /// The identity the policy grants, if the appraisal passed.
    ///
    /// # Errors
    /// [`Error::Refused`] naming every failing rule.
    pub fn identity(&self) -> Result<&AppraisedIdentity, Error> {
        self.appraisal.identity().ok_or_else(|| Error::Refused {
            policy: self.appraisal.policy_name().to_owned(),
            failures: self
                .appraisal
                .failures()
                .map(|r| {
                    format!(
                        "{}: observed {}, expected {}",
                        r.rule(),
                        r.observed(),
                        r.expected()
                    )
                })
                .collect(),
        })
    }

    /// The attestation, if it passed its policy and binds a key.
    ///
    /// # Errors
    /// [`Error::Refused`], or [`Error::NoBoundKey`] when it passed but binds no key.
    pub fn passed(self) -> Result<PassedAttestation, Error> {
        let _identity = self.identity()?;
        let key = self.facts.bound_key.clone().ok_or(Error::NoBoundKey)?;
        Ok(PassedAttestation {
            appraised: self,
            key,
        })
    }
}

impl PassedAttestation {
    /// The appraisal and facts.
    pub const fn appraised(&self) -> &Appraised {
        &self.appraised
    }

    /// The identity the policy grants.
    pub fn identity(&self) -> Option<&AppraisedIdentity> {
        self.appraised.appraisal.identity()
    }

    /// The key to mint the SVID for.
    pub const fn key(&self) -> &BoundKey {
        &self.key
    }
}

/// Appraises against each policy and keeps the best: the first affirming, else the first
/// warning, else the refusal with the fewest failing rules.
pub(crate) fn best(
    policies: &[&Policy],
    evidence: &Evidence<'_>,
    facts: Facts,
    now: UnixTime,
) -> Result<Appraised, Error> {
    let mut best: Option<Appraisal> = None;
    for policy in policies {
        let appraisal = plinth_policy::appraise(policy, evidence, now);
        let affirming = appraisal.verdict() == Verdict::Affirming;
        if best
            .as_ref()
            .is_none_or(|current| rank(&appraisal) < rank(current))
        {
            best = Some(appraisal);
        }
        if affirming {
            break;
        }
    }
    let appraisal = best.ok_or(Error::NoPolicy {
        platform: facts.platform,
    })?;
    Ok(Appraised { appraisal, facts })
}

/// Orders appraisals: passing before refused, affirming before warning, fewer failures first.
fn rank(appraisal: &Appraisal) -> (u8, usize) {
    let tier = match appraisal.verdict() {
        Verdict::Affirming => 0,
        Verdict::Warning => 1,
        _ => 2,
    };
    (tier, appraisal.failures().count())
}
