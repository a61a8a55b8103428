//! One generation of CA keys and certificates: an authority.
//!
//! An authority holds the key that signs X.509-SVIDs together with its certificate path
//! up to the trust anchor that goes into the bundle, and the key that signs JWT-SVIDs.
//! Rotation (see [`crate::Ca`]) moves authorities through [`AuthorityState`].

use std::fmt;

use plinth_core::{SecureRandom, SpiffeId, TrustDomain, UnixTime};
use plinth_crypto::PublicKey;
use plinth_x509::{Certificate, ChainOptions, TrustAnchors};

use crate::signer::{Signer, check_signer};
use crate::x509::{
    CaIssuer, Issuance, IssuerKey, IssuerName, SERIAL_LEN, SubjectKey, key_identifier,
    public_key_bits,
};
use crate::{Error, jwt, name, x509};

/// Where an authority is in its rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthorityState {
    /// In the bundle, not yet signing: peers learn to trust it before it is used.
    Prepared,
    /// Signing every new SVID. Exactly one authority is active.
    Active,
    /// Replaced by a newer authority but still in the bundle, until every SVID it signed
    /// has expired; then it can be retired (removed).
    Superseded,
}

impl AuthorityState {
    /// Lower-case name (`prepared`, `active`, `superseded`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Prepared => "prepared",
            Self::Active => "active",
            Self::Superseded => "superseded",
        }
    }

    /// Parses [`AuthorityState::name`].
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Prepared, Self::Active, Self::Superseded]
            .into_iter()
            .find(|s| s.name() == name)
    }
}

impl fmt::Display for AuthorityState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// When an authority went through each step of its rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthorityTimes {
    /// When it was created and put in the bundle.
    pub prepared_at: UnixTime,
    /// When it started signing.
    pub activated_at: Option<UnixTime>,
    /// When a newer authority took over.
    pub superseded_at: Option<UnixTime>,
}

/// The X.509 half of an authority.
pub(crate) struct X509Authority {
    signer: Box<dyn Signer>,
    /// The signing certificate first, the trust anchor last.
    path: Vec<Certificate>,
    issuer_name: IssuerName,
    public_bits: Vec<u8>,
    not_before: UnixTime,
    not_after: UnixTime,
}

impl X509Authority {
    pub(crate) fn issuer_key(&self) -> IssuerKey<'_> {
        IssuerKey::new(self.signer.as_ref(), &self.public_bits)
    }

    pub(crate) const fn issuer_name(&self) -> &IssuerName {
        &self.issuer_name
    }

    /// The certificates sent after an SVID leaf: the path without its trust anchor.
    pub(crate) fn intermediates(&self) -> &[Certificate] {
        self.path.split_last().map_or(&[], |(_, rest)| rest)
    }
}

/// One generation of CA keys: see the module documentation.
pub struct Authority {
    id: u32,
    state: AuthorityState,
    times: AuthorityTimes,
    x509: X509Authority,
    jwt: jwt::JwtKey,
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authority")
            .field("id", &self.id)
            .field("state", &self.state)
            .field("x509_signer", &self.x509.signer)
            .field("jwt_signer", &self.jwt.signer())
            .field("not_after", &self.x509.not_after)
            .finish_non_exhaustive()
    }
}

