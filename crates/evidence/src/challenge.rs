//! Step 1 → 2 (the challenge) and the entry of step 3 → 4 (the evidence).

use std::collections::BTreeMap;
use std::time::Duration;

use plinth_api::attestation::{
    ChallengeResponse, Evidence, Hello, PcrBank, TpmCredential, evidence, hello,
};
use plinth_core::{HashAlg, Nonce, Platform, SecureRandom, UnixTime};
use plinth_policy::{Policy, PolicyPlatform};
use prost::Message;

use crate::{Appraised, Error, Trust, appraised, nitro, snp, tpm};

/// The length of the nonces the verifier issues.
pub const NONCE_LEN: usize = Nonce::LEN;
/// The largest encoded hello or evidence message accepted (event logs of real machines
/// are tens of kilobytes; a Nitro document or an SNP report with its certificates a few).
pub const MAX_EVIDENCE_LEN: usize = 1 << 20;

/// What the caller keeps between the challenge and the evidence. It holds no secret: the
/// TPM activation secret is represented by a commitment that only the TPM's answer opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChallenge {
    /// The nonce the evidence must carry.
    pub nonce: Vec<u8>,
    /// The platform of the hello.
    pub platform: Platform,
    /// The hello as received (prost-encoded): the TPM's EK and AK.
    pub hello: Vec<u8>,
    /// TPM: the commitment to the activation secret and the AK.
    pub activation_commitment: Option<[u8; 32]>,
    /// When the challenge stops being answerable.
    pub expires_at: UnixTime,
}

#[cfg(feature = "test-vectors")]
impl PendingChallenge {
    /// A Nitro or SEV-SNP challenge whose nonce a recorded vector fixed (tests only: a
    /// real deployment answers only nonces it issued).
    pub fn for_test_vector(nonce: Vec<u8>, platform: Platform, expires_at: UnixTime) -> Self {
        Self {
            nonce,
            platform,
            hello: Vec::new(),
            activation_commitment: None,
            expires_at,
        }
    }
}

/// Issues challenges and verifies the evidence that answers them.
#[derive(Debug)]
pub struct Verifier {
    trust: Trust,
    policies: Vec<Policy>,
    tpm_selection: BTreeMap<HashAlg, Vec<u8>>,
}

impl Verifier {
    /// A verifier with these trust anchors and policies.
    pub fn new(trust: Trust, policies: Vec<Policy>) -> Self {
        let mut tpm_selection: BTreeMap<HashAlg, Vec<u8>> = BTreeMap::new();
        for policy in &policies {
            for (bank, pcrs) in policy.tpm_pcr_selection() {
                tpm_selection.entry(bank).or_default().extend(pcrs);
            }
        }
        for pcrs in tpm_selection.values_mut() {
            pcrs.sort_unstable();
            pcrs.dedup();
        }
        Self {
            trust,
            policies,
            tpm_selection,
        }
    }

    /// The policies loaded.
    pub fn policies(&self) -> &[Policy] {
        &self.policies
    }

    /// The trust anchors.
    pub const fn trust(&self) -> &Trust {
        &self.trust
    }

