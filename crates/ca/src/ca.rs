//! The CA: its authorities, minting, bundles and rotation. No I/O here; see
//! [`crate::CaDir`] for the directory it is kept in.

use std::fmt;
use std::time::Duration;

use plinth_core::{BoundKey, SecureRandom, SpiffeId, TrustDomain, UnixTime};

use crate::Error;
use crate::authority::{Authority, AuthorityState};
use crate::bundle::Bundle;
use crate::jwt::{self, JwtSvid};
use crate::x509::{self, Issuance, NOT_BEFORE_SKEW_SECS, SubjectKey};

/// Lifetimes and bundle settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CaConfig {
    /// X.509-SVID lifetime when none is asked for (default one hour).
    pub x509_svid_ttl: Duration,
    /// JWT-SVID lifetime when none is asked for (default five minutes).
    pub jwt_svid_ttl: Duration,
    /// The longest lifetime of any SVID (default 24 hours). It also bounds how long a
    /// superseded authority must stay in the bundle before it can be retired.
    pub max_svid_ttl: Duration,
    /// `spiffe_refresh_hint` (default five minutes). A prepared authority must have been
    /// in the bundle this long before it can be activated.
    pub refresh_hint: Duration,
}

impl Default for CaConfig {
    fn default() -> Self {
        Self {
            x509_svid_ttl: Duration::from_secs(3600),
            jwt_svid_ttl: Duration::from_secs(300),
            max_svid_ttl: Duration::from_secs(24 * 3600),
            refresh_hint: Duration::from_secs(300),
        }
    }
}

/// A minted X.509-SVID: the leaf and the certificates to send after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct X509Svid {
    spiffe_id: SpiffeId,
    leaf: Vec<u8>,
    intermediates: Vec<Vec<u8>>,
    serial: [u8; x509::SERIAL_LEN],
    not_after: UnixTime,
    authority: u32,
}

impl X509Svid {
    /// The serial number's value: unsigned big-endian without leading zero bytes, as the
    /// leaf's INTEGER reads once a sign byte is dropped (so callers need not re-parse it).
    pub fn serial(&self) -> &[u8] {
        let start = self
            .serial
            .iter()
            .position(|&b| b != 0)
            .unwrap_or(self.serial.len());
        self.serial.get(start..).unwrap_or_default()
    }

    /// The SPIFFE ID.
    pub const fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// The leaf certificate (DER).
    pub fn leaf_der(&self) -> &[u8] {
        &self.leaf
    }

    /// The intermediate certificates (DER), in order up towards the trust anchor; empty
    /// when the trust anchor signed the leaf.
    pub fn intermediates_der(&self) -> &[Vec<u8>] {
        &self.intermediates
    }

    /// The chain as the Workload API carries it: leaf first, DER concatenated.
    pub fn chain_der(&self) -> Vec<u8> {
        let mut out = self.leaf.clone();
        for certificate in &self.intermediates {
            out.extend_from_slice(certificate);
        }
        out
    }

    /// The chain as PEM, leaf first.
    pub fn chain_pem(&self) -> String {
        std::iter::once(&self.leaf)
            .chain(&self.intermediates)
            .map(|der| crate::pem::encode("CERTIFICATE", der))
            .collect()
    }

    /// notAfter.
    pub const fn not_after(&self) -> UnixTime {
        self.not_after
    }

    /// The generation of the authority that signed it.
    pub const fn authority(&self) -> u32 {
        self.authority
    }
}

/// A SPIFFE certificate authority for one trust domain.
pub struct Ca {
    trust_domain: TrustDomain,
    config: CaConfig,
    sequence: u64,
    authorities: Vec<Authority>,
}

impl fmt::Debug for Ca {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ca")
            .field("trust_domain", &self.trust_domain.as_str())
            .field("sequence", &self.sequence)
            .field("authorities", &self.authorities)
            .finish_non_exhaustive()
    }
}

fn add(t: UnixTime, d: Duration) -> UnixTime {
    UnixTime::from_millis(
        t.as_millis()
            .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    )
}

