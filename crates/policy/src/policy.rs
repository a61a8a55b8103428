//! The policy file: TOML, parsed with spans, validated into a [`Policy`].

use std::collections::BTreeMap;
use std::ops::Range;

use plinth_core::{Digest, HashAlg, TrustDomain};
use plinth_snp::{Product, TcbComponent};
use serde::Deserialize;
use toml::Spanned;

use crate::error::{Error, Location};
use crate::template::Template;

/// The largest policy text accepted, in bytes.
pub const MAX_POLICY_LEN: usize = 1 << 20;
/// The longest SVID lifetime a policy may ask for: 30 days.
pub const MAX_SVID_TTL_SECONDS: u64 = 30 * 24 * 3600;
/// The policy format version this crate reads.
pub const POLICY_FORMAT_VERSION: u32 = 1;

/// The platform a policy appraises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyPlatform {
    /// TPM 2.0: a verified quote, optionally its verified event log, and the TPM identity.
    Tpm,
    /// AWS Nitro Enclaves.
    Nitro,
    /// AMD SEV-SNP.
    Snp,
}

impl PolicyPlatform {
    /// The name used in policy files.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Tpm => "tpm",
            Self::Nitro => "nitro",
            Self::Snp => "snp",
        }
    }

    /// The claims a template may use on this platform.
    pub const fn claim_names(self) -> &'static [&'static str] {
        match self {
            Self::Tpm => &[
                "trust_domain",
                "policy",
                "ek_hash",
                "ak_hash",
                "root_fingerprint",
            ],
            Self::Nitro => &[
                "trust_domain",
                "policy",
                "module_id",
                "instance_id",
                "enclave_id",
                "pcr0",
                "pcr1",
                "pcr2",
                "pcr3",
                "pcr4",
                "pcr8",
            ],
            Self::Snp => &[
                "trust_domain",
                "policy",
                "product",
                "chip_id",
                "measurement",
                "host_data",
                "id_key_digest",
                "author_key_digest",
                "report_id",
            ],
        }
    }
}

// ---- the file as written -----------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    version: Spanned<u32>,
    name: Spanned<String>,
    platform: Spanned<String>,
    description: Option<String>,
    identity: RawIdentity,
    tpm: Option<RawTpm>,
    nitro: Option<RawNitro>,
    snp: Option<RawSnp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdentity {
    trust_domain: Spanned<String>,
    spiffe_id: Spanned<String>,
    #[serde(default)]
    selectors: Vec<Spanned<String>>,
    svid_ttl_seconds: Spanned<u64>,
}

