//! The document's certificate chain: leaf → cabundle intermediates → the pinned AWS root,
//! and the [`ChainCache`] that lets a stream of documents from one enclave skip it.

use std::collections::BTreeMap;

use plinth_core::{Digest, HashAlg, UnixTime};
use plinth_crypto::{Curve, Hasher, KeyKind, PublicKey};
use plinth_x509::{Certificate, ChainOptions, TrustAnchors, Validity};

use crate::document::{AttestationDocument, MAX_CABUNDLE_LEN};
use crate::error::{ChainPosition, Error};
use crate::trust::NitroTrust;

/// How the chain of a verified document was established.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChainSource {
    /// The whole path, leaf to pinned root, was validated for this document.
    Verified,
    /// The intermediates came from the cache; only the leaf certificate was validated
    /// against the cached issuer (one certificate signature).
    CachedIntermediates,
    /// Leaf and intermediates came from the cache: no certificate signature was checked,
    /// only their validity at `now`.
    Cached,
}

/// What a validated chain yields: the leaf's key, checked to be an ECDSA P-384 signing key.
pub(crate) struct LeafKey {
    pub(crate) key: PublicKey,
    pub(crate) source: ChainSource,
}

/// Validates the document's chain at `now`, without a cache.
pub(crate) fn verify(
    document: &AttestationDocument,
    trust: &NitroTrust,
    now: UnixTime,
) -> Result<LeafKey, Error> {
    let path = verify_path(document, trust, now)?;
    Ok(LeafKey {
        key: path.leaf_key,
        source: ChainSource::Verified,
    })
}

/// Validates the document's chain at `now`, using and filling `cache`.
pub(crate) fn verify_cached(
    document: &AttestationDocument,
    trust: &NitroTrust,
    now: UnixTime,
    cache: &mut ChainCache,
) -> Result<LeafKey, Error> {
    let chain_id = chain_fingerprint(trust, document.cabundle());
    let leaf_id = plinth_crypto::digest(HashAlg::Sha256, document.certificate());
    cache.tick = cache.tick.wrapping_add(1);
    let tick = cache.tick;

    let cached = match cache.lookup(&chain_id, now) {
        None => None,
        Some(entry) => {
            entry.last_used = tick;
            match entry
                .leaf
                .as_ref()
                .filter(|l| l.id == leaf_id && l.window.contains(now))
            {
                Some(leaf) => Some(LeafKey {
                    key: leaf.key.clone(),
                    source: ChainSource::Cached,
                }),
                // A new leaf under known intermediates: validate the one hop. On any failure
                // the full path validation below decides, so the cache only ever saves work.
                None => verify_leaf_hop(document.certificate(), &entry.issuer, now)
                    .ok()
                    .map(|hop| {
                        let key = hop.key.clone();
                        entry.leaf = Some(hop.with_window(entry.window, leaf_id.clone()));
                        LeafKey {
                            key,
                            source: ChainSource::CachedIntermediates,
                        }
                    }),
            }
        }
    };
    match cached.as_ref().map(|leaf| leaf.source) {
        Some(ChainSource::Cached) => cache.stats.hits = cache.stats.hits.saturating_add(1),
        Some(_) => {
            cache.stats.leaf_verifications = cache.stats.leaf_verifications.saturating_add(1);
        }
        None => {}
    }
    if let Some(leaf) = cached {
        return Ok(leaf);
    }

    let path = verify_path(document, trust, now)?;
    cache.stats.full_verifications = cache.stats.full_verifications.saturating_add(1);
    let key = path.leaf_key.clone();
    let leaf = CachedLeaf {
        id: leaf_id,
        key: path.leaf_key,
        window: path.window,
    };
    cache.insert(
        chain_id,
        Entry {
            issuer: path.issuer,
            window: path.ca_window,
            leaf: Some(leaf),
            last_used: tick,
        },
        now,
    );
    Ok(LeafKey {
        key,
        source: ChainSource::Verified,
    })
}

/// A validated path, reduced to what the cache keeps.
struct Path {
    leaf_key: PublicKey,
    /// The certificate that issued the leaf.
    issuer: Certificate,
    /// When every certificate of the path is valid.
    window: Window,
    /// When every certificate above the leaf is valid.
    ca_window: Window,
}