impl Authority {
    /// Assembles an authority from its keys and certificate path (signing certificate
    /// first, a self-signed trust anchor last), checking that they belong together:
    /// - the X.509 signer holds the key of the signing certificate (equal public keys and a
    ///   signature that verifies with the certificate's key);
    /// - the signing certificate is a CA allowed to sign certificates;
    /// - the path validates up to its anchor (signatures, names, CA flags, path lengths),
    ///   at `now` when `now` lies within every certificate's validity, otherwise at the
    ///   nearest time that does (an expired authority still loads, so that it can be
    ///   shown and rotated; minting checks the time);
    /// - the signing certificate's name can be reproduced exactly as an issuer name.
    ///
    /// # Errors
    /// [`Error::KeyDoesNotMatchCertificate`], [`Error::Certificate`],
    /// [`Error::UpstreamChainIncomplete`], [`Error::UnsupportedIssuerName`], or a signer's
    /// own error.
    pub fn new(
        id: u32,
        state: AuthorityState,
        times: AuthorityTimes,
        x509_signer: Box<dyn Signer>,
        path: Vec<Certificate>,
        jwt_signer: Box<dyn Signer>,
        now: UnixTime,
    ) -> Result<Self, Error> {
        let what = |part: &str| format!("authority {id} {part}");
        let (Some(signing), Some(anchor)) = (path.first(), path.last()) else {
            return Err(Error::NoCertificates { id });
        };
        let anchor_key = anchor.public_key().map_err(|source| Error::Certificate {
            what: what("trust anchor"),
            source,
        })?;
        if !anchor.is_self_issued() || anchor.verify_signed_by(&anchor_key).is_err() {
            return Err(Error::UpstreamChainIncomplete);
        }
        check_signer(
            x509_signer.as_ref(),
            signing.spki_der(),
            &what("X.509 CA key"),
        )?;
        let is_ca = signing.basic_constraints().is_some_and(|bc| bc.ca())
            && signing.key_usage().is_none_or(|ku| ku.key_cert_sign());
        if !is_ca {
            return Err(Error::NotACaCertificate {
                what: what("signing certificate"),
            });
        }
        let not_before = path
            .iter()
            .map(|c| c.validity().not_before())
            .max()
            .unwrap_or(now);
        let not_after = path
            .iter()
            .map(|c| c.validity().not_after())
            .min()
            .unwrap_or(now);
        let at = now.max(not_before).min(not_after);
        let anchors = TrustAnchors::from_certificates([anchor.clone()]);
        let middle = path.get(1..path.len().saturating_sub(1)).unwrap_or(&[]);
        let _verified =
            plinth_x509::verify_chain(signing, middle, &anchors, at, &ChainOptions::new())
                .map_err(|source| Error::Certificate {
                    what: what("certificate path"),
                    source,
                })?;
        let issuer_name = IssuerName::new(
            name::from_der(signing.subject().der(), &signing.subject().to_string())?,
            signing.subject_key_id(),
        );
        let public_bits = public_key_bits(signing.spki_der())
            .ok_or_else(|| Error::KeyDoesNotMatchCertificate {
                what: what("X.509 CA key"),
            })?
            .to_vec();
        let x509 = X509Authority {
            signer: x509_signer,
            path,
            issuer_name,
            public_bits,
            not_before,
            not_after,
        };
        check_issuer_name(&x509)?;
        Ok(Self {
            id,
            state,
            times,
            x509,
            jwt: jwt::JwtKey::new(jwt_signer)?,
        })
    }

    /// The generation number.
    pub const fn id(&self) -> u32 {
        self.id
    }

    /// The rotation state.
    pub const fn state(&self) -> AuthorityState {
        self.state
    }

    /// When it was prepared, activated and superseded.
    pub const fn times(&self) -> AuthorityTimes {
        self.times
    }

    /// The certificate path: the certificate that signs X.509-SVIDs first, the trust anchor
    /// (which goes into the bundle) last.
    pub fn certificates(&self) -> &[Certificate] {
        &self.x509.path
    }

    /// The trust anchor.
    pub fn trust_anchor(&self) -> Option<&Certificate> {
        self.x509.path.last()
    }

    /// The latest notBefore of the path.
    pub const fn not_before(&self) -> UnixTime {
        self.x509.not_before
    }

    /// The earliest notAfter of the path: nothing it signs may live longer.
    pub const fn not_after(&self) -> UnixTime {
        self.x509.not_after
    }

    /// The key that signs X.509-SVIDs.
    pub fn x509_signer(&self) -> &dyn Signer {
        self.x509.signer.as_ref()
    }

    /// The key that signs JWT-SVIDs.
    pub fn jwt_signer(&self) -> &dyn Signer {
        self.jwt.signer()
    }

    /// The `kid` of the JWT key (its RFC 7638 thumbprint).
    pub fn jwt_key_id(&self) -> &str {
        self.jwt.kid()
    }

    /// The JWT public key.
    pub fn jwt_public_key(&self) -> &PublicKey {
        self.jwt.signer().public_key()
    }