type HexList = Spanned<Vec<Spanned<String>>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTpm {
    #[serde(default)]
    pcrs: BTreeMap<String, Spanned<BTreeMap<String, HexList>>>,
    boot: Option<RawBoot>,
    identity: Option<RawTpmIdentity>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBoot {
    #[serde(default)]
    require_secure_boot: bool,
    boot_applications: Option<HexList>,
    #[serde(default)]
    cmdline_contains: Vec<String>,
    #[serde(default)]
    cmdline_excludes: Vec<String>,
    dbx_contains: Option<HexList>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTpmIdentity {
    roots: Option<HexList>,
    ek_hashes: Option<HexList>,
    ak_hashes: Option<HexList>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNitro {
    #[serde(default)]
    pcrs: BTreeMap<String, HexList>,
    #[serde(default)]
    allow_debug: bool,
    max_age_seconds: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSnp {
    measurements: Option<HexList>,
    min_tcb: Option<RawTcb>,
    #[serde(default)]
    allow_debug: bool,
    #[serde(default)]
    allow_migration_agent: bool,
    #[serde(default = "yes")]
    allow_smt: bool,
    host_data: Option<HexList>,
    id_key_digests: Option<HexList>,
    author_key_digests: Option<HexList>,
    products: Option<Spanned<Vec<Spanned<String>>>>,
    min_report_version: Option<u32>,
}

const fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTcb {
    fmc: Option<u8>,
    bootloader: Option<u8>,
    tee: Option<u8>,
    snp: Option<u8>,
    microcode: Option<u8>,
}

// ---- the validated policy ----------------------------------------------------------------

/// What a passing appraisal yields: the SPIFFE ID and selector templates, the trust domain
/// and the SVID lifetime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySpec {
    pub(crate) trust_domain: TrustDomain,
    pub(crate) spiffe_id: Template,
    pub(crate) selectors: Vec<Template>,
    pub(crate) svid_ttl_seconds: u64,
}

impl IdentitySpec {
    /// The trust domain.
    pub const fn trust_domain(&self) -> &TrustDomain {
        &self.trust_domain
    }
    /// The SPIFFE ID template.
    pub const fn spiffe_id(&self) -> &Template {
        &self.spiffe_id
    }
    /// The selector templates.
    pub fn selectors(&self) -> &[Template] {
        &self.selectors
    }
    /// The SVID lifetime, in seconds.
    pub const fn svid_ttl_seconds(&self) -> u64 {
        self.svid_ttl_seconds
    }
}

/// TPM rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct TpmRules {
    pub(crate) pcrs: Vec<(HashAlg, u8, Vec<Digest>)>,
    pub(crate) require_secure_boot: bool,
    pub(crate) boot_applications: Option<Vec<Digest>>,
    pub(crate) cmdline_contains: Vec<String>,
    pub(crate) cmdline_excludes: Vec<String>,
    pub(crate) dbx_contains: Option<Vec<Digest>>,
    pub(crate) roots: Option<Vec<Digest>>,
    pub(crate) ek_hashes: Option<Vec<Digest>>,
    pub(crate) ak_hashes: Option<Vec<Digest>>,
}

impl TpmRules {
    pub(crate) fn has_boot_rules(&self) -> bool {
        self.require_secure_boot
            || self.boot_applications.is_some()
            || !self.cmdline_contains.is_empty()
            || !self.cmdline_excludes.is_empty()
            || self.dbx_contains.is_some()
    }
}

/// Nitro rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NitroRules {
    pub(crate) pcrs: Vec<(u8, Vec<Digest>)>,
    pub(crate) allow_debug: bool,
    pub(crate) max_age_seconds: Option<u64>,
}

/// SEV-SNP rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnpRules {
    pub(crate) measurements: Option<Vec<Vec<u8>>>,
    pub(crate) min_tcb: Vec<(TcbComponent, u8)>,
    pub(crate) allow_debug: bool,
    pub(crate) allow_migration_agent: bool,
    pub(crate) allow_smt: bool,
    pub(crate) host_data: Option<Vec<Vec<u8>>>,
    pub(crate) id_key_digests: Option<Vec<Vec<u8>>>,
    pub(crate) author_key_digests: Option<Vec<Vec<u8>>>,
    pub(crate) products: Option<Vec<Product>>,
    pub(crate) min_report_version: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rules {
    Tpm(TpmRules),
    Nitro(NitroRules),
    Snp(SnpRules),
}

/// A validated policy for one deployment target, named and versioned by the SHA-256 of
/// its exact text. Made only by [`Policy::parse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    name: String,
    hash: Digest,
    description: Option<String>,
    identity: IdentitySpec,
    pub(crate) rules: Rules,
}

impl Policy {
    /// Parses and validates a policy. `source` names the text in errors (usually its path).
    ///
    /// # Errors
    /// [`Error::TooLarge`]; [`Error::Syntax`] for TOML and schema errors (unknown keys,
    /// wrong types, missing fields); [`Error::BadHex`], [`Error::BadTemplate`] and
    /// [`Error::InvalidValue`] for values — each with the file, line and column.
    pub fn parse(source: &str, text: &str) -> Result<Self, Error> {
        if text.len() > MAX_POLICY_LEN {
            return Err(Error::TooLarge {
                source_name: source.to_owned(),
                len: text.len(),
                max: MAX_POLICY_LEN,
            });
        }
        let raw: RawPolicy = toml::from_str(text).map_err(|e| Error::Syntax {
            location: Location::of(source, text, e.span().map_or(0, |s| s.start)),
            message: e.message().to_owned(),
        })?;
        let cx = Cx { source, text };
        cx.validate(raw, plinth_crypto::digest(HashAlg::Sha256, text.as_bytes()))
    }