impl Ca {
    /// A CA of `authorities` (exactly one active, at most one prepared).
    ///
    /// # Errors
    /// [`Error::NoActiveAuthority`], [`Error::AlreadyPrepared`], or
    /// [`Error::InvalidRotation`] for a second active authority.
    pub fn new(
        trust_domain: TrustDomain,
        config: CaConfig,
        sequence: u64,
        authorities: Vec<Authority>,
    ) -> Result<Self, Error> {
        let count = |state| authorities.iter().filter(|a| a.state() == state).count();
        if count(AuthorityState::Active) == 0 {
            return Err(Error::NoActiveAuthority);
        }
        if let Some(second) = authorities
            .iter()
            .filter(|a| a.state() == AuthorityState::Active)
            .nth(1)
        {
            return Err(Error::InvalidRotation {
                id: second.id(),
                state: AuthorityState::Active,
                action: "load",
            });
        }
        if let Some(second) = authorities
            .iter()
            .filter(|a| a.state() == AuthorityState::Prepared)
            .nth(1)
        {
            return Err(Error::AlreadyPrepared { id: second.id() });
        }
        let mut authorities = authorities;
        authorities.sort_by_key(Authority::id);
        Ok(Self {
            trust_domain,
            config,
            sequence,
            authorities,
        })
    }

