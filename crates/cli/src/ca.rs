//! `plinth ca ...`, `plinth svid ...`, `plinth bundle ...`: the SPIFFE CA for operators
//! and tests. Every command works on a CA directory (`--dir`, default `./plinth-ca`).
//!
//! A CA whose keys are on a PKCS#11 token reads the user PIN from the environment
//! variable `PLINTH_PKCS11_PIN`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use plinth_ca::{
    Authority, AuthorityState, CaDir, InitOptions, KeyBackend, SignatureAlgorithm, UpstreamFiles,
};
use plinth_core::{BoundKey, SpiffeId, TrustDomain, UnixTime};
use plinth_crypto::SystemRandom;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::clock::verification_time;
use crate::input::read_evidence;
use crate::output::{out, out_raw};

/// The environment variable holding the PKCS#11 user PIN.
const PIN_VARIABLE: &str = "PLINTH_PKCS11_PIN";

#[derive(Args)]
pub(crate) struct DirArg {
    /// The CA directory.
    #[arg(long, default_value = "plinth-ca")]
    dir: PathBuf,
}

/// CA subcommands.
#[derive(Subcommand)]
pub(crate) enum CaCommand {
    /// Create a CA: its keys, a self-signed root (or a CA signed by an upstream CA), and
    /// its state, in a new directory.
    Init(InitArgs),
    /// Show the CA: trust domain, keys, authorities and their rotation states, expiry.
    Show(ShowArgs),
    /// Rotation step 1: create the next authority and publish it in the bundle.
    Prepare(PrepareArgs),
    /// Rotation step 2: the prepared authority starts signing (once it has been in the
    /// bundle for one refresh hint).
    Activate(RotateArgs),
    /// Rotation step 3: remove a superseded authority (once every SVID it signed has
    /// expired) and destroy its keys.
    Retire(RotateArgs),
}

#[derive(Args)]
pub(crate) struct InitArgs {
    #[command(flatten)]
    dir: DirArg,
    /// The trust domain (`example.org`).
    #[arg(long, value_parser = TrustDomain::new)]
    trust_domain: TrustDomain,
    /// The algorithm of the CA's keys.
    #[arg(long, default_value = "ecdsa-p256-sha256",
          value_parser = ["ecdsa-p256-sha256", "ecdsa-p384-sha384"])]
    algorithm: String,
    /// Lifetime of the CA certificates (`365d`, `12h`, `90m`, `3600s`).
    #[arg(long, default_value = "365d", value_parser = parse_duration)]
    ca_ttl: Duration,
    /// Default X.509-SVID lifetime.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    svid_ttl: Duration,
    /// Default JWT-SVID lifetime.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    jwt_ttl: Duration,
    /// The longest SVID lifetime the CA grants.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    max_ttl: Duration,
    /// The bundle's refresh hint; a prepared authority signs only after this long.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    refresh_hint: Duration,
    /// Sign SVIDs with an intermediate below the root; the root key signs only that.
    #[arg(long)]
    intermediate: bool,
    #[command(flatten)]
    upstream: UpstreamArgs,
    /// Keep the keys on a PKCS#11 token: the module (shared library) to load.
    #[arg(long, requires = "pkcs11_token")]
    pkcs11_module: Option<PathBuf>,
    /// The PKCS#11 token's label (the user PIN comes from PLINTH_PKCS11_PIN).
    #[arg(long, requires = "pkcs11_module")]
    pkcs11_token: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct UpstreamArgs {
    /// An upstream CA's certificate chain (PEM: its certificate first, its root last).
    #[arg(long, requires = "upstream_key")]
    upstream_cert: Option<PathBuf>,
    /// The upstream CA's private key (PKCS#8, PEM or DER, mode 0600).
    #[arg(long, requires = "upstream_cert")]
    upstream_key: Option<PathBuf>,
}

