//! Path building and validation: leaf → intermediates → trust anchor.

use plinth_core::UnixTime;

use crate::oid::{Oid, oids};
use crate::{Certificate, Error, TrustAnchors};

/// Extensions this crate processes itself, so they may be critical without being
/// allow-listed.
const UNDERSTOOD: [Oid; 4] = [
    oids::BASIC_CONSTRAINTS,
    oids::KEY_USAGE,
    oids::SUBJECT_KEY_IDENTIFIER,
    oids::AUTHORITY_KEY_IDENTIFIER,
];

/// Budgets and profile choices for [`verify_chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainOptions {
    max_depth: usize,
    max_signature_checks: usize,
    allowed_critical_extensions: Vec<Oid>,
    extended_key_usages: Vec<Oid>,
}

impl Default for ChainOptions {
    fn default() -> Self {
        Self {
            max_depth: Self::DEFAULT_MAX_DEPTH,
            max_signature_checks: Self::DEFAULT_MAX_SIGNATURE_CHECKS,
            allowed_critical_extensions: Vec::new(),
            extended_key_usages: Vec::new(),
        }
    }
}

impl ChainOptions {
    /// Default longest path, in certificates, leaf and anchor included.
    pub const DEFAULT_MAX_DEPTH: usize = 8;
    /// Default most signature checks one path search may make.
    pub const DEFAULT_MAX_SIGNATURE_CHECKS: usize = 32;

    /// The defaults: depth 8, 32 signature checks, no critical extension beyond
    /// `basicConstraints`, `keyUsage` and the key identifiers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Accepts `oid` as a critical extension in any certificate of the path. Use this only
    /// for extensions whose meaning the caller's profile handles (for example the TCG
    /// `subjectAltName` of TPM EK certificates).
    #[must_use]
    pub fn allow_critical_extension(mut self, oid: Oid) -> Self {
        if !self.allowed_critical_extensions.contains(&oid) {
            self.allowed_critical_extensions.push(oid);
        }
        self
    }

    /// Requires `purpose` in `extendedKeyUsage`: every certificate of the path that has an
    /// `extendedKeyUsage` extension must list one of the required purposes (or
    /// `anyExtendedKeyUsage`); certificates without the extension are not restricted. Once a
    /// purpose is required, `extendedKeyUsage` counts as processed and may be critical.
    /// Several calls accept any of the purposes given.
    #[must_use]
    pub fn require_extended_key_usage(mut self, purpose: Oid) -> Self {
        if !self.extended_key_usages.contains(&purpose) {
            self.extended_key_usages.push(purpose);
        }
        self
    }

    /// Sets the longest path, in certificates, leaf and anchor included.
    #[must_use]
    pub const fn with_max_depth(mut self, max_depth: usize) -> Self {
        self.max_depth = max_depth;
        self
    }

    /// Sets the most signature checks one path search may make.
    #[must_use]
    pub const fn with_max_signature_checks(mut self, max: usize) -> Self {
        self.max_signature_checks = max;
        self
    }

    /// The critical extensions allowed beyond the ones this crate processes.
    pub fn allowed_critical_extensions(&self) -> &[Oid] {
        &self.allowed_critical_extensions
    }

    fn check_extensions(&self, certificate: &Certificate) -> Result<(), Error> {
        let eku_processed = !self.extended_key_usages.is_empty();
        if let (true, Some(purposes)) = (eku_processed, certificate.extended_key_usage()) {
            let allowed = purposes.iter().any(|p| {
                *p == oids::ANY_EXTENDED_KEY_USAGE || self.extended_key_usages.contains(p)
            });
            if !allowed {
                return Err(Error::ExtendedKeyUsageNotAllowed {
                    subject: certificate.subject().to_string(),
                });
            }
        }
        let unknown = certificate.extensions().iter().find(|ext| {
            ext.critical()
                && !UNDERSTOOD.contains(ext.oid())
                && (!eku_processed || *ext.oid() != oids::EXTENDED_KEY_USAGE)
                && !self.allowed_critical_extensions.contains(ext.oid())
        });
        match unknown {
            Some(ext) => Err(Error::UnknownCriticalExtension {
                oid: ext.oid().to_string(),
                subject: certificate.subject().to_string(),
            }),
            None => Ok(()),
        }
    }
}

/// A certificate path that validated: proof that the leaf chains to one of the caller's
/// trust anchors at the given time. Only [`verify_chain`] makes one.
#[derive(Debug, Clone)]
pub struct VerifiedChain {
    leaf: Certificate,
    intermediates: Vec<Certificate>,
    anchor: Certificate,
    verified_at: UnixTime,
}

impl VerifiedChain {
    /// The end-entity certificate.
    pub const fn leaf(&self) -> &Certificate {
        &self.leaf
    }

    /// The intermediates used, from the leaf's issuer upwards.
    pub fn intermediates(&self) -> &[Certificate] {
        &self.intermediates
    }

    /// The trust anchor the path ends at.
    pub const fn anchor(&self) -> &Certificate {
        &self.anchor
    }

    /// The whole path, leaf first, anchor last.
    pub fn certificates(&self) -> impl Iterator<Item = &Certificate> {
        std::iter::once(&self.leaf)
            .chain(self.intermediates.iter())
            .chain(std::iter::once(&self.anchor))
    }

    /// The time the path was validated at.
    pub const fn verified_at(&self) -> UnixTime {
        self.verified_at
    }
}

