//! The `sealgate` binary: command-line edge of the library.

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use sealgate::admin::keys as admin_keys;
use sealgate::admin::queue::{self, Change, Location};
use sealgate::config::{load_file_checked, Config};
use sealgate::inspect::{self, report, InspectLimits};
use sealgate::spool::QueueId;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Sealgate secure email gateway.
#[derive(Parser)]
#[command(name = "sealgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the gateway (embedded defaults when no --config is given).
    Serve {
        /// Configuration file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Check a configuration file and report every error.
    CheckConfig {
        /// Configuration file.
        file: PathBuf,
    },
    /// Inspect and manage the queue (works with the gateway running or stopped).
    Queue {
        #[command(flatten)]
        at: Where,
        #[command(subcommand)]
        action: QueueCmd,
    },
    /// Outbound TLS memory: domains once delivered to with TLS, which are
    /// refused plain delivery from then on.
    Tls {
        #[command(flatten)]
        at: Where,
        #[command(subcommand)]
        action: TlsCmd,
    },
    /// Messages held by a DLP policy: list, show, release (sealed as chosen) or delete.
    Quarantine {
        #[command(flatten)]
        at: Where,
        #[command(subcommand)]
        action: QuarantineCmd,
    },
    /// The escrow portal: list held messages and where they stand, or withdraw one.
    Portal {
        #[command(flatten)]
        at: Where,
        #[command(subcommand)]
        action: PortalCmd,
    },
    /// The journal archive: list, show and verify archived mail (read-only,
    /// works while the gateway runs).
    Archive {
        #[command(flatten)]
        at: Where,
        #[command(subcommand)]
        action: ArchiveCmd,
    },
    /// Bearer tokens for the archive and audit API, each bound to a role.
    Token {
        #[command(flatten)]
        at: Where,
        #[command(subcommand)]
        action: TokenCmd,
    },
    /// The audit log (`<data_dir>/audit.log`, hash-chained).
    Audit {
        #[command(flatten)]
        at: Where,
        #[command(subcommand)]
        action: AuditCmd,
    },
    /// The keystore: recipients' OpenPGP keys and S/MIME certificates
    /// (works with the gateway running or stopped).
    Keys {
        #[command(flatten)]
        at: Where,
        #[command(subcommand)]
        action: KeysCmd,
    },
    /// Run inspect and policy on a message without sending it: per
    /// recipient, the verdict and why (DLP rules, tags, TLS level, the key
    /// that would seal it, the method chain, what happens if it fails).
    Explain {
        #[command(flatten)]
        at: Where,
        /// The sender (MAIL FROM).
        #[arg(long)]
        from: String,
        /// Recipients, comma-separated or repeated.
        #[arg(long, required = true, value_delimiter = ',')]
        to: Vec<String>,
        /// Treat the message as inbound (default: outbound, from a connector).
        #[arg(long)]
        inbound: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// The message (.eml); `-` reads standard input.
        file: PathBuf,
    },
    /// Data loss prevention: scan messages with the DLP rules, check the rules.
    Dlp {
        #[command(subcommand)]
        action: DlpCmd,
    },
}

#[derive(Subcommand)]
enum TlsCmd {
    /// List remembered domains and since when.
    Ls,
    /// Forget a domain, allowing plain delivery to it again (if its level allows).
    Forget {
        /// The domain.
        domain: String,
    },
}

#[derive(Subcommand)]
enum PortalCmd {
    /// List held messages: id, state, deposit and expiry, recipient, sender.
    Ls {
        /// JSON lines output.
        #[arg(long)]
        json: bool,
    },
    /// Withdraw a held message: its content and key are erased at once.
    Revoke {
        /// The portal message id (from `portal ls`).
        id: String,
    },
}