impl UpstreamArgs {
    fn files(&self) -> Option<UpstreamFiles> {
        match (&self.upstream_cert, &self.upstream_key) {
            (Some(certificates), Some(key)) => Some(UpstreamFiles {
                certificates: certificates.clone(),
                key: key.clone(),
            }),
            _ => None,
        }
    }
}

#[derive(Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Print machine-readable JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
pub(crate) struct PrepareArgs {
    #[command(flatten)]
    dir: DirArg,
    #[command(flatten)]
    upstream: UpstreamArgs,
}

#[derive(Args)]
pub(crate) struct RotateArgs {
    #[command(flatten)]
    dir: DirArg,
    /// The authority (default: the prepared one for activate, the oldest superseded one
    /// for retire).
    #[arg(long)]
    id: Option<u32>,
}

/// SVID subcommands.
#[derive(Subcommand)]
pub(crate) enum SvidCommand {
    /// Mint an X.509-SVID for a public key; prints the chain as PEM, leaf first.
    Mint(MintArgs),
    /// Mint a JWT-SVID; prints the token.
    Jwt(JwtArgs),
}

#[derive(Args)]
pub(crate) struct MintArgs {
    #[command(flatten)]
    dir: DirArg,
    /// The SPIFFE ID (`spiffe://example.org/workload`).
    #[arg(long, value_parser = SpiffeId::parse)]
    spiffe_id: SpiffeId,
    /// The public key to certify: a SubjectPublicKeyInfo (PEM `PUBLIC KEY` or DER). The
    /// operator vouches for it; plinth's server mints only for keys evidence has bound.
    #[arg(long)]
    public_key: PathBuf,
    /// Lifetime (default: the CA's X.509-SVID lifetime).
    #[arg(long, value_parser = parse_duration)]
    ttl: Option<Duration>,
    /// Write the chain here instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Args)]
pub(crate) struct JwtArgs {
    #[command(flatten)]
    dir: DirArg,
    /// The SPIFFE ID (`sub`).
    #[arg(long, value_parser = SpiffeId::parse)]
    spiffe_id: SpiffeId,
    /// An audience (`aud`); repeat for several.
    #[arg(long, required = true)]
    audience: Vec<String>,
    /// Lifetime (default: the CA's JWT-SVID lifetime).
    #[arg(long, value_parser = parse_duration)]
    ttl: Option<Duration>,
}

/// Bundle subcommands.
#[derive(Subcommand)]
pub(crate) enum BundleCommand {
    /// Print the trust bundle: the X.509 authorities as PEM, or with `--jwks` the SPIFFE
    /// bundle (JWKS with x509-svid and jwt-svid keys and a refresh hint).
    Show(BundleShowArgs),
}

#[derive(Args)]
pub(crate) struct BundleShowArgs {
    #[command(flatten)]
    dir: DirArg,
    /// Print the SPIFFE bundle (JWKS) instead of PEM.
    #[arg(long)]
    jwks: bool,
}

/// Parses `90s`, `15m`, `1h`, `365d`, or a bare number of seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |i| text.split_at(i));
    let value: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 15m, 1h, 365d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    };
    value
        .checked_mul(scale)
        .map(Duration::from_secs)
        .ok_or_else(|| "duration too long".to_owned())
}

fn pin() -> Option<Zeroizing<String>> {
    std::env::var(PIN_VARIABLE).ok().map(Zeroizing::new)
}

fn now() -> Result<UnixTime> {
    verification_time(None)
}

fn open(dir: &DirArg) -> Result<CaDir> {
    CaDir::open(&dir.dir, pin(), now()?)
        .with_context(|| format!("opening the CA in {}", dir.dir.display()))
}

fn finish(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("plinth: {}", crate::output::reason(&error));
            ExitCode::FAILURE
        }
    }
}