    /// Whether `spki` is one of this authority's public keys.
    pub(crate) fn holds_key(&self, spki: &[u8]) -> bool {
        self.x509.signer.public_key().spki_der() == spki
            || self.jwt.signer().public_key().spki_der() == spki
    }

    pub(crate) const fn x509(&self) -> &X509Authority {
        &self.x509
    }

    pub(crate) const fn jwt(&self) -> &jwt::JwtKey {
        &self.jwt
    }

    pub(crate) fn set_state(&mut self, state: AuthorityState, now: UnixTime) {
        self.state = state;
        match state {
            AuthorityState::Prepared => self.times.prepared_at = now,
            AuthorityState::Active => self.times.activated_at = Some(now),
            AuthorityState::Superseded => self.times.superseded_at = Some(now),
        }
    }

    pub(crate) fn into_signers(self) -> (Box<dyn Signer>, Box<dyn Signer>) {
        (self.x509.signer, self.jwt.into_signer())
    }
}

/// A signer that makes no signature: lets rcgen lay out a probe certificate without
/// using the CA key.
#[derive(Debug)]
struct NoSignature<'a>(&'a dyn Signer);

impl Signer for NoSignature<'_> {
    fn algorithm(&self) -> &'static crate::SignatureAlgorithm {
        self.0.algorithm()
    }

    fn public_key(&self) -> &PublicKey {
        self.0.public_key()
    }

    fn sign(&self, _message: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(vec![1; 2 * self.0.algorithm().curve().coordinate_len()])
    }
}

/// Lays out (without signing) a certificate issued by this authority and checks that its
/// issuer name is the signing certificate's subject, byte for byte.
fn check_issuer_name(x509: &X509Authority) -> Result<(), Error> {
    let Some(signing) = x509.path.first() else {
        return Err(Error::UpstreamChainIncomplete);
    };
    let unsigned = NoSignature(x509.signer.as_ref());
    let issuer_key = IssuerKey::new(&unsigned, &x509.public_bits);
    let subject = SubjectKey::of_signer(x509.signer.as_ref(), &x509.public_bits);
    let id = SpiffeId::parse("spiffe://probe.invalid/probe")
        .map_err(|e| Error::Encoding(e.to_string()))?;
    let issuance = Issuance {
        not_before: x509.not_before,
        not_after: x509.not_before,
        serial: [1; SERIAL_LEN],
    };
    let probe = x509::leaf(&id, &subject, &issuance, &x509.issuer_name, &issuer_key)?;
    let probe = Certificate::from_der(&probe).map_err(|source| Error::Certificate {
        what: "issuer name probe".to_owned(),
        source,
    })?;
    if probe.issuer().der() == signing.subject().der() {
        Ok(())
    } else {
        Err(Error::UnsupportedIssuerName {
            name: signing.subject().to_string(),
            reason: "it does not re-encode to the same bytes",
        })
    }
}

/// The upstream CA that signs a new authority's top certificate.
pub(crate) struct Upstream<'a> {
    /// The upstream CA's key.
    pub(crate) signer: &'a dyn Signer,
    /// The upstream chain: the upstream CA's certificate first, its self-signed root last
    /// (one certificate when the upstream CA is itself a root).
    pub(crate) chain: &'a [Certificate],
}

/// What a new authority is made of.
pub(crate) struct Plan<'a> {
    pub(crate) trust_domain: &'a TrustDomain,
    pub(crate) id: u32,
    pub(crate) not_before: UnixTime,
    pub(crate) not_after: UnixTime,
    /// The key of the top certificate: a self-signed root, or the CA the upstream signs.
    pub(crate) top: &'a dyn Signer,
    /// The key of an intermediate below the top certificate, which then signs SVIDs.
    pub(crate) intermediate: Option<&'a dyn Signer>,
    pub(crate) upstream: Option<Upstream<'a>>,
}

fn serial(rng: &dyn SecureRandom) -> Result<[u8; SERIAL_LEN], Error> {
    let mut serial = [0; SERIAL_LEN];
    // A zero serial is not a positive INTEGER (RFC 5280 4.1.2.2); it comes with
    // probability 2^-128, and then the next draw is taken.
    while serial == [0; SERIAL_LEN] {
        rng.fill(&mut serial)?;
    }
    Ok(serial)
}

