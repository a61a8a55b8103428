//! The appraisal: every rule's outcome, the AR4SI trust vector, the verdict and, when it
//! passes, the identity to mint.

use std::collections::BTreeMap;
use std::fmt;

use plinth_core::{Digest, SpiffeId, UnixTime};
use plinth_nitro::VerifiedDocument;
use plinth_snp::VerifiedReport;

use crate::policy::{Policy, PolicyPlatform, Rules};
use crate::template::RenderError;
use crate::tpm::TpmEvidence;

/// Verified evidence, as only the platform crates make it.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum Evidence<'a> {
    /// A verified TPM quote, its verified event log and the TPM's verified identity.
    Tpm(TpmEvidence<'a>),
    /// A verified Nitro attestation document.
    Nitro(&'a VerifiedDocument),
    /// A verified SEV-SNP report.
    Snp(&'a VerifiedReport),
}

impl Evidence<'_> {
    /// The platform of the evidence.
    pub const fn platform(&self) -> PolicyPlatform {
        match self {
            Self::Tpm(_) => PolicyPlatform::Tpm,
            Self::Nitro(_) => PolicyPlatform::Nitro,
            Self::Snp(_) => PolicyPlatform::Snp,
        }
    }
}

/// The overall result, in AR4SI's tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Verdict {
    /// Every rule passed.
    Affirming,
    /// No rule failed, but at least one passed only with a warning (for example a debug
    /// enclave the policy allows).
    Warning,
    /// At least one rule failed.
    Contraindicated,
}

impl Verdict {
    /// The EAR status name (`affirming`, `warning`, `contraindicated`).
    pub const fn name(self) -> &'static str {
        match self {
            Self::Affirming => "affirming",
            Self::Warning => "warning",
            Self::Contraindicated => "contraindicated",
        }
    }

    /// Whether the verdict allows an identity to be minted (affirming or warning).
    pub const fn passes(self) -> bool {
        matches!(self, Self::Affirming | Self::Warning)
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The outcome of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Outcome {
    /// The observed value meets the rule.
    Pass,
    /// Allowed by the policy, but worth a reviewer's attention.
    Warn,
    /// The observed value breaks the rule.
    Fail,
}

impl Outcome {
    /// `pass`, `warn` or `fail`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

/// The AR4SI trustworthiness claims (draft-ietf-rats-ar4si), in their fixed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Component {
    /// `instance-identity`.
    InstanceIdentity,
    /// `configuration`.
    Configuration,
    /// `executables`.
    Executables,
    /// `file-system`.
    FileSystem,
    /// `hardware`.
    Hardware,
    /// `runtime-opaque`.
    RuntimeOpaque,
    /// `storage-opaque`.
    StorageOpaque,
    /// `sourced-data`.
    SourcedData,
}

impl Component {
    /// Every component, in AR4SI's order.
    pub const ALL: [Self; 8] = [
        Self::InstanceIdentity,
        Self::Configuration,
        Self::Executables,
        Self::FileSystem,
        Self::Hardware,
        Self::RuntimeOpaque,
        Self::StorageOpaque,
        Self::SourcedData,
    ];

    /// The AR4SI / EAR JSON name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::InstanceIdentity => "instance-identity",
            Self::Configuration => "configuration",
            Self::Executables => "executables",
            Self::FileSystem => "file-system",
            Self::Hardware => "hardware",
            Self::RuntimeOpaque => "runtime-opaque",
            Self::StorageOpaque => "storage-opaque",
            Self::SourcedData => "sourced-data",
        }
    }

    const fn index(self) -> usize {
        match self {
            Self::InstanceIdentity => 0,
            Self::Configuration => 1,
            Self::Executables => 2,
            Self::FileSystem => 3,
            Self::Hardware => 4,
            Self::RuntimeOpaque => 5,
            Self::StorageOpaque => 6,
            Self::SourcedData => 7,
        }
    }
}

/// AR4SI claim values used here. 0: no claim; 2: affirming (for example "approved
/// configuration", "genuine hardware"); 32: warning; 96: contraindicated.
pub mod tier {
    /// No claim is made.
    pub const NONE: i8 = 0;
    /// Affirming.
    pub const AFFIRMING: i8 = 2;
    /// Warning.
    pub const WARNING: i8 = 32;
    /// Contraindicated.
    pub const CONTRAINDICATED: i8 = 96;
}

/// An AR4SI trustworthiness vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrustVector([i8; 8]);

impl TrustVector {
    /// The claim of one component (see [`tier`]).
    pub fn get(&self, component: Component) -> i8 {
        match self.0.get(component.index()) {
            Some(v) => *v,
            None => tier::NONE,
        }
    }