fn verify_path(
    document: &AttestationDocument,
    trust: &NitroTrust,
    now: UnixTime,
) -> Result<Path, Error> {
    let (root_der, intermediate_ders) = document
        .cabundle()
        .split_first()
        .ok_or(Error::MissingField { name: "cabundle" })?;
    let root_sha256 = plinth_crypto::digest(HashAlg::Sha256, root_der);
    if plinth_crypto::verify_slices_equal(root_sha256.as_bytes(), trust.root_sha256()).is_err() {
        return Err(Error::RootNotPinned {
            found: root_sha256.to_hex(),
            pinned: hex::encode(trust.root_sha256()),
        });
    }
    let root = parse(root_der, ChainPosition::CaBundle(0))?;
    let mut anchors = TrustAnchors::new();
    anchors
        .add_pinned(root, trust.root_sha256())
        .map_err(|_| Error::RootNotPinned {
            found: root_sha256.to_hex(),
            pinned: hex::encode(trust.root_sha256()),
        })?;
    let intermediates = intermediate_ders
        .iter()
        .zip(1..)
        .map(|(der, index)| parse(der, ChainPosition::CaBundle(index)))
        .collect::<Result<Vec<_>, _>>()?;
    let leaf = parse(document.certificate(), ChainPosition::Leaf)?;

    let chain = plinth_x509::verify_chain(&leaf, &intermediates, &anchors, now, &chain_options())
        .map_err(|reason| Error::Chain { reason })?;
    let leaf_key = leaf_signing_key(chain.leaf())?;
    let issuer = chain
        .intermediates()
        .first()
        .unwrap_or_else(|| chain.anchor())
        .clone();
    let ca_window = chain
        .intermediates()
        .iter()
        .chain(std::iter::once(chain.anchor()))
        .fold(Window::ALWAYS, |w, c| w.narrow(c.validity()));
    let window = ca_window.narrow(chain.leaf().validity());
    Ok(Path {
        leaf_key,
        issuer,
        window,
        ca_window,
    })
}

/// Validates a leaf against an issuer the cache already validated up to the pinned root:
/// the same checks [`plinth_x509::verify_chain`] makes for that hop, with the issuer standing
/// in as the anchor.
fn verify_leaf_hop(leaf_der: &[u8], issuer: &Certificate, now: UnixTime) -> Result<LeafHop, Error> {
    let leaf = parse(leaf_der, ChainPosition::Leaf)?;
    let anchors = TrustAnchors::from_certificates([issuer.clone()]);
    let chain = plinth_x509::verify_chain(&leaf, &[], &anchors, now, &chain_options())
        .map_err(|reason| Error::Chain { reason })?;
    Ok(LeafHop {
        key: leaf_signing_key(chain.leaf())?,
        validity: chain.leaf().validity(),
    })
}

struct LeafHop {
    key: PublicKey,
    validity: Validity,
}

impl LeafHop {
    fn with_window(self, ca_window: Window, id: Digest) -> CachedLeaf {
        CachedLeaf {
            id,
            key: self.key,
            window: ca_window.narrow(self.validity),
        }
    }
}

fn chain_options() -> ChainOptions {
    // Leaf + the whole cabundle (root included).
    ChainOptions::new().with_max_depth(MAX_CABUNDLE_LEN.saturating_add(1))
}

fn parse(der: &[u8], position: ChainPosition) -> Result<Certificate, Error> {
    Certificate::from_der(der).map_err(|reason| Error::CertificateParse { position, reason })
}

/// The leaf's key, which must be ECDSA P-384 and, when keyUsage is present, allowed to sign.
fn leaf_signing_key(leaf: &Certificate) -> Result<PublicKey, Error> {
    if leaf
        .key_usage()
        .is_some_and(|usage| !usage.digital_signature())
    {
        return Err(Error::LeafKeyUsage);
    }
    let key = leaf.public_key().map_err(|_| Error::LeafKeyNotP384)?;
    if key.kind() == KeyKind::Ec(Curve::P384) {
        Ok(key)
    } else {
        Err(Error::LeafKeyNotP384)
    }
}

/// SHA-256 over the pinned root fingerprint and the cabundle, each certificate
/// length-prefixed: the identity of an intermediate chain under one trust configuration.
fn chain_fingerprint(trust: &NitroTrust, cabundle: &[Vec<u8>]) -> Digest {
    let mut hasher = Hasher::new(HashAlg::Sha256);
    hasher.update(b"plinth-nitro cabundle v1\0");
    hasher.update(trust.root_sha256());
    for der in cabundle {
        // Entries are at most 1024 bytes, so the length always fits.
        hasher.update(&u32::try_from(der.len()).unwrap_or(u32::MAX).to_be_bytes());
        hasher.update(der);
    }
    hasher.finish()
}

