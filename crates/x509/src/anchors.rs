use crate::{Certificate, Error};

/// The set of root certificates a path may end at.
///
/// A certificate is trusted because the caller put it here, never because a chain
/// presented it. Anchors are matched by subject name (and key identifier) and their keys
/// verify the certificate they issue; their own self-signatures are not what makes them
/// trusted.
#[derive(Debug, Clone, Default)]
pub struct TrustAnchors {
    anchors: Vec<Certificate>,
}

impl TrustAnchors {
    /// An empty set: nothing validates against it.
    pub const fn new() -> Self {
        Self {
            anchors: Vec::new(),
        }
    }

    /// A set of these certificates (duplicates are kept once).
    pub fn from_certificates(certificates: impl IntoIterator<Item = Certificate>) -> Self {
        let mut set = Self::new();
        for certificate in certificates {
            set.add(certificate);
        }
        set
    }

    /// Adds an anchor (a duplicate is ignored).
    pub fn add(&mut self, anchor: Certificate) {
        if !self.anchors.iter().any(|a| a.der() == anchor.der()) {
            self.anchors.push(anchor);
        }
    }

    /// Adds an anchor only if its SHA-256 fingerprint (of its DER) is `sha256`, for roots
    /// pinned by a published digest.
    ///
    /// # Errors
    /// [`Error::AnchorFingerprintMismatch`] when the digest differs.
    pub fn add_pinned(&mut self, anchor: Certificate, sha256: &[u8]) -> Result<(), Error> {
        plinth_crypto::verify_slices_equal(anchor.fingerprint().as_bytes(), sha256).map_err(
            |_| Error::AnchorFingerprintMismatch {
                subject: anchor.subject().to_string(),
            },
        )?;
        self.add(anchor);
        Ok(())
    }

    /// The anchors.
    pub fn iter(&self) -> impl Iterator<Item = &Certificate> {
        self.anchors.iter()
    }

    /// How many anchors there are.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    pub(crate) fn contains(&self, certificate: &Certificate) -> bool {
        self.anchors.iter().any(|a| a.der() == certificate.der())
    }
}