    /// The trust domain.
    pub const fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }

    /// The configuration.
    pub const fn config(&self) -> &CaConfig {
        &self.config
    }

    /// The bundle sequence number.
    pub const fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Every authority, oldest first.
    pub fn authorities(&self) -> &[Authority] {
        &self.authorities
    }

    /// The authority that signs new SVIDs.
    ///
    /// # Errors
    /// [`Error::NoActiveAuthority`] (which [`Ca::new`] rules out).
    pub fn active(&self) -> Result<&Authority, Error> {
        self.authorities
            .iter()
            .find(|a| a.state() == AuthorityState::Active)
            .ok_or(Error::NoActiveAuthority)
    }

    fn check_id(&self, id: &SpiffeId) -> Result<(), Error> {
        if id.trust_domain() != &self.trust_domain {
            return Err(Error::ForeignTrustDomain {
                id: id.clone(),
                trust_domain: self.trust_domain.clone(),
            });
        }
        if id.path().is_empty() {
            return Err(Error::SpiffeIdWithoutPath { id: id.clone() });
        }
        Ok(())
    }

    /// The validity end of a credential asked for with `ttl` at `now`, within the
    /// configured maximum and the signing chain's validity.
    fn expiry(
        &self,
        authority: &Authority,
        ttl: Option<Duration>,
        default: Duration,
        now: UnixTime,
    ) -> Result<UnixTime, Error> {
        let ttl = ttl.unwrap_or(default);
        if ttl < Duration::from_secs(1) {
            return Err(Error::TtlTooShort);
        }
        if ttl > self.config.max_svid_ttl {
            return Err(Error::TtlTooLong {
                requested: ttl,
                max: self.config.max_svid_ttl,
            });
        }
        if now.as_secs() < authority.not_before().as_secs() {
            return Err(Error::CaNotYetValid {
                not_before: authority.not_before(),
                now,
            });
        }
        // Certificates state whole seconds: round down, never past what was asked.
        let not_after = UnixTime::from_secs(add(now, ttl).as_secs());
        if not_after > authority.not_after() {
            return Err(Error::TtlBeyondCaExpiry {
                not_after,
                ca_not_after: authority.not_after(),
            });
        }
        Ok(not_after)
    }

    /// Mints an X.509-SVID for `id` certifying `key`, the key the evidence bound.
    ///
    /// The leaf follows SPIFFE X.509-SVID §4: exactly one URI SAN (`id`, which must be in
    /// this trust domain and have a path), cA false, keyUsage digitalSignature (critical,
    /// without keyCertSign or cRLSign), extendedKeyUsage serverAuth and clientAuth, a
    /// random 128-bit serial from `rng`, subject and authority key identifiers. It is
    /// valid from `now` (less ten seconds of clock skew, but not before the CA) for `ttl`
    /// (default [`CaConfig::x509_svid_ttl`]), never past the CA's own expiry.
    ///
    /// # Errors
    /// [`Error::ForeignTrustDomain`], [`Error::SpiffeIdWithoutPath`],
    /// [`Error::TtlTooShort`], [`Error::TtlTooLong`], [`Error::TtlBeyondCaExpiry`],
    /// [`Error::CaNotYetValid`], [`Error::UnsupportedSubjectKey`],
    /// [`Error::SubjectKeyIsCaKey`], [`Error::Random`], or the signer's error.
    pub fn mint_x509_svid(
        &self,
        id: &SpiffeId,
        key: &BoundKey,
        ttl: Option<Duration>,
        now: UnixTime,
        rng: &dyn SecureRandom,
    ) -> Result<X509Svid, Error> {
        self.check_id(id)?;
        let authority = self.active()?;
        let not_after = self.expiry(authority, ttl, self.config.x509_svid_ttl, now)?;
        let subject = SubjectKey::new(key.spki_der())?;
        if self.authorities.iter().any(|a| a.holds_key(key.spki_der())) {
            return Err(Error::SubjectKeyIsCaKey);
        }
        let mut serial = [0; x509::SERIAL_LEN];
        while serial == [0; x509::SERIAL_LEN] {
            rng.fill(&mut serial)?;
        }
        let skewed = UnixTime::from_secs(now.as_secs().saturating_sub(NOT_BEFORE_SKEW_SECS));
        let not_before = skewed.max(authority.not_before());
        let issuance = Issuance {
            not_before,
            not_after,
            serial,
        };
        let ca = authority.x509();
        let leaf = x509::leaf(id, &subject, &issuance, ca.issuer_name(), &ca.issuer_key())?;
        Ok(X509Svid {
            spiffe_id: id.clone(),
            leaf,
            intermediates: ca
                .intermediates()
                .iter()
                .map(|c| c.der().to_vec())
                .collect(),
            serial,
            not_after,
            authority: authority.id(),
        })
    }

    /// Mints a JWT-SVID for `id` and `audience` (SPIFFE JWT-SVID): header `alg`, `kid`
    /// and `typ: JWT`; claims `sub`, `aud`, `exp` and `iat`. It expires `ttl` (default
    /// [`CaConfig::jwt_svid_ttl`]) after `now`, never past the active authority's expiry.
    ///
    /// # Errors
    /// [`Error::ForeignTrustDomain`], [`Error::SpiffeIdWithoutPath`],
    /// [`Error::EmptyAudience`], [`Error::TooManyAudiences`], [`Error::InvalidAudience`],
    /// the TTL errors of [`Ca::mint_x509_svid`], or the signer's error.
    pub fn mint_jwt_svid(
        &self,
        id: &SpiffeId,
        audience: &[String],
        ttl: Option<Duration>,
        now: UnixTime,
    ) -> Result<JwtSvid, Error> {
        self.check_id(id)?;
        jwt::check_audience(audience)?;
        let authority = self.active()?;
        let exp = self.expiry(authority, ttl, self.config.jwt_svid_ttl, now)?;
        authority.jwt().mint(id, audience, now, exp)
    }

    /// The trust bundle: the trust anchors and JWT keys of every authority not retired.
    pub fn bundle(&self) -> Bundle {
        let mut anchors: Vec<Vec<u8>> = Vec::new();
        for anchor in self.authorities.iter().filter_map(Authority::trust_anchor) {
            if !anchors.iter().any(|a| a.as_slice() == anchor.der()) {
                anchors.push(anchor.der().to_vec());
            }
        }
        let jwt = self
            .authorities
            .iter()
            .map(|a| (a.jwt_key_id().to_owned(), a.jwt_public_key().clone()));
        Bundle::new(
            self.trust_domain.clone(),
            self.sequence,
            self.config.refresh_hint,
            anchors,
            jwt,
        )
    }

    fn position(&self, id: u32) -> Result<usize, Error> {
        self.authorities
            .iter()
            .position(|a| a.id() == id)
            .ok_or(Error::UnknownAuthority { id })
    }

    /// The next generation number.
    pub fn next_id(&self) -> u32 {
        self.authorities
            .iter()
            .map(Authority::id)
            .max()
            .unwrap_or(0)
            .saturating_add(1)
    }

    /// Rotation step 1: adds `authority` as prepared. It enters the bundle (so the bundle
    /// sequence increases) but signs nothing yet.
    ///
    /// # Errors
    /// [`Error::AlreadyPrepared`] when another authority is prepared;
    /// [`Error::InvalidRotation`] when `authority` is not new (its id is taken).
    pub fn prepare(&mut self, mut authority: Authority, now: UnixTime) -> Result<(), Error> {
        if let Some(prepared) = self
            .authorities
            .iter()
            .find(|a| a.state() == AuthorityState::Prepared)
        {
            return Err(Error::AlreadyPrepared { id: prepared.id() });
        }
        if let Some(existing) = self.authorities.iter().find(|a| a.id() == authority.id()) {
            return Err(Error::InvalidRotation {
                id: existing.id(),
                state: existing.state(),
                action: "prepare",
            });
        }
        authority.set_state(AuthorityState::Prepared, now);
        self.authorities.push(authority);
        self.sequence = self.sequence.saturating_add(1);
        Ok(())
    }

    /// Rotation step 2: the prepared authority `id` starts signing; the active one becomes
    /// superseded (it stays in the bundle). Allowed once `id` has been in the bundle for one
    /// [`CaConfig::refresh_hint`], so that peers refreshing at that pace already trust it.
    ///
    /// # Errors
    /// [`Error::UnknownAuthority`], [`Error::InvalidRotation`] (not prepared),
    /// [`Error::ActivateTooEarly`].
    pub fn activate(&mut self, id: u32, now: UnixTime) -> Result<(), Error> {
        let index = self.position(id)?;
        let Some(authority) = self.authorities.get(index) else {
            return Err(Error::UnknownAuthority { id });
        };
        if authority.state() != AuthorityState::Prepared {
            return Err(Error::InvalidRotation {
                id,
                state: authority.state(),
                action: "activate",
            });
        }
        let earliest = add(authority.times().prepared_at, self.config.refresh_hint);
        if now < earliest {
            return Err(Error::ActivateTooEarly { id, earliest });
        }
        for other in &mut self.authorities {
            if other.state() == AuthorityState::Active {
                other.set_state(AuthorityState::Superseded, now);
            }
        }
        if let Some(authority) = self.authorities.get_mut(index) {
            authority.set_state(AuthorityState::Active, now);
        }
        Ok(())
    }

    /// Rotation step 3: removes the superseded authority `id` from the CA and the bundle.
    /// Allowed once every SVID it can have signed has expired: [`CaConfig::max_svid_ttl`]
    /// after it was superseded. Returns it, so that its keys can be destroyed.
    ///
    /// # Errors
    /// [`Error::UnknownAuthority`], [`Error::InvalidRotation`] (not superseded),
    /// [`Error::RetireTooEarly`].
    pub fn retire(&mut self, id: u32, now: UnixTime) -> Result<Authority, Error> {
        let index = self.position(id)?;
        let Some(authority) = self.authorities.get(index) else {
            return Err(Error::UnknownAuthority { id });
        };
        let (AuthorityState::Superseded, Some(superseded_at)) =
            (authority.state(), authority.times().superseded_at)
        else {
            return Err(Error::InvalidRotation {
                id,
                state: authority.state(),
                action: "retire",
            });
        };
        let earliest = add(superseded_at, self.config.max_svid_ttl);
        if now < earliest {
            return Err(Error::RetireTooEarly { id, earliest });
        }
        let retired = self.authorities.remove(index);
        self.sequence = self.sequence.saturating_add(1);
        Ok(retired)
    }
}