pub(crate) fn run_ca(command: CaCommand) -> ExitCode {
    finish(match command {
        CaCommand::Init(args) => init(&args),
        CaCommand::Show(args) => open(&args.dir).map(|store| print_show(&store, args.json)),
        CaCommand::Prepare(args) => prepare(&args),
        CaCommand::Activate(args) => activate(&args),
        CaCommand::Retire(args) => retire(&args),
    })
}

pub(crate) fn run_svid(command: SvidCommand) -> ExitCode {
    finish(match command {
        SvidCommand::Mint(args) => mint(&args),
        SvidCommand::Jwt(args) => jwt(&args),
    })
}

pub(crate) fn run_bundle(command: BundleCommand) -> ExitCode {
    finish(match command {
        BundleCommand::Show(args) => open(&args.dir).map(|store| {
            let bundle = store.ca().bundle();
            if args.jwks {
                out!("{}", bundle.to_spiffe_jwks());
            } else {
                out_raw!("{}", bundle.x509_pem());
            }
        }),
    })
}

fn init(args: &InitArgs) -> Result<()> {
    let mut options = InitOptions::new(args.trust_domain.clone());
    options.algorithm =
        SignatureAlgorithm::from_name(&args.algorithm).context("unknown algorithm")?;
    options.ca_ttl = args.ca_ttl;
    options.config.x509_svid_ttl = args.svid_ttl;
    options.config.jwt_svid_ttl = args.jwt_ttl;
    options.config.max_svid_ttl = args.max_ttl;
    options.config.refresh_hint = args.refresh_hint;
    options.intermediate = args.intermediate;
    let pin = match (&args.pkcs11_module, &args.pkcs11_token) {
        (Some(module), Some(token_label)) => {
            options.backend = KeyBackend::Pkcs11 {
                module: module.clone(),
                token_label: token_label.clone(),
            };
            Some(pin().with_context(|| format!("set {PIN_VARIABLE} to the token's user PIN"))?)
        }
        _ => None,
    };
    let upstream = args.upstream.files();
    let store = CaDir::init(
        &args.dir.dir,
        &options,
        upstream.as_ref(),
        pin,
        now()?,
        &SystemRandom,
    )
    .with_context(|| format!("creating a CA in {}", args.dir.dir.display()))?;
    print_show(&store, args.json);
    Ok(())
}

fn prepare(args: &PrepareArgs) -> Result<()> {
    let mut store = open(&args.dir)?;
    let id = store.prepare(args.upstream.files().as_ref(), now()?, &SystemRandom)?;
    let hint = store.ca().config().refresh_hint;
    out!(
        "authority {id} prepared and published in the bundle; activate it after {}s",
        hint.as_secs()
    );
    Ok(())
}

fn activate(args: &RotateArgs) -> Result<()> {
    let mut store = open(&args.dir)?;
    let id = match args.id {
        Some(id) => id,
        None => pick(&store, AuthorityState::Prepared).context("no authority is prepared")?,
    };
    store.activate(id, now()?)?;
    out!("authority {id} is active");
    Ok(())
}

fn retire(args: &RotateArgs) -> Result<()> {
    let mut store = open(&args.dir)?;
    let id = match args.id {
        Some(id) => id,
        None => pick(&store, AuthorityState::Superseded).context("no authority is superseded")?,
    };
    store.retire(id, now()?)?;
    out!("authority {id} retired: removed from the bundle, keys destroyed");
    Ok(())
}

fn pick(store: &CaDir, state: plinth_ca::AuthorityState) -> Option<u32> {
    store
        .ca()
        .authorities()
        .iter()
        .find(|a| a.state() == state)
        .map(Authority::id)
}

fn mint(args: &MintArgs) -> Result<()> {
    let store = open(&args.dir)?;
    let spki = read_evidence(&args.public_key)?;
    let key = BoundKey::from_spki_der(spki);
    let svid = store
        .ca()
        .mint_x509_svid(&args.spiffe_id, &key, args.ttl, now()?, &SystemRandom)?;
    match &args.out {
        Some(path) => std::fs::write(path, svid.chain_pem())
            .with_context(|| format!("writing {}", path.display()))?,
        None => out_raw!("{}", svid.chain_pem()),
    }
    Ok(())
}