#[derive(Subcommand)]
enum QuarantineCmd {
    /// List held messages: id, time, sender, held recipients, expiry, rule.
    Ls {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Show a held message's envelope, DLP findings and verdicts.
    Show {
        /// Queue id.
        id: QueueId,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Release the held recipients: sealed with --seal, or by the configured
    /// method chain; refused (nothing changes) if that is impossible for one.
    Release {
        /// Queue id.
        id: QueueId,
        /// tls (verified), pgp, smime or portal.
        #[arg(long, value_parser = parse_seal)]
        seal: Option<sealgate::model::verdict::Seal>,
    },
    /// Delete the held recipients; the sender gets a DSN naming the rule.
    Delete {
        /// Queue id.
        id: QueueId,
    },
}

#[derive(Subcommand)]
enum HoldCmd {
    /// Place a hold (a named matter) on what a query finds and/or on mail
    /// from or to addresses.
    Add {
        /// The matter's name.
        name: String,
        /// An archive query (as for `archive search`).
        #[arg(long, allow_hyphen_values = true)]
        query: Option<String>,
        /// An address (repeat for more).
        #[arg(long = "address")]
        addresses: Vec<String>,
    },
    /// List holds.
    Ls {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Release a hold.
    Rm {
        /// The matter's name.
        name: String,
    },
}

#[derive(Subcommand)]
enum TokenCmd {
    /// Make a token (printed once; only its hash is stored).
    Create {
        /// archivist (search, read, export), auditor (audit log), admin (holds).
        #[arg(long)]
        role: sealgate::admin::tokens::Role,
        /// Who holds it.
        #[arg(long)]
        name: String,
    },
    /// Revoke a token.
    Revoke {
        /// Its name.
        name: String,
    },
    /// List tokens (names, roles, dates; never the tokens).
    Ls {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum AuditCmd {
    /// Walk the chain of the audit log; exit 1 naming the first line that
    /// does not follow from the one before.
    Verify {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum ArchiveCmd {
    /// List archived items: id, received, direction, sender, envelope
    /// recipients (Bcc included), size, subject.
    Ls {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Show an item: header facts and every relay's envelope and session.
    Show {
        /// Item id (from `archive ls`).
        id: u64,
        /// The message exactly as received, instead.
        #[arg(long)]
        raw: bool,
        /// Per recipient: verdict, seal and delivery evidence.
        #[arg(long)]
        evidence: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Search: from:, to:, cc:, bcc:, rcpt:, subject:, body:, filename:,
    /// attachment:, after:, before:, has:attachment, larger:, smaller:,
    /// direction:, dlp:, seal:, message-id:, free text, "phrases", OR, -, ( ).
    Search {
        /// The query, as one argument (quote it); it may start with `-`.
        #[arg(allow_hyphen_values = true)]
        query: String,
        /// At most this many items (newest first).
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Export what a query finds: mbox or one .eml per item, with a
    /// manifest (id, SHA-256, envelope) signed by the archive's key.
    Export {
        /// The query, as one argument, as for `archive search` ("" exports everything).
        #[arg(allow_hyphen_values = true)]
        query: String,
        /// mbox or eml.
        #[arg(long, default_value = "mbox", value_parser = ["mbox", "eml"])]
        format: String,
        /// A new (or empty) directory.
        #[arg(long)]
        out: PathBuf,
    },
    /// Rebuild the search index from the archive (gateway stopped).
    Reindex,
    /// Sign a checkpoint of the chain head now (record the head it prints
    /// somewhere else: it proves nothing later was removed).
    Checkpoint {
        /// While the gateway runs: a file holding an admin or auditor token.
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
    /// Legal holds: what they cover is never purged.
    Hold {
        #[command(subcommand)]
        action: HoldCmd,
    },
    /// Remove items past their retain-until date that no hold covers; the
    /// purge is recorded in the chain (gateway stopped).
    Purge {
        /// Only say what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Walk the hash chain and every record; exit 1 and name the first
    /// broken item or link if anything was altered or removed.
    Verify {
        /// Start at this sequence number (trusting the link before it).
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

fn parse_seal(s: &str) -> Result<sealgate::model::verdict::Seal, String> {
    serde_json::from_value(serde_json::Value::String(s.to_ascii_lowercase()))
        .map_err(|_| format!("`{s}`: use tls, pgp, smime or portal"))
}

#[derive(Subcommand)]
enum KeysCmd {
    /// Import OpenPGP keys (armoured or binary) or X.509 certificates (PEM
    /// or DER); or, from a PKCS#12 file (.p12/.pfx), the organisation's
    /// S/MIME signing identity.
    Import {
        /// The file; `-` reads standard input.
        file: PathBuf,
        /// For PKCS#12: a file whose first line is the password.
        #[arg(long)]
        password_file: Option<PathBuf>,
        /// Bind the file's one OpenPGP key to this address (repeatable): it
        /// seals for it, pinned, though no user ID names it (keys without an
        /// e-mail user ID).
        #[arg(long = "address", value_name = "ADDRESS")]
        address: Vec<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// List stored keys: id, kind, state, source, addresses.
    Ls {
        /// JSON output (without key material).
        #[arg(long)]
        json: bool,
    },
    /// Show the keys of an address and which one would seal now, or why none.
    Show {
        /// The e-mail address.
        address: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Remove a key (by id, or an unambiguous prefix of at least 8 characters).
    Rm {
        /// Key id: OpenPGP fingerprint or certificate SHA-256.
        id: String,
    },
    /// Approve a pending key (one that replaced a known key for an address).
    Approve {
        /// Key id.
        id: String,
    },
}

#[derive(Subcommand)]
enum DlpCmd {
    /// Scan message files (.eml) and print, per file, the detectors that matched (with
    /// confidence, unique/total counts, part paths and masked samples), parts that could
    /// not be scanned and why, and the policy action. Matched values are never printed.
    /// Exits 0 with or without findings, non-zero on an unreadable file or rule set.
    Scan {
        /// Message files (RFC 5322, as .eml); `-` reads standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        rules: RulesDir,
        /// One JSON object per file (JSON lines), each naming its `file`.
        #[arg(long)]
        json: bool,
        /// The files are plain text, not messages.
        #[arg(long)]
        text: bool,
    },
    /// Load the rule set and run every rule file's embedded examples; prints pass/fail
    /// per detector, and exits non-zero on a failure or a load error (file:line: reason).
    Check {
        #[command(flatten)]
        rules: RulesDir,
    },
}

/// Where the DLP rules are.
#[derive(Args)]
struct RulesDir {
    /// Rules directory (detectors/, keywords/, filters/, policies/); default:
    /// the rules built into this binary (the repository's dlp-rules/).
    #[arg(long, value_name = "DIR")]
    rules: Option<PathBuf>,
}

impl RulesDir {
    fn load(&self) -> anyhow::Result<sealgate_dlp::RuleSet> {
        // RuleError's Display is already `file:line: reason`.
        match &self.rules {
            Some(dir) => sealgate_dlp::RuleSet::load_dir(dir),
            None => sealgate_dlp::RuleSet::load_builtin(),
        }
        .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// Which instance: its config file, or just its data directory.
#[derive(Args)]
struct Where {
    /// Configuration file of the instance.
    #[arg(long, short, global = true, conflicts_with = "data")]
    config: Option<PathBuf>,
    /// Data directory of the instance (defaults apply for everything else).
    #[arg(long, global = true)]
    data: Option<PathBuf>,
}

#[derive(Subcommand)]
enum QueueCmd {
    /// List queued messages.
    Ls {
        /// One JSON array, one object per message.
        #[arg(long)]
        json: bool,
    },
    /// Show one message's envelope and state.
    Show {
        /// Queue id.
        id: QueueId,
        /// JSON output.
        #[arg(long)]
        json: bool,
        /// Print the message itself (as it will be relayed) instead.
        #[arg(long)]
        body: bool,
    },
    /// Delete a message from the queue (no bounce is sent).
    Delete {
        /// Queue id.
        id: QueueId,
    },
    /// Try a message (or, with --all, every message) now, ignoring retry waits.
    Retry {
        /// Queue id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<QueueId>,
        /// Every queued message.
        #[arg(long)]
        all: bool,
    },
    /// Check every message is intact and no partial message is left.
    Verify {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

impl Where {
    /// The instance's configuration, with --data applied.
    fn load(self) -> anyhow::Result<Config> {
        let mut config = load(self.config.as_ref())?;
        if let Some(d) = self.data {
            config.server.data_dir = d;
        }
        Ok(config)
    }
}

fn load(config: Option<&PathBuf>) -> anyhow::Result<Config> {
    match config {
        Some(p) => {
            load_file_checked(p, &sealgate::preflight::files).map_err(|e| anyhow::anyhow!("{e}"))
        }
        None => Ok(Config::embedded()),
    }
}

/// How a command ended, as the exit code: 0 done and nothing wrong found;
/// 1 the command ran and found a problem, or failed; 2 the command line is
/// wrong (clap's usage errors, a search query that does not parse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Done, and nothing wrong found: 0.
    Done,
    /// The command ran and found a problem: 1.
    Problem,
    /// The command line is wrong: 2, as for clap's usage errors.
    Usage,
}

impl Outcome {
    /// `Done` when `ok`, else `Problem`: for commands that check something.
    fn problem_unless(ok: bool) -> Self {
        if ok {
            Outcome::Done
        } else {
            Outcome::Problem
        }
    }
}

impl From<Outcome> for ExitCode {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Done => ExitCode::SUCCESS,
            Outcome::Problem => ExitCode::FAILURE,
            Outcome::Usage => ExitCode::from(2),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run(Cli::parse()).await {
        Ok(outcome) => outcome.into(),
        Err(e) => {
            eprintln!("sealgate: {e:#}");
            Outcome::Problem.into()
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Cmd::Serve { config } => {
            let config = load(config.as_ref())?;
            sealgate::telemetry::logging::init(&config.log);
            sealgate::serve::serve(config)
                .await
                .context("sealgate serve")?;
        }
        Cmd::CheckConfig { file } => match load_file_checked(&file, &sealgate::preflight::files) {
            // The DLP rules are checked here and at start, not on every load,
            // so queue commands still work while someone edits the rules.
            Ok(config) => match config.dlp.load_rules() {
                Ok(set) => println!(
                    "{}: ok ({} DLP detectors)",
                    file.display(),
                    set.detector_ids().len()
                ),
                Err(e) => {
                    eprintln!(
                        "{}: dlp.rules_dir: the rule set does not load: {e}",
                        file.display()
                    );
                    return Ok(Outcome::Problem);
                }
            },
            Err(errors) => {
                eprint!("{errors}");
                eprintln!("{} error(s)", errors.0.len());
                return Ok(Outcome::Problem);
            }
        },
        Cmd::Queue { at, action } => {
            let config = at.load()?;
            let loc = Location::from_config(&config);
            let mut out = std::io::stdout().lock();
            match action {
                QueueCmd::Ls { json } => out.write_all(queue::ls(&loc, json)?.as_bytes())?,
                QueueCmd::Show { id, json, body } => {
                    out.write_all(&queue::show(&loc, id, json, body)?)?
                }
                QueueCmd::Delete { id } => {
                    out.write_all(queue::apply(&loc, Change::Delete(id)).await?.as_bytes())?
                }
                QueueCmd::Retry { id, .. } => {
                    let change = id.map_or(Change::RetryAll, Change::Retry);
                    out.write_all(queue::apply(&loc, change).await?.as_bytes())?
                }
                QueueCmd::Verify { json } => {
                    let (text, clean) = queue::verify(&loc, json)?;
                    out.write_all(text.as_bytes())?;
                    if !clean {
                        return Ok(Outcome::Problem);
                    }
                }
            }
        }
        Cmd::Tls { at, action } => {
            let config = at.load()?;
            let loc = Location::from_config(&config);
            match action {
                TlsCmd::Ls => {
                    for r in queue::tls_memory(&loc).await? {
                        println!("{}\t{}", r.domain, r.since.to_rfc3339());
                    }
                }
                TlsCmd::Forget { domain } => {
                    let domain = sealgate::model::address::ascii_domain(&domain);
                    print!("{}", queue::apply(&loc, Change::ForgetTls(domain)).await?);
                }
            }
        }
        Cmd::Quarantine { at, action } => {
            let config = at.load()?;
            let loc = Location::from_config(&config);
            let text = match action {
                QuarantineCmd::Ls { json } => queue::quarantined(&loc, json)?,
                QuarantineCmd::Show { id, json } => {
                    String::from_utf8_lossy(&queue::show(&loc, id, json, false)?).into_owned()
                }
                QuarantineCmd::Release { id, seal } => {
                    queue::apply(&loc, Change::Release(id, seal)).await?
                }
                QuarantineCmd::Delete { id } => {
                    queue::apply(&loc, Change::DeleteQuarantined(id)).await?
                }
            };
            print!("{text}");
        }
        Cmd::Portal { at, action } => {
            let config = at.load()?;
            let text = match action {
                PortalCmd::Ls { json } => {
                    sealgate::admin::portal::list(&sealgate::admin::portal::entries(&config)?, json)
                }
                PortalCmd::Revoke { id } => {
                    let loc = Location::from_config(&config);
                    queue::apply(&loc, Change::RevokePortal(id)).await?
                }
            };
            print!("{text}");
        }
        Cmd::Token { at, action } => {
            let config = at.load()?;
            let data = &config.server.data_dir;
            use sealgate::admin::tokens::{self, ApiTokens};
            let store = sealgate::store::rocksdb::tokens::TokenFile::new(data);
            match action {
                TokenCmd::Create { role, name } => {
                    let token = tokens::create(&store, role, &name).await?;
                    sealgate::audit::record(
                        data,
                        sealgate::audit::Actor::Cli,
                        "token.create",
                        &name,
                        role.as_str(),
                    )?;
                    println!("{token}");
                    eprintln!(
                        "token {name:?} ({}) made; it is shown only now",
                        role.as_str()
                    );
                }
                TokenCmd::Revoke { name } => {
                    let gone = store.remove(&name).await?;
                    sealgate::audit::record(
                        data,
                        sealgate::audit::Actor::Cli,
                        "token.revoke",
                        &name,
                        gone.role.as_str(),
                    )?;
                    println!("token {name:?} revoked");
                }
                TokenCmd::Ls { json } => {
                    let all = store.list().await?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&all)?);
                    } else {
                        for t in all {
                            println!(
                                "{}\t{}\t{}",
                                t.name,
                                t.role.as_str(),
                                t.created_at.format("%Y-%m-%d %H:%M:%S")
                            );
                        }
                    }
                }
            }
        }
        Cmd::Audit { at, action } => {
            let config = at.load()?;
            match action {
                AuditCmd::Verify { json } => {
                    let r = sealgate::audit::verify(&config.server.data_dir)?;
                    if json {
                        println!("{}", serde_json::to_string_pretty(&r)?);
                    } else {
                        println!("{} lines chained", r.lines_ok);
                        match &r.first_broken {
                            Some((n, why)) => println!("BROKEN at line {n}: {why}"),
                            None => println!("intact"),
                        }
                    }
                    if r.first_broken.is_some() {
                        return Ok(Outcome::Problem);
                    }
                }
            }
        }
        Cmd::Archive { at, action } => {
            let config = at.load()?;
            // Commands that do not read the store (or open it for writing).
            match &action {
                ArchiveCmd::Hold { action } => {
                    let text = match action {
                        HoldCmd::Add {
                            name,
                            query,
                            addresses,
                        } => sealgate::admin::archive::hold_add(
                            &config,
                            name,
                            query.clone(),
                            addresses.clone(),
                        )?,
                        HoldCmd::Ls { json } => sealgate::admin::archive::hold_ls(&config, *json)?,
                        HoldCmd::Rm { name } => sealgate::admin::archive::hold_rm(&config, name)?,
                    };
                    print!("{text}");
                    return Ok(Outcome::Done);
                }
                ArchiveCmd::Checkpoint { token_file } => {
                    print!(
                        "{}",
                        sealgate::admin::archive::checkpoint(&config, token_file.as_deref())?
                    );
                    return Ok(Outcome::Done);
                }
                ArchiveCmd::Purge { dry_run, json } => {
                    print!(
                        "{}",
                        sealgate::admin::archive::purge(&config, *dry_run, *json)?
                    );
                    return Ok(Outcome::Done);
                }
                _ => {}
            }
            let archive = sealgate::admin::archive::open_read_only(&config)?;
            match action {
                ArchiveCmd::Hold { .. }
                | ArchiveCmd::Purge { .. }
                | ArchiveCmd::Checkpoint { .. } => unreachable!("handled above"),
                ArchiveCmd::Ls { json } => {
                    print!("{}", sealgate::admin::archive::ls(&archive, json)?)
                }
                ArchiveCmd::Show {
                    id,
                    raw,
                    evidence,
                    json,
                } => {
                    use std::io::Write as _;
                    let out = sealgate::admin::archive::show(&archive, id, raw, evidence, json)?;
                    sealgate::audit::record(
                        &config.server.data_dir,
                        sealgate::audit::Actor::Cli,
                        if raw { "archive.read" } else { "archive.view" },
                        &id.to_string(),
                        "",
                    )?;
                    std::io::stdout().write_all(&out)?;
                }
                ArchiveCmd::Search { query, limit, json } => {
                    let q = query;
                    match sealgate::admin::archive::search(&config, &archive, &q, limit, json) {
                        Ok(text) => print!("{text}"),
                        Err(sealgate::admin::archive::ArchiveCmdError::Search(
                            sealgate::archive::SearchError::Query(e),
                        )) => {
                            eprintln!("{}", e.pointed(&q));
                            return Ok(Outcome::Usage);
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                ArchiveCmd::Export { query, format, out } => {
                    let format = if format == "eml" {
                        sealgate::archive::export::Format::Eml
                    } else {
                        sealgate::archive::export::Format::Mbox
                    };
                    let q = query;
                    print!(
                        "{}",
                        sealgate::admin::archive::export(&config, &archive, &q, format, &out)?
                    );
                }
                ArchiveCmd::Reindex => {
                    print!("{}", sealgate::admin::archive::reindex(&config, &archive)?)
                }
                ArchiveCmd::Verify { from, json } => {
                    let key =
                        sealgate::archive::chain::public_key_of(&config.archive_signing_key_file());
                    let (text, ok) = sealgate::admin::archive::verify(&archive, from, json, key)?;
                    print!("{text}");
                    if !ok {
                        return Ok(Outcome::Problem);
                    }
                }
            }
        }
        Cmd::Keys { at, action } => {
            let config = at.load()?;
            let keys = sealgate::keys::Keys::from_config(&config)?;
            let text = match action {
                KeysCmd::Import {
                    file,
                    password_file,
                    address,
                    json,
                } => {
                    let bytes = read_input(&file).with_context(|| format!("{}", file.display()))?;
                    let pkcs12 = password_file.is_some()
                        || file.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                            e.eq_ignore_ascii_case("p12") || e.eq_ignore_ascii_case("pfx")
                        });
                    if pkcs12 && !address.is_empty() {
                        anyhow::bail!(
                            "{}: --address binds an OpenPGP key to an address; a PKCS#12 file is the organisation's signing identity",
                            file.display()
                        );
                    }
                    if pkcs12 {
                        let Some(pw) = password_file else {
                            anyhow::bail!(
                                "{}: a PKCS#12 file needs --password-file FILE (its first line is the password)",
                                file.display()
                            );
                        };
                        let password = std::fs::read_to_string(&pw)
                            .with_context(|| format!("{}", pw.display()))?;
                        let password = password.lines().next().unwrap_or_default();
                        admin_keys::import_signing(&config, &bytes, password, json)
                            .with_context(|| format!("{}", file.display()))?
                    } else {
                        admin_keys::import(&keys.binding(&address)?, &bytes, json)
                            .with_context(|| format!("{}", file.display()))?
                    }
                }
                KeysCmd::Ls { json } => admin_keys::ls(&keys, json)?,
                KeysCmd::Show { address, json } => admin_keys::show(&keys, &address, json)?,
                KeysCmd::Rm { id } => admin_keys::rm(&keys, &id)?,
                KeysCmd::Approve { id } => admin_keys::approve(&keys, &id)?,
            };
            print!("{text}");
        }
        Cmd::Explain {
            at,
            from,
            to,
            inbound,
            json,
            file,
        } => {
            let config = at.load()?;
            sealgate::model::address::Mailbox::parse(&from)
                .map_err(|e| anyhow::anyhow!("--from {from}: {e}"))?;
            let rcpts = to
                .iter()
                .map(|t| {
                    sealgate::model::address::Mailbox::parse(t.trim())
                        .map_err(|e| anyhow::anyhow!("--to {t}: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let bytes = read_input(&file).with_context(|| format!("{}", file.display()))?;
            let rules = if config.dlp.enabled {
                Some(
                    config
                        .dlp
                        .load_rules()
                        .map_err(|e| anyhow::anyhow!("DLP rules: {e}"))?,
                )
            } else {
                None
            };
            let keys = sealgate::keys::Keys::from_config(&config)?;
            let direction = if inbound {
                sealgate::spool::Direction::Inbound
            } else {
                sealgate::spool::Direction::Outbound
            };
            use sealgate::admin::explain;
            let dlp = explain::inspect_message(&config, rules.as_ref(), &bytes);
            // MTA-STS as delivery would see it (fetched now; not the gateway's cache).
            let sts = if config.tls.mta_sts {
                let dns = sealgate::net::dns::Dns::new(&config.delivery.resolvers)
                    .map_err(|e| anyhow::anyhow!("resolver: {e}"))?;
                let roots = sealgate::net::tls::trust_roots(config.tls.extra_roots_file.as_deref())
                    .map_err(|e| anyhow::anyhow!("trust roots: {e}"))?;
                Some(sealgate::deliver::mta_sts::MtaSts::new(
                    dns,
                    roots,
                    config.tls.mta_sts_port,
                ))
            } else {
                None
            };
            let raised = explain::raised_for(
                &config,
                &keys,
                sts.as_ref(),
                direction,
                &bytes,
                &rcpts,
                dlp.as_ref(),
            )
            .await;
            let e = explain::explain(&config, &keys, dlp, direction, &bytes, &rcpts, &raised);
            if json {
                println!("{}", serde_json::to_string_pretty(&e)?);
            } else {
                print!("{}", explain::to_text(&e));
            }
        }
        Cmd::Dlp { action } => return dlp(action),
    }
    Ok(Outcome::Done)
}

fn dlp(action: DlpCmd) -> anyhow::Result<Outcome> {
    match action {
        DlpCmd::Check { rules } => {
            let set = rules.load()?;
            let (text, ok) = report::check_examples(&set);
            print!("{text}");
            Ok(Outcome::problem_unless(ok))
        }
        DlpCmd::Scan {
            files,
            rules,
            json,
            text,
        } => {
            let set = rules.load()?;
            let limits = InspectLimits::default();
            let mut out = std::io::stdout().lock();
            let mut failed = false;
            for file in &files {
                let name = file.display().to_string();
                let bytes = match read_input(file) {
                    Ok(b) => b,
                    Err(e) => {
                        eprintln!("sealgate: {name}: {e:#}");
                        failed = true;
                        continue;
                    }
                };
                let found = if text {
                    inspect::inspect_text(&String::from_utf8_lossy(&bytes), &set)
                } else {
                    inspect::inspect(&bytes, &set, &limits)
                };
                if json {
                    writeln!(out, "{}", report::to_json(&name, &found))?;
                } else {
                    out.write_all(report::to_text(&name, &found).as_bytes())?;
                }
            }
            Ok(Outcome::problem_unless(!failed))
        }
    }
}

/// A file's bytes, or standard input for `-`.
fn read_input(file: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    if file.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::stdin().read_to_end(&mut b)?;
        return Ok(b);
    }
    std::fs::read(file).context("cannot read")
}