fn bits_of(signer: &dyn Signer) -> Result<Vec<u8>, Error> {
    public_key_bits(signer.public_key().spki_der())
        .map(<[u8]>::to_vec)
        .ok_or(Error::UnsupportedSubjectKey)
}

fn parse(der: &[u8], what: &str) -> Result<Certificate, Error> {
    Certificate::from_der(der).map_err(|source| Error::Certificate {
        what: what.to_owned(),
        source,
    })
}

/// Issues the certificate path of a new authority: `[intermediate,] top[, upstream chain]`.
pub(crate) fn issue_path(
    plan: &Plan<'_>,
    rng: &dyn SecureRandom,
) -> Result<Vec<Certificate>, Error> {
    let td_id = plan.trust_domain.id();
    let top_bits = bits_of(plan.top)?;
    let top_kind = if plan.upstream.is_some() {
        "CA"
    } else {
        "root"
    };
    let top_name = x509::ca_name(format!(
        "{} {top_kind} {} {}",
        plan.trust_domain,
        plan.id,
        hex::encode(key_identifier(&top_bits).get(..4).unwrap_or_default())
    ));
    let issuance = |rng| -> Result<Issuance, Error> {
        Ok(Issuance {
            not_before: plan.not_before,
            not_after: plan.not_after,
            serial: serial(rng)?,
        })
    };
    let top_path_len = u8::from(plan.intermediate.is_some());
    let top_subject = SubjectKey::of_signer(plan.top, &top_bits);
    let top_der = match &plan.upstream {
        None => {
            let key = IssuerKey::new(plan.top, &top_bits);
            x509::ca(
                &top_name,
                &top_subject,
                &td_id,
                top_path_len,
                &issuance(rng)?,
                &CaIssuer::SelfSigned(&key),
            )?
        }
        Some(upstream) => {
            let Some(upstream_cert) = upstream.chain.first() else {
                return Err(Error::UpstreamChainIncomplete);
            };
            check_signer(
                upstream.signer,
                upstream_cert.spki_der(),
                "the upstream CA key",
            )?;
            let ca_not_after = upstream
                .chain
                .iter()
                .map(|c| c.validity().not_after())
                .min()
                .unwrap_or(plan.not_before);
            if plan.not_after > ca_not_after {
                return Err(Error::TtlBeyondCaExpiry {
                    not_after: plan.not_after,
                    ca_not_after,
                });
            }
            let upstream_bits = bits_of(upstream.signer)?;
            let name = name::from_der(
                upstream_cert.subject().der(),
                &upstream_cert.subject().to_string(),
            )?;
            let issuer_name = IssuerName::new(name, upstream_cert.subject_key_id());
            let key = IssuerKey::new(upstream.signer, &upstream_bits);
            x509::ca(
                &top_name,
                &top_subject,
                &td_id,
                top_path_len,
                &issuance(rng)?,
                &CaIssuer::By(&issuer_name, &key),
            )?
        }
    };
    let mut path = Vec::new();
    if let Some(intermediate) = plan.intermediate {
        let bits = bits_of(intermediate)?;
        let name = x509::ca_name(format!(
            "{} intermediate {} {}",
            plan.trust_domain,
            plan.id,
            hex::encode(key_identifier(&bits).get(..4).unwrap_or_default())
        ));
        let top_key_id = key_identifier(&top_bits);
        let issuer_name = IssuerName::new(top_name.clone(), Some(&top_key_id));
        let key = IssuerKey::new(plan.top, &top_bits);
        let subject = SubjectKey::of_signer(intermediate, &bits);
        let der = x509::ca(
            &name,
            &subject,
            &td_id,
            0,
            &issuance(rng)?,
            &CaIssuer::By(&issuer_name, &key),
        )?;
        path.push(parse(&der, "new intermediate certificate")?);
    }
    path.push(parse(&top_der, "new CA certificate")?);
    if let Some(upstream) = &plan.upstream {
        path.extend(upstream.chain.iter().cloned());
    }
    Ok(path)
}