/// The interval, in whole seconds as certificates state it, in which every certificate of
/// a set is valid. Compared exactly as [`Validity::check`] compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    not_before_secs: u64,
    not_after_secs: u64,
}

impl Window {
    const ALWAYS: Self = Self {
        not_before_secs: 0,
        not_after_secs: u64::MAX,
    };

    fn narrow(self, validity: Validity) -> Self {
        Self {
            not_before_secs: self.not_before_secs.max(validity.not_before().as_secs()),
            not_after_secs: self.not_after_secs.min(validity.not_after().as_secs()),
        }
    }

    const fn contains(self, now: UnixTime) -> bool {
        self.not_before_secs <= now.as_secs() && now.as_secs() <= self.not_after_secs
    }

    const fn expired(self, now: UnixTime) -> bool {
        now.as_secs() > self.not_after_secs
    }
}

/// A bounded cache of validated intermediate chains, owned by the caller and passed to
/// [`crate::verify_with_cache`].
///
/// An entry is keyed by the SHA-256 of the pinned root fingerprint and the document's
/// `cabundle` (so a cache shared between trust configurations never crosses them). It holds
/// the certificate that issued the leaf, the validity window common to the whole
/// intermediate chain, and the last leaf validated under it. So:
///
/// - the first document of an enclave costs a full path validation ([`ChainSource::Verified`]);
/// - later documents with the same leaf cost no certificate signature at all
///   ([`ChainSource::Cached`]), leaving the document's own ES384 signature as the one check;
/// - a new leaf under known intermediates costs one certificate signature
///   ([`ChainSource::CachedIntermediates`]).
///
/// An entry lives until the earliest notAfter of its chain: looked up after that, it is
/// dropped and the chain is validated afresh (and, being expired, rejected). It is used
/// only while `now` lies within every certificate's validity, compared exactly as the X.509
/// validator compares. When full, the cache first drops expired entries, then the least
/// recently used one. Time only ever comes in as the `now` of each call.
#[derive(Debug, Clone)]
pub struct ChainCache {
    capacity: usize,
    entries: BTreeMap<Digest, Entry>,
    tick: u64,
    stats: CacheStats,
}

#[derive(Debug, Clone)]
struct Entry {
    issuer: Certificate,
    window: Window,
    leaf: Option<CachedLeaf>,
    last_used: u64,
}

#[derive(Debug, Clone)]
struct CachedLeaf {
    id: Digest,
    key: PublicKey,
    window: Window,
}

/// What a [`ChainCache`] has done, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Full path validations, leaf to pinned root (cache misses).
    pub full_verifications: u64,
    /// Leaves validated against a cached issuer (one certificate signature each).
    pub leaf_verifications: u64,
    /// Documents whose whole chain came from the cache (no certificate signature).
    pub hits: u64,
    /// Entries dropped because their earliest notAfter had passed.
    pub expirations: u64,
    /// Entries dropped, unexpired, to stay within capacity.
    pub evictions: u64,
}

impl Default for ChainCache {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl ChainCache {
    /// Default number of intermediate chains kept: one per enclave parent instance
    /// attesting at once.
    pub const DEFAULT_CAPACITY: usize = 256;

