//! The trust configuration: one pinned AMD Root Key (ARK) per product.
//!
//! The AMD certificates for Milan, Genoa and Turin ship inside this crate (`roots/`, as
//! published by AMD's Key Distribution Service, each file holding the ASK, the ARK and the
//! ASVK of one product). The ARKs are pinned by SHA-256 fingerprint below, so a changed file
//! fails the build's tests and [`AmdRoots::builtin`] at run time. The ASKs and ASVKs are
//! only intermediates: they are verified against the ARK like any certificate the evidence
//! brings.

use std::collections::BTreeMap;

use plinth_x509::{Certificate, TrustAnchors};

use crate::{Error, Product};

const MILAN_PEM: &str = include_str!("../roots/milan_ask_ark_asvk.pem");
const GENOA_PEM: &str = include_str!("../roots/genoa_ask_ark_asvk.pem");
const TURIN_PEM: &str = include_str!("../roots/turin_ask_ark_asvk.pem");

/// SHA-256 fingerprints (of the DER) of AMD's ARKs: ARK-Milan, ARK-Genoa, ARK-Turin.
const ARK_FINGERPRINTS: [(Product, &str); 3] = [
    (
        Product::Milan,
        "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd",
    ),
    (
        Product::Genoa,
        "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1",
    ),
    (
        Product::Turin,
        "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a",
    ),
];

/// Parses one of the shipped PEM files.
fn shipped(pem: &str) -> Result<Vec<Certificate>, Error> {
    plinth_x509::certificates_from_pem(pem.as_bytes()).map_err(|source| Error::Certificate {
        role: "shipped AMD",
        source,
    })
}

/// AMD's intermediates that ship with this crate: ASK and ASVK of every product. They are
/// not trusted; [`crate::verify_endorsement`] verifies them against the pinned ARK.
///
/// # Errors
/// Only if the shipped files were damaged.
pub fn builtin_intermediates() -> Result<Vec<Certificate>, Error> {
    let mut out = Vec::new();
    for pem in [MILAN_PEM, GENOA_PEM, TURIN_PEM] {
        out.extend(shipped(pem)?.into_iter().filter(|c| {
            c.subject()
                .common_name()
                .is_some_and(|cn| cn.starts_with("SEV-"))
        }));
    }
    Ok(out)
}

/// A pinned ARK and the one-anchor set chains for its product are validated against.
#[derive(Debug, Clone)]
struct PinnedArk {
    ark: Certificate,
    anchors: TrustAnchors,
}

/// The trust configuration: which ARK is trusted for which product.
///
/// A chain for product P is validated against P's pinned ARK alone, so a Milan VCEK can
/// never be accepted through the Genoa root, and a product with no pinned ARK is refused.
#[derive(Debug, Clone, Default)]
pub struct AmdRoots {
    pinned: BTreeMap<Product, PinnedArk>,
}

impl AmdRoots {
    /// No ARK pinned: every verification fails with [`Error::ProductNotPinned`].
    pub fn empty() -> Self {
        Self::default()
    }

    /// AMD's ARKs for Milan, Genoa and Turin, as shipped in this crate and checked against
    /// their pinned fingerprints.
    ///
    /// # Errors
    /// Only if the shipped files were damaged.
    pub fn builtin() -> Result<Self, Error> {
        let mut roots = Self::empty();
        for (product, pem) in [
            (Product::Milan, MILAN_PEM),
            (Product::Genoa, GENOA_PEM),
            (Product::Turin, TURIN_PEM),
        ] {
            let ark = shipped(pem)?
                .into_iter()
                .find(|c| c.subject().common_name() == Some(ark_name(product).as_str()))
                .ok_or(Error::ArkRejected {
                    product,
                    reason: "not found in the shipped roots",
                })?;
            let expected = ARK_FINGERPRINTS
                .iter()
                .find(|(p, _)| *p == product)
                .map(|(_, fp)| *fp)
                .ok_or(Error::ArkRejected {
                    product,
                    reason: "no pinned fingerprint",
                })?;
            if ark.fingerprint().to_hex() != expected {
                return Err(Error::ArkRejected {
                    product,
                    reason: "fingerprint differs from the pin",
                });
            }
            roots.pin_certificate(product, ark)?;
        }
        Ok(roots)
    }

    /// Pins `ark_der` as the root for `product`, replacing any earlier pin.
    ///
    /// The certificate must be self-issued with subject common name `ARK-<product>`, and
    /// its self-signature (RSASSA-PSS) must verify.
    ///
    /// # Errors
    /// [`Error::Certificate`] when it does not parse, [`Error::ArkRejected`] otherwise.
    pub fn pin(&mut self, product: Product, ark_der: &[u8]) -> Result<(), Error> {
        let ark = Certificate::from_der(ark_der).map_err(|source| Error::Certificate {
            role: "ARK",
            source,
        })?;
        self.pin_certificate(product, ark)
    }

    fn pin_certificate(&mut self, product: Product, ark: Certificate) -> Result<(), Error> {
        if ark.subject().common_name() != Some(ark_name(product).as_str()) {
            return Err(Error::ArkRejected {
                product,
                reason: "subject is not ARK-<product>",
            });
        }
        if !ark.is_self_issued() {
            return Err(Error::ArkRejected {
                product,
                reason: "not self-issued",
            });
        }
        let key = ark.public_key().map_err(|_| Error::ArkRejected {
            product,
            reason: "unsupported public key",
        })?;
        ark.verify_signed_by(&key).map_err(|_| Error::ArkRejected {
            product,
            reason: "self-signature does not verify",
        })?;
        let anchors = TrustAnchors::from_certificates([ark.clone()]);
        let _replaced = self.pinned.insert(product, PinnedArk { ark, anchors });
        Ok(())
    }

    /// The ARK pinned for `product`.
    pub fn ark(&self, product: Product) -> Option<&Certificate> {
        self.pinned.get(&product).map(|p| &p.ark)
    }

    pub(crate) fn anchors(&self, product: Product) -> Result<(&Certificate, &TrustAnchors), Error> {
        self.pinned
            .get(&product)
            .map(|p| (&p.ark, &p.anchors))
            .ok_or(Error::ProductNotPinned(product))
    }

    /// The products with a pinned ARK.
    pub fn products(&self) -> impl Iterator<Item = Product> + '_ {
        self.pinned.keys().copied()
    }
}

fn ark_name(product: Product) -> String {
    format!("ARK-{product}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_roots_are_pinned_and_self_signed() {
        let roots = AmdRoots::builtin().unwrap();
        assert_eq!(roots.products().collect::<Vec<_>>(), Product::ALL);
        assert_eq!(builtin_intermediates().unwrap().len(), 6);
    }

    #[test]
    fn rejects_an_ask_pinned_as_ark_with_ark_rejected() {
        let ask = shipped(MILAN_PEM).unwrap()[0].der().to_vec();
        let mut roots = AmdRoots::empty();
        assert_eq!(
            roots.pin(Product::Milan, &ask),
            Err(Error::ArkRejected {
                product: Product::Milan,
                reason: "subject is not ARK-<product>"
            })
        );
    }

    #[test]
    fn rejects_genoa_ark_pinned_for_milan_with_ark_rejected() {
        let genoa_ark = shipped(GENOA_PEM).unwrap()[1].der().to_vec();
        let mut roots = AmdRoots::empty();
        assert_eq!(
            roots.pin(Product::Milan, &genoa_ark),
            Err(Error::ArkRejected {
                product: Product::Milan,
                reason: "subject is not ARK-<product>"
            })
        );
        assert_eq!(roots.pin(Product::Genoa, &genoa_ark), Ok(()));
    }
}