    /// Every component with a claim other than "none".
    pub fn claims(&self) -> impl Iterator<Item = (Component, i8)> + '_ {
        Component::ALL
            .into_iter()
            .map(|c| (c, self.get(c)))
            .filter(|(_, v)| *v != tier::NONE)
    }

    /// The claims as a JSON object keyed by component name, as the EAR and the CLI print it.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        self.claims()
            .map(|(c, v)| (c.name().to_owned(), serde_json::json!(v)))
            .collect()
    }

    /// Raises a component to at least `value` (worse wins).
    pub(crate) fn raise(&mut self, component: Component, value: i8) {
        if let Some(slot) = self.0.get_mut(component.index()) {
            *slot = (*slot).max(value);
        }
    }
}

/// One rule, evaluated: what it is, what it saw, what it wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleResult {
    rule: String,
    component: Component,
    outcome: Outcome,
    observed: String,
    expected: String,
}

impl RuleResult {
    /// The rule's name: its key in the policy file (`snp.min_tcb.microcode`,
    /// `tpm.pcrs.sha256.7`).
    pub fn rule(&self) -> &str {
        &self.rule
    }
    /// The trust-vector component it bears on.
    pub const fn component(&self) -> Component {
        self.component
    }
    /// Pass, warn or fail.
    pub const fn outcome(&self) -> Outcome {
        self.outcome
    }
    /// What the evidence showed.
    pub fn observed(&self) -> &str {
        &self.observed
    }
    /// What the policy asked for.
    pub fn expected(&self) -> &str {
        &self.expected
    }
    /// Rule, outcome, observed and expected as a JSON object (the EAR's `plinth.rules` entry).
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        let mut object = serde_json::Map::new();
        for (key, value) in [
            ("rule", &self.rule),
            ("outcome", &self.outcome.name().to_owned()),
            ("observed", &self.observed),
            ("expected", &self.expected),
        ] {
            let _previous = object.insert(key.to_owned(), serde_json::json!(value));
        }
        object
    }
}

/// The identity a passing appraisal yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppraisedIdentity {
    spiffe_id: SpiffeId,
    selectors: Vec<String>,
    svid_ttl_seconds: u64,
}

impl AppraisedIdentity {
    /// The SPIFFE ID.
    pub const fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }
    /// The selectors (`type:value`).
    pub fn selectors(&self) -> &[String] {
        &self.selectors
    }
    /// The SVID lifetime, in seconds.
    pub const fn svid_ttl_seconds(&self) -> u64 {
        self.svid_ttl_seconds
    }
}

/// The result of appraising verified evidence against a policy. Made only by [`appraise`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appraisal {
    policy_name: String,
    policy_hash: Digest,
    platform: PolicyPlatform,
    appraised_at: UnixTime,
    verdict: Verdict,
    trust_vector: TrustVector,
    rules: Vec<RuleResult>,
    claims: BTreeMap<String, String>,
    identity: Option<AppraisedIdentity>,
}

impl Appraisal {
    /// The name of the policy applied.
    pub fn policy_name(&self) -> &str {
        &self.policy_name
    }
    /// The SHA-256 of the policy text applied.
    pub const fn policy_hash(&self) -> &Digest {
        &self.policy_hash
    }
    /// The platform of the policy.
    pub const fn platform(&self) -> PolicyPlatform {
        self.platform
    }
    /// The `now` the appraisal was made at.
    pub const fn appraised_at(&self) -> UnixTime {
        self.appraised_at
    }
    /// The verdict.
    pub const fn verdict(&self) -> Verdict {
        self.verdict
    }
    /// The AR4SI trustworthiness vector.
    pub const fn trust_vector(&self) -> &TrustVector {
        &self.trust_vector
    }
    /// Every rule evaluated, in policy order.
    pub fn rules(&self) -> &[RuleResult] {
        &self.rules
    }
    /// The rules that failed.
    pub fn failures(&self) -> impl Iterator<Item = &RuleResult> {
        self.rules.iter().filter(|r| r.outcome == Outcome::Fail)
    }
    /// The claims templates could use, drawn from the evidence.
    pub const fn claims(&self) -> &BTreeMap<String, String> {
        &self.claims
    }
    /// The identity to mint: present only when the verdict passes.
    pub const fn identity(&self) -> Option<&AppraisedIdentity> {
        self.identity.as_ref()
    }
}

/// Collects rule results and the trust vector while a platform's rules run.
#[derive(Debug, Default)]
pub(crate) struct Recorder {
    pub(crate) rules: Vec<RuleResult>,
    pub(crate) vector: TrustVector,
    pub(crate) claims: BTreeMap<String, String>,
}

impl Recorder {
    pub(crate) fn record(
        &mut self,
        rule: impl Into<String>,
        component: Component,
        outcome: Outcome,
        observed: impl Into<String>,
        expected: impl Into<String>,
    ) {
        self.vector.raise(
            component,
            match outcome {
                Outcome::Pass => tier::AFFIRMING,
                Outcome::Warn => tier::WARNING,
                Outcome::Fail => tier::CONTRAINDICATED,
            },
        );
        self.rules.push(RuleResult {
            rule: rule.into(),
            component,
            outcome,
            observed: observed.into(),
            expected: expected.into(),
        });
    }