fn jwt(args: &JwtArgs) -> Result<()> {
    let store = open(&args.dir)?;
    let svid = store
        .ca()
        .mint_jwt_svid(&args.spiffe_id, &args.audience, args.ttl, now()?)?;
    out!("{}", svid.token());
    Ok(())
}

fn authority_json(authority: &Authority) -> Value {
    let times = authority.times();
    let signing = authority.certificates().first();
    json!({
        "id": authority.id(),
        "state": authority.state().name(),
        "not_before": authority.not_before().to_string(),
        "not_after": authority.not_after().to_string(),
        "prepared_at": times.prepared_at.to_string(),
        "activated_at": times.activated_at.map(|t| t.to_string()),
        "superseded_at": times.superseded_at.map(|t| t.to_string()),
        "signing_certificate": signing.map(|c| c.subject().to_string()),
        "trust_anchor": authority.trust_anchor().map(|c| c.subject().to_string()),
        "trust_anchor_sha256": authority.trust_anchor().map(|c| c.fingerprint().to_hex()),
        "chain_length": authority.certificates().len(),
        "x509_key": format!("{:?}", authority.x509_signer()),
        "jwt_key_id": authority.jwt_key_id(),
    })
}

fn print_show(store: &CaDir, as_json: bool) {
    let ca = store.ca();
    let config = ca.config();
    let (backend_name, backend) = match store.backend() {
        KeyBackend::Pkcs11 {
            module,
            token_label,
        } => (
            "pkcs11",
            json!({ "type": "pkcs11", "module": module, "token_label": token_label }),
        ),
        _ => ("software", json!({ "type": "software" })),
    };
    if as_json {
        let value = json!({
            "directory": store.path(),
            "trust_domain": ca.trust_domain().as_str(),
            "algorithm": store.algorithm().name(),
            "backend": backend,
            "intermediate": store.has_intermediate(),
            "upstream": store.has_upstream(),
            "bundle_sequence": ca.sequence(),
            "x509_svid_ttl_secs": config.x509_svid_ttl.as_secs(),
            "jwt_svid_ttl_secs": config.jwt_svid_ttl.as_secs(),
            "max_svid_ttl_secs": config.max_svid_ttl.as_secs(),
            "refresh_hint_secs": config.refresh_hint.as_secs(),
            "authorities": ca.authorities().iter().map(authority_json).collect::<Vec<_>>(),
        });
        out!("{value:#}");
        return;
    }
    out!(
        "CA for spiffe://{} in {}",
        ca.trust_domain(),
        store.path().display()
    );
    out!(
        "  keys: {} ({}), {}{}",
        store.algorithm().name(),
        backend_name,
        if store.has_upstream() {
            "signed by an upstream CA"
        } else {
            "self-signed root"
        },
        if store.has_intermediate() {
            ", with an intermediate"
        } else {
            ""
        }
    );
    out!(
        "  SVID lifetimes: X.509 {}s, JWT {}s, at most {}s; bundle refresh hint {}s, sequence {}",
        config.x509_svid_ttl.as_secs(),
        config.jwt_svid_ttl.as_secs(),
        config.max_svid_ttl.as_secs(),
        config.refresh_hint.as_secs(),
        ca.sequence()
    );
    for authority in ca.authorities() {
        let anchor = authority
            .trust_anchor()
            .map(|c| hex_prefix(c.fingerprint().as_bytes()))
            .unwrap_or_default();
        out!(
            "  authority {} {:<10} valid {} .. {}  anchor sha256:{}  jwt kid {}",
            authority.id(),
            authority.state(),
            authority.not_before(),
            authority.not_after(),
            anchor,
            authority.jwt_key_id()
        );
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    hex::encode(bytes.get(..8).unwrap_or(bytes))
}