    /// The policy's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// SHA-256 of the policy text as given: the policy's version.
    pub const fn hash(&self) -> &Digest {
        &self.hash
    }
    /// The free-text description, when given.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    /// The platform the policy appraises.
    pub const fn platform(&self) -> PolicyPlatform {
        match self.rules {
            Rules::Tpm(_) => PolicyPlatform::Tpm,
            Rules::Nitro(_) => PolicyPlatform::Nitro,
            Rules::Snp(_) => PolicyPlatform::Snp,
        }
    }
    /// What a passing appraisal yields.
    pub const fn identity(&self) -> &IdentitySpec {
        &self.identity
    }

    /// TPM policies: the PCRs a quote must cover for this policy to be decided, per bank
    /// (ascending): every PCR a rule names, and when boot rules need the event log, SHA-256
    /// PCRs 0–9 (firmware, boot applications, Secure Boot state, command line), against
    /// which the log is replayed. Empty for other platforms.
    pub fn tpm_pcr_selection(&self) -> BTreeMap<HashAlg, Vec<u8>> {
        let mut selection: BTreeMap<HashAlg, Vec<u8>> = BTreeMap::new();
        if let Rules::Tpm(rules) = &self.rules {
            for (bank, index, _) in &rules.pcrs {
                selection.entry(*bank).or_default().push(*index);
            }
            if rules.has_boot_rules() {
                selection
                    .entry(HashAlg::Sha256)
                    .or_default()
                    .extend(0..=BOOT_LOG_LAST_PCR);
            }
        }
        for pcrs in selection.values_mut() {
            pcrs.sort_unstable();
            pcrs.dedup();
        }
        selection
    }
}

/// The last PCR the boot rules read through the event log (PCRs 8 and 9: the command line
/// and files measured by the boot loader).
const BOOT_LOG_LAST_PCR: u8 = 9;

struct Cx<'a> {
    source: &'a str,
    text: &'a str,
}