    /// Records a pass when `ok`, a failure otherwise.
    pub(crate) fn check(
        &mut self,
        rule: impl Into<String>,
        component: Component,
        ok: bool,
        observed: impl Into<String>,
        expected: impl Into<String>,
    ) {
        let outcome = if ok { Outcome::Pass } else { Outcome::Fail };
        self.record(rule, component, outcome, observed, expected);
    }

    pub(crate) fn claim(&mut self, name: &str, value: impl Into<String>) {
        let _previous = self.claims.insert(name.to_owned(), value.into());
    }
}

/// Formats an allow-list for a rule's `expected` column.
pub(crate) fn one_of<T: fmt::Display>(values: impl IntoIterator<Item = T>) -> String {
    let list: Vec<String> = values.into_iter().map(|v| v.to_string()).collect();
    match list.as_slice() {
        [one] => one.clone(),
        _ => format!("one of [{}]", list.join(", ")),
    }
}

/// Appraises verified `evidence` against `policy` at `now`. Every rule is evaluated and
/// reported, whether or not an earlier one failed.
pub fn appraise(policy: &Policy, evidence: &Evidence<'_>, now: UnixTime) -> Appraisal {
    let mut rec = Recorder::default();
    let identity = policy.identity();
    rec.claim("trust_domain", identity.trust_domain().as_str());
    rec.claim("policy", policy.name());
    match (&policy.rules, evidence) {
        (Rules::Tpm(rules), Evidence::Tpm(tpm)) => crate::tpm::appraise(rules, tpm, &mut rec),
        (Rules::Nitro(rules), Evidence::Nitro(doc)) => {
            crate::nitro::appraise(rules, doc, now, &mut rec);
        }
        (Rules::Snp(rules), Evidence::Snp(report)) => crate::snp::appraise(rules, report, &mut rec),
        _ => rec.record(
            "platform",
            Component::InstanceIdentity,
            Outcome::Fail,
            evidence.platform().name(),
            policy.platform().name(),
        ),
    }
    // The identity is rendered for every appraisal, so a reviewer sees why it would fail.
    let rendered = render_identity(policy, &mut rec);
    let verdict = rec
        .rules
        .iter()
        .map(|r| match r.outcome {
            Outcome::Pass => Verdict::Affirming,
            Outcome::Warn => Verdict::Warning,
            Outcome::Fail => Verdict::Contraindicated,
        })
        .max()
        .unwrap_or(Verdict::Contraindicated);
    Appraisal {
        policy_name: policy.name().to_owned(),
        policy_hash: policy.hash().clone(),
        platform: policy.platform(),
        appraised_at: now,
        verdict,
        trust_vector: rec.vector,
        rules: rec.rules,
        claims: rec.claims,
        identity: rendered.filter(|_| verdict.passes()),
    }
}

fn render_error(e: &RenderError) -> String {
    match e {
        RenderError::Missing(name) => format!("the evidence has no {{{name}}}"),
        RenderError::Unsafe(name) => format!("{{{name}}} holds characters a SPIFFE ID may not"),
    }
}

fn render_identity(policy: &Policy, rec: &mut Recorder) -> Option<AppraisedIdentity> {
    let spec = policy.identity();
    let template = spec.spiffe_id();
    let id = match template.render(&rec.claims) {
        Ok(text) => match SpiffeId::parse(&text) {
            Ok(id) => {
                rec.record(
                    "identity.spiffe_id",
                    Component::InstanceIdentity,
                    Outcome::Pass,
                    text,
                    template.as_str(),
                );
                Some(id)
            }
            Err(e) => {
                rec.record(
                    "identity.spiffe_id",
                    Component::InstanceIdentity,
                    Outcome::Fail,
                    format!("{text}: {e}"),
                    template.as_str(),
                );
                None
            }
        },
        Err(e) => {
            rec.record(
                "identity.spiffe_id",
                Component::InstanceIdentity,
                Outcome::Fail,
                render_error(&e),
                template.as_str(),
            );
            None
        }
    };
    let mut selectors = Vec::new();
    for (i, template) in spec.selectors().iter().enumerate() {
        match template.render(&rec.claims) {
            Ok(text) => selectors.push(text),
            Err(e) => rec.record(
                format!("identity.selectors.{i}"),
                Component::InstanceIdentity,
                Outcome::Fail,
                render_error(&e),
                template.as_str(),
            ),
        }
    }
    id.map(|spiffe_id| AppraisedIdentity {
        spiffe_id,
        selectors,
        svid_ttl_seconds: spec.svid_ttl_seconds(),
    })
}