    /// Answers a hello with a fresh nonce, valid for `ttl` from `now`. A TPM also gets a
    /// credential to activate (MakeCredential to its EK, bound to its AK's name) and the
    /// PCRs its quote must cover.
    ///
    /// # Errors
    /// [`Error::UnknownPlatform`], [`Error::NoPolicy`], [`Error::Malformed`] or
    /// [`Error::Tpm`] for an EK or AK that cannot be used, [`Error::Random`].
    pub fn challenge(
        &self,
        hello: &Hello,
        rng: &dyn SecureRandom,
        now: UnixTime,
        ttl: Duration,
    ) -> Result<(ChallengeResponse, PendingChallenge), Error> {
        let platform = hello_platform(hello)?;
        let _policies = self.policies_for(platform)?;
        let nonce = Nonce::random(rng).map_err(|_| Error::Random)?;
        let expires_at = UnixTime::from_millis(
            now.as_millis()
                .saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)),
        );
        let mut response = ChallengeResponse {
            nonce: nonce.as_bytes().to_vec(),
            expires_at_ms: i64::try_from(expires_at.as_millis()).unwrap_or(i64::MAX),
            credential: None,
            pcr_selection: Vec::new(),
        };
        let mut activation_commitment = None;
        if let Some(hello::Platform::Tpm(tpm_hello)) = &hello.platform {
            let (credential, commitment) = tpm::make_credential(tpm_hello, rng)?;
            response.credential = Some(TpmCredential {
                id_object: credential.id_object,
                encrypted_secret: credential.encrypted_secret,
            });
            response.pcr_selection = self
                .tpm_selection
                .iter()
                .map(|(bank, pcrs)| PcrBank {
                    bank: bank.name().to_owned(),
                    pcrs: pcrs.iter().copied().map(u32::from).collect(),
                })
                .collect();
            activation_commitment = Some(commitment.to_bytes());
        }
        let pending = PendingChallenge {
            nonce: nonce.as_bytes().to_vec(),
            platform,
            hello: hello.encode_to_vec(),
            activation_commitment,
            expires_at,
        };
        Ok((response, pending))
    }

    /// Verifies `evidence` as the answer to `pending` at `now`, then appraises it against
    /// every policy of its platform (the first affirming policy wins, then the first
    /// warning one; when none passes, the one with the fewest failing rules is reported).
    ///
    /// # Errors
    /// [`Error::NonceMismatch`], [`Error::ChallengeExpired`], [`Error::PlatformMismatch`],
    /// [`Error::UnknownPlatform`], [`Error::NoPolicy`], a malformed or oversized field, or
    /// the platform verifier's error. A policy refusal is not an error here: it is an
    /// [`Appraised`] whose [`Appraised::passed`] fails, so it can be recorded in full.
    pub fn verify(
        &self,
        pending: &PendingChallenge,
        evidence: &Evidence,
        now: UnixTime,
    ) -> Result<Appraised, Error> {
        budget("evidence", evidence.encoded_len(), MAX_EVIDENCE_LEN)?;
        plinth_crypto::verify_slices_equal(&pending.nonce, &evidence.nonce)
            .map_err(|_| Error::NonceMismatch)?;
        if now >= pending.expires_at {
            return Err(Error::ChallengeExpired {
                expires_at: pending.expires_at,
                now,
            });
        }
        let found = evidence_platform(evidence)?;
        if found != pending.platform {
            return Err(Error::PlatformMismatch {
                expected: pending.platform,
                found,
            });
        }
        let policies = self.policies_for(found)?;
        match &evidence.platform {
            Some(evidence::Platform::Tpm(tpm_evidence)) => {
                let hello = Hello::decode(pending.hello.as_slice())
                    .map_err(Error::malformed("stored hello"))?;
                let Some(hello::Platform::Tpm(tpm_hello)) = hello.platform else {
                    return Err(Error::UnknownPlatform);
                };
                let commitment = pending.activation_commitment.ok_or(Error::Malformed {
                    field: "stored challenge",
                    reason: "a TPM challenge without an activation commitment".into(),
                })?;
                let verified = tpm::verify(
                    &self.trust,
                    &tpm_hello,
                    commitment,
                    tpm_evidence,
                    &pending.nonce,
                    now,
                )?;
                appraised::best(&policies, &verified.evidence(), verified.facts(), now)
            }
            Some(evidence::Platform::Nitro(nitro_evidence)) => {
                let verified = nitro::verify(&self.trust, nitro_evidence, &pending.nonce, now)?;
                appraised::best(&policies, &verified.evidence(), verified.facts(), now)
            }
            Some(evidence::Platform::Snp(snp_evidence)) => {
                let verified = snp::verify(&self.trust, snp_evidence, &pending.nonce, now)?;
                appraised::best(&policies, &verified.evidence(), verified.facts(), now)
            }
            None => Err(Error::UnknownPlatform),
        }
    }

    fn policies_for(&self, platform: Platform) -> Result<Vec<&Policy>, Error> {
        let wanted = match platform {
            Platform::Tpm => PolicyPlatform::Tpm,
            Platform::Nitro => PolicyPlatform::Nitro,
            Platform::SevSnp => PolicyPlatform::Snp,
            _ => return Err(Error::UnknownPlatform),
        };
        let found: Vec<&Policy> = self
            .policies
            .iter()
            .filter(|p| p.platform() == wanted)
            .collect();
        if found.is_empty() {
            return Err(Error::NoPolicy { platform });
        }
        Ok(found)
    }
}

/// The platform a hello names.
///
/// # Errors
/// [`Error::UnknownPlatform`] when it names none.
pub(crate) fn hello_platform(hello: &Hello) -> Result<Platform, Error> {
    match hello.platform {
        Some(hello::Platform::Tpm(_)) => Ok(Platform::Tpm),
        Some(hello::Platform::Nitro(_)) => Ok(Platform::Nitro),
        Some(hello::Platform::Snp(_)) => Ok(Platform::SevSnp),
        None => Err(Error::UnknownPlatform),
    }
}

fn evidence_platform(evidence: &Evidence) -> Result<Platform, Error> {
    match evidence.platform {
        Some(evidence::Platform::Tpm(_)) => Ok(Platform::Tpm),
        Some(evidence::Platform::Nitro(_)) => Ok(Platform::Nitro),
        Some(evidence::Platform::Snp(_)) => Ok(Platform::SevSnp),
        None => Err(Error::UnknownPlatform),
    }
}

/// Checks a length against its budget.
pub(crate) const fn budget(field: &'static str, len: usize, max: usize) -> Result<(), Error> {
    if len > max {
        return Err(Error::TooLarge { field, len, max });
    }
    Ok(())
}