impl Cx<'_> {
    fn at(&self, span: &Range<usize>) -> Location {
        Location::of(self.source, self.text, span.start)
    }

    fn invalid<T>(
        &self,
        span: &Range<usize>,
        field: &'static str,
        reason: impl Into<String>,
    ) -> Result<T, Error> {
        Err(Error::InvalidValue {
            location: self.at(span),
            field,
            reason: reason.into(),
        })
    }

    fn hex(
        &self,
        value: &Spanned<String>,
        field: &'static str,
        lens: &[usize],
        expected: &'static str,
    ) -> Result<Vec<u8>, Error> {
        match hex::decode(value.get_ref()) {
            Ok(bytes) if lens.contains(&bytes.len()) => Ok(bytes),
            _ => Err(Error::BadHex {
                location: self.at(&value.span()),
                field,
                expected,
            }),
        }
    }

    /// A non-empty list of hex values of one of `lens` bytes.
    fn hex_list(
        &self,
        list: &HexList,
        field: &'static str,
        lens: &[usize],
        expected: &'static str,
    ) -> Result<Vec<Vec<u8>>, Error> {
        if list.get_ref().is_empty() {
            return self.invalid(
                &list.span(),
                field,
                "an empty list allows nothing; leave the key out to have no rule",
            );
        }
        list.get_ref()
            .iter()
            .map(|v| self.hex(v, field, lens, expected))
            .collect()
    }

    /// A non-empty list of digests, the algorithm inferred from the length.
    fn digest_list(&self, list: &HexList, field: &'static str) -> Result<Vec<Digest>, Error> {
        let bytes = self.hex_list(list, field, &[20, 32, 48, 64], "20, 32, 48 or 64")?;
        Ok(bytes.iter().filter_map(|b| digest_of_len(b)).collect())
    }

    fn sha256_list(
        &self,
        list: Option<&HexList>,
        field: &'static str,
    ) -> Result<Option<Vec<Digest>>, Error> {
        list.map(|list| {
            let bytes = self.hex_list(list, field, &[32], "32")?;
            Ok(bytes
                .iter()
                .filter_map(|b| Digest::new(HashAlg::Sha256, b).ok())
                .collect())
        })
        .transpose()
    }

    fn pcr_index(
        &self,
        key: &str,
        span: &Range<usize>,
        field: &'static str,
        allowed: &[u8],
    ) -> Result<u8, Error> {
        match key.parse::<u8>() {
            Ok(index) if allowed.contains(&index) => Ok(index),
            _ => self.invalid(
                span,
                field,
                format!("PCR {key:?} is not one of {allowed:?}"),
            ),
        }
    }

    fn validate(&self, raw: RawPolicy, hash: Digest) -> Result<Policy, Error> {
        if *raw.version.get_ref() != POLICY_FORMAT_VERSION {
            return self.invalid(
                &raw.version.span(),
                "version",
                format!("this plinth reads policy version {POLICY_FORMAT_VERSION}"),
            );
        }
        let name = raw.name.get_ref();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
        {
            return self.invalid(
                &raw.name.span(),
                "name",
                "use letters, digits, '.', '-' and '_'",
            );
        }
        let platform = match raw.platform.get_ref().as_str() {
            "tpm" => PolicyPlatform::Tpm,
            "nitro" => PolicyPlatform::Nitro,
            "snp" => PolicyPlatform::Snp,
            other => {
                return self.invalid(
                    &raw.platform.span(),
                    "platform",
                    format!("{other:?} is not tpm, nitro or snp"),
                );
            }
        };
        let span = raw.platform.span();
        let rules = match (platform, raw.tpm, raw.nitro, raw.snp) {
            (PolicyPlatform::Tpm, Some(tpm), None, None) => Rules::Tpm(self.tpm(&tpm)?),
            (PolicyPlatform::Nitro, None, Some(nitro), None) => Rules::Nitro(self.nitro(&nitro)?),
            (PolicyPlatform::Snp, None, None, Some(snp)) => Rules::Snp(self.snp(&snp)?),
            (platform, ..) => {
                return self.invalid(
                    &span,
                    "platform",
                    format!(
                        "a {0} policy needs a [{0}] section and no other platform's",
                        platform.name()
                    ),
                );
            }
        };
        let measures = match &rules {
            Rules::Tpm(tpm) => !tpm.pcrs.is_empty() || tpm.boot_applications.is_some(),
            Rules::Nitro(nitro) => !nitro.pcrs.is_empty(),
            Rules::Snp(snp) => snp.measurements.is_some() || snp.id_key_digests.is_some(),
        };
        if !measures {
            return self.invalid(
                &span,
                "platform",
                "the policy checks no measurement (TPM: pcrs or boot_applications; Nitro: pcrs; \
                 SEV-SNP: measurements or id_key_digests), so it would affirm any software",
            );
        }
        let identity = self.identity(&raw.identity, platform)?;
        Ok(Policy {
            name: name.clone(),
            hash,
            description: raw.description,
            identity,
            rules,
        })
    }

    fn template(
        &self,
        value: &Spanned<String>,
        platform: PolicyPlatform,
    ) -> Result<Template, Error> {
        Template::parse(value.get_ref(), platform.claim_names()).map_err(|reason| {
            Error::BadTemplate {
                location: self.at(&value.span()),
                reason,
            }
        })
    }

    fn identity(&self, raw: &RawIdentity, platform: PolicyPlatform) -> Result<IdentitySpec, Error> {
        let trust_domain = TrustDomain::new(raw.trust_domain.get_ref())
            .or_else(|e| self.invalid(&raw.trust_domain.span(), "trust_domain", e.to_string()))?;
        let spiffe_id = self.template(&raw.spiffe_id, platform)?;
        // Every claim rendered as a placeholder value must give a valid SPIFFE ID.
        let sample: BTreeMap<String, String> = platform
            .claim_names()
            .iter()
            .map(|n| {
                (
                    (*n).to_owned(),
                    if *n == "trust_domain" {
                        trust_domain.as_str().to_owned()
                    } else {
                        "x".to_owned()
                    },
                )
            })
            .collect();
        let rendered = spiffe_id.render(&sample).unwrap_or_default();
        if let Err(e) = plinth_core::SpiffeId::parse(&rendered) {
            return Err(Error::BadTemplate {
                location: self.at(&raw.spiffe_id.span()),
                reason: format!("does not make a SPIFFE ID: {e}"),
            });
        }
        if !spiffe_id
            .claims()
            .any(|c| c != "trust_domain" && c != "policy")
        {
            return Err(Error::BadTemplate {
                location: self.at(&raw.spiffe_id.span()),
                reason: "uses no identifying claim, so every node would get the same ID".to_owned(),
            });
        }
        let selectors = raw
            .selectors
            .iter()
            .map(|s| {
                let t = self.template(s, platform)?;
                if s.get_ref().contains(':') {
                    Ok(t)
                } else {
                    Err(Error::BadTemplate {
                        location: self.at(&s.span()),
                        reason: "a selector is type:value".to_owned(),
                    })
                }
            })
            .collect::<Result<_, _>>()?;
        let ttl = *raw.svid_ttl_seconds.get_ref();
        if ttl == 0 || ttl > MAX_SVID_TTL_SECONDS {
            return self.invalid(
                &raw.svid_ttl_seconds.span(),
                "svid_ttl_seconds",
                format!("must be 1..={MAX_SVID_TTL_SECONDS}"),
            );
        }
        Ok(IdentitySpec {
            trust_domain,
            spiffe_id,
            selectors,
            svid_ttl_seconds: ttl,
        })
    }

    fn tpm(&self, raw: &RawTpm) -> Result<TpmRules, Error> {
        let mut rules = TpmRules::default();
        let all: Vec<u8> = (0..=23).collect();
        for (bank, values) in &raw.pcrs {
            let Ok(alg) = bank.parse::<HashAlg>() else {
                return self.invalid(&values.span(), "tpm.pcrs", format!("unknown bank {bank:?}"));
            };
            for (index, list) in values.get_ref() {
                let index = self.pcr_index(index, &list.span(), "tpm.pcrs", &all)?;
                let lens = [alg.output_len()];
                let expected = match alg {
                    HashAlg::Sha1 => "20",
                    HashAlg::Sha256 => "32",
                    HashAlg::Sha384 => "48",
                    HashAlg::Sha512 => "64",
                };
                let allowed = self
                    .hex_list(list, "tpm.pcrs", &lens, expected)?
                    .iter()
                    .filter_map(|b| Digest::new(alg, b).ok())
                    .collect();
                rules.pcrs.push((alg, index, allowed));
            }
        }
        if let Some(boot) = &raw.boot {
            rules.require_secure_boot = boot.require_secure_boot;
            rules.boot_applications = boot
                .boot_applications
                .as_ref()
                .map(|l| self.digest_list(l, "tpm.boot.boot_applications"))
                .transpose()?;
            rules.cmdline_contains.clone_from(&boot.cmdline_contains);
            rules.cmdline_excludes.clone_from(&boot.cmdline_excludes);
            rules.dbx_contains =
                self.sha256_list(boot.dbx_contains.as_ref(), "tpm.boot.dbx_contains")?;
        }
        if let Some(identity) = &raw.identity {
            rules.roots = self.sha256_list(identity.roots.as_ref(), "tpm.identity.roots")?;
            rules.ek_hashes =
                self.sha256_list(identity.ek_hashes.as_ref(), "tpm.identity.ek_hashes")?;
            rules.ak_hashes =
                self.sha256_list(identity.ak_hashes.as_ref(), "tpm.identity.ak_hashes")?;
        }
        Ok(rules)
    }

    fn nitro(&self, raw: &RawNitro) -> Result<NitroRules, Error> {
        let pcrs = raw
            .pcrs
            .iter()
            .map(|(index, list)| {
                let index =
                    self.pcr_index(index, &list.span(), "nitro.pcrs", &[0, 1, 2, 3, 4, 8])?;
                let allowed = self
                    .hex_list(list, "nitro.pcrs", &[48], "48")?
                    .iter()
                    .filter_map(|b| Digest::new(HashAlg::Sha384, b).ok())
                    .collect();
                Ok((index, allowed))
            })
            .collect::<Result<_, Error>>()?;
        if let Some(age) = raw.max_age_seconds.as_ref().filter(|a| *a.get_ref() == 0) {
            return self.invalid(&age.span(), "nitro.max_age_seconds", "must be at least 1");
        }
        Ok(NitroRules {
            pcrs,
            allow_debug: raw.allow_debug,
            max_age_seconds: raw.max_age_seconds.as_ref().map(|a| *a.get_ref()),
        })
    }

    fn snp(&self, raw: &RawSnp) -> Result<SnpRules, Error> {
        let list = |l: Option<&HexList>, field, len: usize, expected| {
            l.map(|l| self.hex_list(l, field, &[len], expected))
                .transpose()
        };
        let min_tcb = raw.min_tcb.as_ref().map_or_else(Vec::new, |t| {
            [
                (TcbComponent::Fmc, t.fmc),
                (TcbComponent::Bootloader, t.bootloader),
                (TcbComponent::Tee, t.tee),
                (TcbComponent::Snp, t.snp),
                (TcbComponent::Microcode, t.microcode),
            ]
            .into_iter()
            .filter_map(|(c, v)| v.map(|v| (c, v)))
            .collect()
        });
        let products = raw
            .products
            .as_ref()
            .map(|list| {
                if list.get_ref().is_empty() {
                    return self.invalid(
                        &list.span(),
                        "snp.products",
                        "an empty list allows nothing; leave the key out to have no rule",
                    );
                }
                list.get_ref()
                    .iter()
                    .map(|p| {
                        Product::ALL
                            .into_iter()
                            .find(|known| known.name().eq_ignore_ascii_case(p.get_ref()))
                            .map_or_else(
                                || {
                                    self.invalid(
                                        &p.span(),
                                        "snp.products",
                                        format!("{:?} is not Milan, Genoa or Turin", p.get_ref()),
                                    )
                                },
                                Ok,
                            )
                    })
                    .collect()
            })
            .transpose()?;
        Ok(SnpRules {
            measurements: list(raw.measurements.as_ref(), "snp.measurements", 48, "48")?,
            min_tcb,
            allow_debug: raw.allow_debug,
            allow_migration_agent: raw.allow_migration_agent,
            allow_smt: raw.allow_smt,
            host_data: list(raw.host_data.as_ref(), "snp.host_data", 32, "32")?,
            id_key_digests: list(raw.id_key_digests.as_ref(), "snp.id_key_digests", 48, "48")?,
            author_key_digests: list(
                raw.author_key_digests.as_ref(),
                "snp.author_key_digests",
                48,
                "48",
            )?,
            products,
            min_report_version: raw.min_report_version,
        })
    }
}

fn digest_of_len(bytes: &[u8]) -> Option<Digest> {
    let alg = match bytes.len() {
        20 => HashAlg::Sha1,
        32 => HashAlg::Sha256,
        48 => HashAlg::Sha384,
        _ => HashAlg::Sha512,
    };
    Digest::new(alg, bytes).ok()
}