/// Builds and validates a path from `leaf` through some of `intermediates` to one of
/// `anchors`, valid at `now`.
///
/// Every certificate on the path must be within its validity period and carry no critical
/// extension outside [`ChainOptions::allow_critical_extension`] and the ones processed
/// here. Every issuer (anchor included) must be a CA (`basicConstraints` cA), have
/// `keyCertSign` when it has `keyUsage`, and respect its `pathLenConstraint`. Each signature is
/// checked with the issuer's key over the `TBSCertificate` exactly as received. Issuers are
/// found by subject name equal to the child's issuer name (byte for byte) and, when both
/// are present, `subjectKeyIdentifier` equal to the child's `authorityKeyIdentifier`.
/// Alternatives are tried in order, within the depth and signature-check budgets.
///
/// # Errors
/// The most specific failure met: [`Error::UnknownIssuer`] when no candidate issuer
/// exists at all; otherwise for example [`Error::Expired`], [`Error::SignatureInvalid`],
/// [`Error::IssuerNotCa`], [`Error::PathTooLong`], [`Error::SignatureBudgetExceeded`].
pub fn verify_chain(
    leaf: &Certificate,
    intermediates: &[Certificate],
    anchors: &TrustAnchors,
    now: UnixTime,
    options: &ChainOptions,
) -> Result<VerifiedChain, Error> {
    leaf.validity().check(now)?;
    options.check_extensions(leaf)?;
    let mut builder = Builder {
        intermediates,
        anchors,
        now,
        options,
        signature_checks: 0,
    };
    let mut path = Vec::new();
    let anchor = builder.extend(leaf, &mut path, 0)?;
    Ok(VerifiedChain {
        leaf: leaf.clone(),
        intermediates: path.into_iter().cloned().collect(),
        anchor: anchor.clone(),
        verified_at: now,
    })
}

struct Builder<'a> {
    intermediates: &'a [Certificate],
    anchors: &'a TrustAnchors,
    now: UnixTime,
    options: &'a ChainOptions,
    signature_checks: usize,
}

impl<'a> Builder<'a> {
    /// Finds an issuer for `child` (whose own checks passed), and above it a path to an
    /// anchor. `path` holds the intermediates chosen so far (leaf excluded); `below` counts
    /// the non-self-issued ones, for `pathLenConstraint`.
    fn extend(
        &mut self,
        child: &Certificate,
        path: &mut Vec<&'a Certificate>,
        below: usize,
    ) -> Result<&'a Certificate, Error> {
        let mut best: Option<Error> = None;
        for anchor in self.anchors.iter().filter(|a| issued_by(child, a)) {
            match self.check_issuer(anchor, child, below) {
                Ok(()) => return Ok(anchor),
                Err(e @ Error::SignatureBudgetExceeded { .. }) => return Err(e),
                Err(e) => keep_most_specific(&mut best, e),
            }
        }
        let anchors = self.anchors;
        let candidates = self
            .intermediates
            .iter()
            .filter(|c| issued_by(child, c) && !anchors.contains(c));
        for candidate in candidates {
            if path.contains(&candidate) {
                continue;
            }
            // The leaf, the intermediates so far, this one, and an anchor above it.
            if path.len() + 3 > self.options.max_depth {
                keep_most_specific(
                    &mut best,
                    Error::PathTooLong {
                        max: self.options.max_depth,
                    },
                );
                continue;
            }
            let attempt = self.check_issuer(candidate, child, below).and_then(|()| {
                path.push(candidate);
                let next_below = if candidate.is_self_issued() {
                    below
                } else {
                    below + 1
                };
                let found = self.extend(candidate, path, next_below);
                if found.is_err() {
                    let _popped = path.pop();
                }
                found
            });
            match attempt {
                Ok(anchor) => return Ok(anchor),
                Err(e @ Error::SignatureBudgetExceeded { .. }) => return Err(e),
                Err(e) => keep_most_specific(&mut best, e),
            }
        }
        Err(best.unwrap_or_else(|| Error::UnknownIssuer {
            issuer: child.issuer().to_string(),
        }))
    }

    /// Checks that `issuer` may issue `child` and did sign it.
    fn check_issuer(
        &mut self,
        issuer: &Certificate,
        child: &Certificate,
        below: usize,
    ) -> Result<(), Error> {
        let subject = || issuer.subject().to_string();
        issuer.validity().check(self.now)?;
        self.options.check_extensions(issuer)?;
        match issuer.basic_constraints() {
            Some(bc) if bc.ca() => {
                if let Some(path_len) = bc.path_len()
                    && usize::try_from(path_len).is_ok_and(|allowed| below > allowed)
                {
                    return Err(Error::PathLenExceeded {
                        subject: subject(),
                        path_len,
                        below,
                    });
                }
            }
            _ => return Err(Error::IssuerNotCa { subject: subject() }),
        }
        if issuer.key_usage().is_some_and(|ku| !ku.key_cert_sign()) {
            return Err(Error::IssuerLacksKeyCertSign { subject: subject() });
        }
        if self.signature_checks >= self.options.max_signature_checks {
            return Err(Error::SignatureBudgetExceeded {
                max: self.options.max_signature_checks,
            });
        }
        self.signature_checks += 1;
        child.verify_signed_by(&issuer.public_key()?)
    }
}

/// Whether `candidate`'s subject is `child`'s issuer (and key identifiers do not differ).
fn issued_by(child: &Certificate, candidate: &Certificate) -> bool {
    if child.issuer().der() != candidate.subject().der() {
        return false;
    }
    match (child.authority_key_id(), candidate.subject_key_id()) {
        (Some(aki), Some(ski)) => aki == ski,
        _ => true,
    }
}

/// Keeps the first error that says more than "no issuer found".
fn keep_most_specific(best: &mut Option<Error>, error: Error) {
    if best.is_none() || matches!(best, Some(Error::UnknownIssuer { .. })) {
        *best = Some(error);
    }
}