    /// An empty cache holding at most `capacity` chains (0 disables caching).
    pub const fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: BTreeMap::new(),
            tick: 0,
            stats: CacheStats {
                full_verifications: 0,
                leaf_verifications: 0,
                hits: 0,
                expirations: 0,
                evictions: 0,
            },
        }
    }

    /// The most chains kept.
    pub const fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many chains are kept now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no chain is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Counters of what the cache has done.
    pub const fn stats(&self) -> CacheStats {
        self.stats
    }

    /// When the soonest-expiring kept chain expires (its earliest notAfter).
    pub fn earliest_expiry(&self) -> Option<UnixTime> {
        self.entries
            .values()
            .map(|e| UnixTime::from_secs(e.window.not_after_secs))
            .min()
    }

    /// Drops every chain expired at `now`; returns how many.
    pub fn purge_expired(&mut self, now: UnixTime) -> usize {
        let before = self.entries.len();
        self.entries.retain(|_, entry| !entry.window.expired(now));
        let dropped = before.saturating_sub(self.entries.len());
        self.stats.expirations = self
            .stats
            .expirations
            .saturating_add(u64::try_from(dropped).unwrap_or(u64::MAX));
        dropped
    }

    /// Drops every chain.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The entry for `id` if it is usable at `now`; an expired one is dropped.
    fn lookup(&mut self, id: &Digest, now: UnixTime) -> Option<&mut Entry> {
        let window = self.entries.get(id)?.window;
        if window.expired(now) {
            let _expired = self.entries.remove(id);
            self.stats.expirations = self.stats.expirations.saturating_add(1);
            return None;
        }
        if !window.contains(now) {
            return None;
        }
        self.entries.get_mut(id)
    }

    fn insert(&mut self, id: Digest, entry: Entry, now: UnixTime) {
        if self.capacity == 0 {
            return;
        }
        if !self.entries.contains_key(&id) && self.entries.len() >= self.capacity {
            let _purged = self.purge_expired(now);
            while self.entries.len() >= self.capacity {
                let oldest = self
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.last_used)
                    .map(|(k, _)| k.clone());
                let Some(oldest) = oldest else { break };
                let _evicted = self.entries.remove(&oldest);
                self.stats.evictions = self.stats.evictions.saturating_add(1);
            }
        }
        let _replaced = self.entries.insert(id, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ParsedDocument;

    fn sample() -> (Vec<u8>, UnixTime) {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../testdata/nitro/anjuna/attestdoc/sample_prod_doc.bin"
        );
        (
            std::fs::read(path).unwrap(),
            UnixTime::from_millis(1_616_018_515_685),
        )
    }

    #[test]
    fn new_leaf_under_cached_intermediates_costs_one_certificate_check() {
        let (bytes, now) = sample();
        let trust = NitroTrust::aws_root_g1();
        let mut cache = ChainCache::new(4);
        let first = ParsedDocument::parse(&bytes).unwrap();
        assert_eq!(
            first
                .verify_with_cache(&trust, now, &mut cache)
                .unwrap()
                .chain_source(),
            ChainSource::Verified
        );
        // Forget the leaf, as if the NSM had rotated it: the intermediates are reused and
        // only the leaf is validated against the cached issuer.
        for entry in cache.entries.values_mut() {
            entry.leaf = None;
        }
        let again = ParsedDocument::parse(&bytes).unwrap();
        assert_eq!(
            again
                .verify_with_cache(&trust, now, &mut cache)
                .unwrap()
                .chain_source(),
            ChainSource::CachedIntermediates
        );
        let stats = cache.stats();
        assert_eq!(
            (
                stats.full_verifications,
                stats.leaf_verifications,
                stats.hits
            ),
            (1, 1, 0)
        );
        let third = ParsedDocument::parse(&bytes).unwrap();
        assert_eq!(
            third
                .verify_with_cache(&trust, now, &mut cache)
                .unwrap()
                .chain_source(),
            ChainSource::Cached
        );
    }

    #[test]
    fn failed_leaf_hop_falls_back_to_full_validation() {
        let (bytes, now) = sample();
        let trust = NitroTrust::aws_root_g1();
        let mut cache = ChainCache::new(4);
        let first = ParsedDocument::parse(&bytes).unwrap();
        let _ = first.verify_with_cache(&trust, now, &mut cache).unwrap();
        // Replace the cached issuer with the root: the hop fails (wrong issuer), and the
        // full validation decides (and succeeds).
        let root = ParsedDocument::parse(&bytes)
            .unwrap()
            .unverified_document()
            .cabundle()[0]
            .clone();
        for entry in cache.entries.values_mut() {
            entry.leaf = None;
            entry.issuer = Certificate::from_der(&root).unwrap();
        }
        let again = ParsedDocument::parse(&bytes).unwrap();
        assert_eq!(
            again
                .verify_with_cache(&trust, now, &mut cache)
                .unwrap()
                .chain_source(),
            ChainSource::Verified
        );
        assert_eq!(cache.stats().full_verifications, 2);
    }

    #[test]
    fn chain_fingerprint_depends_on_pin_and_every_certificate() {
        let a = chain_fingerprint(&NitroTrust::aws_root_g1(), &[vec![1, 2], vec![3]]);
        assert_ne!(
            a,
            chain_fingerprint(
                &NitroTrust::pinned_root_sha256([0; 32]),
                &[vec![1, 2], vec![3]]
            )
        );
        assert_ne!(
            a,
            chain_fingerprint(&NitroTrust::aws_root_g1(), &[vec![1], vec![2, 3]])
        );
        assert_ne!(
            a,
            chain_fingerprint(&NitroTrust::aws_root_g1(), &[vec![1, 2]])
        );
    }
}
