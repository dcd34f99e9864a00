//! `sealgate serve`: opens the spool, binds every listener and the admin API,
//! and runs until SIGTERM or SIGINT.

use crate::admin::http::{router, AdminState};
use crate::config::Config;
use crate::deliver::{self, attempt::Deliverer};
use crate::inspect::worker::{self, SharedRules};
use crate::smtp::recipients::{RecipientList, SharedRecipients};
use crate::smtp::server::Gateway;
use crate::smtp::tls;
use crate::spool::pipe::{Handoff, Pipe, Progress, Stage};
use crate::spool::{KeyError, Keyring, Spool, SpoolError};
use crate::store::escrow::PortalStores;
use crate::store::Stores;
use crate::telemetry::metrics::Metrics;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

mod cluster;

/// Why the gateway could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data directory could not be created.
    #[error("data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// Spool keys.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// A store's files are damaged.
    #[error("the store at {store} is damaged ({reason}); `{verify}` names what is affected")]
    Damaged {
        /// The store's directory.
        store: String,
        /// RocksDB's report.
        reason: String,
        /// The command that checks it whole.
        verify: &'static str,
    },
    /// The console's key file could not be made or read.
    #[error("console key file: {0}")]
    ConsoleKey(crate::store::keyring::KeyError),
    /// The admin API token could not be made or read.
    #[error("admin API token: {0}")]
    AdminToken(crate::secret_file::SecretFileError),
    /// The spool.
    #[error(transparent)]
    Spool(#[from] SpoolError),
    /// The stores (the PostgreSQL database) could not be opened.
    #[error(transparent)]
    Stores(#[from] crate::store::OpenError),
    /// TLS set-up.
    #[error(transparent)]
    Tls(#[from] crate::net::tls::TlsError),
    /// The recipients file does not load.
    #[error(transparent)]
    Recipients(#[from] crate::smtp::recipients::RecipientsError),
    /// The DLP rule set does not load.
    #[error("DLP rules: {0}")]
    Rules(#[from] sealgate_dlp::RuleError),
    /// The keystore or the seal options do not load.
    #[error("seal: {0}")]
    Seal(#[from] crate::seal::worker::SealSetupError),
    /// The keystore does not load.
    #[error("keystore: {0}")]
    Keystore(#[from] crate::keys::KeyStoreError),
    /// The deliver stage could not be set up.
    #[error("delivery: {0}")]
    Delivery(String),
    /// The escrow portal could not be set up.
    #[error("portal: {0}")]
    Portal(String),
    /// The archive could not be opened.
    #[error("archive: {0}")]
    Archive(#[from] crate::archive::ArchiveError),
    /// A listener could not bind.
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        /// Address.
        addr: std::net::SocketAddr,
        /// Which listener.
        what: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// The archive journal, when `[archive] enabled`.
async fn open_journal(
    config: &Config,
    metrics: &Arc<Metrics>,
) -> Result<Option<Arc<crate::archive::worker::Journal>>, ServeError> {
    if !config.archive.enabled {
        tracing::warn!(
            "the archive is off ([archive] enabled = false): relayed mail is not journaled"
        );
        return Ok(None);
    }
    let archive = crate::store::Stores::open_archive(config, true).await?;
    // A locked retention rule shortened, unlocked or removed stops the start.
    archive.enforce_locks(&config.archive.retention).await?;
    let index =
        crate::archive::SearchIndex::open(&config.archive_index_dir(), config.dlp.limits.clone())
            .map_err(|e| ServeError::Delivery(format!("archive search index: {e}")))?;
    // Whatever a crash kept out of the index is indexed now.
    match index.catch_up(archive.as_ref()).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(items = n, "archive search index caught up"),
        Err(e) => {
            tracing::error!(error = %e, "archive search index catch-up failed; run `sealgate archive reindex`")
        }
    }
    tracing::info!(head = archive.head_seq().await, "archive open");
    let journal = Arc::new(
        crate::archive::worker::Journal::new(
            archive,
            Arc::new(index),
            config.archive.clone(),
            metrics.clone(),
        )
        .await,
    );
    tokio::spawn(journal.clone().follow());
    Ok(Some(journal))
}

/// The spool: a cluster's shared one, once this node is registered (its
/// number goes into the ids it makes), or the embedded one under
/// `data_dir`.
async fn open_spool(
    config: &Config,
    stores: &Stores,
    keys: Keyring,
    metrics: &Arc<Metrics>,
) -> Result<Spool, ServeError> {
    if let (Some(c), Some(meta)) = (&stores.cluster, &stores.meta) {
        let me = cluster::register(config, &c.nodes).await?;
        let spool = Spool::with_stores(
            c.spool.clone(),
            meta.tls_memory.clone(),
            meta.cache.clone(),
            metrics.clone(),
            me,
        )
        .await?;
        // The database can be away: answers wait at most commit_timeout.
        spool.watch_store(config.store.commit_timeout.0);
        return Ok(spool);
    }
    Ok(Spool::open(&config.spool_dir(), keys, metrics.clone())
        .await
        .map_err(|e| match &e {
            SpoolError::Db(db) if db.to_string().contains("Corruption") => ServeError::Damaged {
                store: config.spool_dir().display().to_string(),
                reason: db.to_string(),
                verify: "sealgate queue verify",
            },
            _ => ServeError::Spool(e),
        })?
        .with_meta(stores.meta.as_ref()))
}

/// A listening socket on `addr`, or an error naming `what` it was for.
async fn bind(addr: std::net::SocketAddr, what: &str) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            addr,
            what: what.to_string(),
            source,
        })
}

/// The escrow store, when `[portal] enabled`.
fn open_escrow(config: &Config) -> Result<Option<PortalStores>, ServeError> {
    if !config.portal.enabled {
        return Ok(None);
    }
    Stores::open_portal(config)
        .map(Some)
        .map_err(|e| ServeError::Portal(e.to_string()))
}

/// Runs the gateway until a termination signal.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let config = Arc::new(config);
    let data_dir = &config.server.data_dir;
    std::fs::create_dir_all(data_dir).map_err(|source| ServeError::DataDir {
        path: data_dir.display().to_string(),
        source,
    })?;
    let metrics = Arc::new(Metrics::new());
    let stores = crate::store::Stores::open(&config).await?;
    let keys = Keyring::load_or_create(&config.spool_key_file())?;
    // A broken rule set stops the start: better no gateway than one that
    // lets protected data through unseen.
    let rules: SharedRules = Arc::new(RwLock::new(Arc::new(config.dlp.load_rules()?)));
    let spool = open_spool(&config, &stores, keys, &metrics).await?;
    let keys = crate::keys::Keys::open(&config, stores.keys.clone()).await?;
    let net = Net::new(&config, &spool)?;
    let common = Common {
        config: config.clone(),
        spool: spool.clone(),
        stores: stores.clone(),
        metrics: metrics.clone(),
    };

    // The stages in the order mail flows, smtp → spool → inspect → policy →
    // seal → deliver → archive. Each takes a Pipe: the ids the stage before
    // hands on, and on start the spool's messages that stage is done with.
    let (to_seal, decided) = Pipe::new(&spool, Progress::Decided, Stage::Seal);
    let (to_deliver, sealed) = Pipe::new(&spool, Progress::Sealed, Stage::Deliver);
    let (to_inspect, for_policy, to_policy) = if config.dlp.enabled {
        let (to_policy, inspected) = Pipe::new(&spool, Progress::Inspected, Stage::Policy);
        let (to_inspect, accepted) = Pipe::new(&spool, Progress::Accepted, Stage::Inspect);
        spool.subscribe(to_inspect.clone());
        start_inspect(&common, &rules, accepted, to_policy.clone());
        (Some(to_inspect), inspected, to_policy)
    } else {
        // Without DLP, policy takes each message as the spool commits it.
        let (to_policy, accepted) = Pipe::new(&spool, Progress::Accepted, Stage::Policy);
        spool.subscribe(to_policy.clone());
        (None, accepted, to_policy)
    };
    start_policy(&common, &keys, &net, for_policy, to_seal.clone())?;
    let escrow = open_escrow(&config)?;
    start_seal(&common, &keys, &escrow, decided, to_deliver)?;
    // The archive is the last stage: deliver hands finished messages to it.
    let journal = open_journal(&config, &metrics).await?;
    let deliver_commands = start_deliver(&common, &net, &journal, sealed).await?;
    if let Some(c) = &stores.cluster {
        // Messages of nodes whose leases ran out enter where they stopped.
        let entrances = cluster::Entrances {
            inspect: to_inspect,
            policy: to_policy,
            seal: to_seal.clone(),
            deliver: deliver_commands.clone(),
        };
        tokio::spawn(cluster::run(
            config.clone(),
            c.nodes.clone(),
            spool.clone(),
            metrics.clone(),
            entrances,
        ));
    }

    // Mail comes in last, once every stage runs.
    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks = start_smtp(&common, &rules, &net, &stop_rx).await?;

    if let Some(escrow) = &escrow {
        let tcp = bind(config.portal.address, "portal").await?;
        let tls = if config.portal.tls {
            Some(
                crate::portal::tls_config(&config)
                    .map_err(|e| ServeError::Portal(e.to_string()))?,
            )
        } else {
            None
        };
        let portal = Arc::new(crate::portal::Portal::new(
            config.clone(),
            escrow.clone(),
            spool.clone(),
            stores.audit.clone(),
            metrics.clone(),
        ));
        tokio::spawn(crate::portal::serve(portal, tcp, tls, stop_rx.clone()));
        tracing::info!(address = %config.portal.address, public_url = %config.portal.public_url, "escrow portal ready");
    }

    if config.connector_implied() {
        tracing::info!(
            "no [[connector]] configured: loopback peers (127.0.0.0/8, ::1) relay as the tenant"
        );
    }
    let admin_tcp = bind(config.admin.address, "admin API").await?;
    let canonical = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.clone());
    let token_file = config.admin_token_file();
    let token: Arc<str> = crate::secret_file::ensure_token(&token_file)
        .map_err(ServeError::AdminToken)?
        .into();
    let console_spool = spool.clone();
    let app = router(AdminState {
        deliver: deliver_commands,
        tls_memory: spool.tls_memory(),
        spool,
        metrics: metrics.clone(),
        data_dir: canonical.to_string_lossy().into_owned(),
        token,
        seal: to_seal,
        config: config.clone(),
        keys,
        rules: config.dlp.enabled.then(|| rules.clone()),
        mta_sts: net.mta_sts.clone(),
        escrow: escrow.as_ref().map(|e| e.messages.clone()),
        stores: stores.clone(),
        archive: journal
            .clone()
            .map(|journal| crate::admin::archive_api::ArchiveApi {
                journal,
                config: config.clone(),
                stores: stores.clone(),
                exports: Arc::new(crate::admin::export_shelf::ExportShelf::new(
                    config.server.data_dir.join("exports"),
                    config.archive.export_ttl.0,
                )),
            }),
    });
    // The console's routes join the admin listener's; they check their
    // own sessions and CSRF tokens, the API keeps its bearer token.
    let app = if config.console.enabled {
        let keys = crate::store::keyring::Keyring::load_or_create(&config.console_key_file())
            .map_err(ServeError::ConsoleKey)?;
        let console = Arc::new(crate::console::Console::new(
            config.clone(),
            stores.console.clone(),
            stores.audit.clone(),
            keys,
            console_spool,
        ));
        tokio::spawn(crate::console::sweep(console.clone()));
        tracing::info!(address = %config.admin.address, "web console ready at /console/");
        app.merge(crate::console::router(console))
    } else {
        app
    };
    let admin_tls = match config.admin.tls {
        true => {
            let (cert, key) = crate::net::tls::https_pair(
                &config,
                &config.admin.cert_file,
                &config.admin.key_file,
            )?;
            Some(crate::net::tls::https_server_config(&cert, &key)?)
        }
        false => None,
    };
    tokio::spawn(crate::net::http_server::serve(
        "admin",
        admin_tcp,
        admin_tls,
        app,
        crate::net::http_server::HttpLimits::from(&config.admin.http),
        stop_rx.clone(),
    ));
    tracing::info!(
        address = %config.admin.address,
        https = config.admin.tls,
        "admin API ready (/metrics, /api/v1/queue)"
    );

    wait_for_signal().await;
    tracing::info!(
        "shutting down: no new connections; open sessions get 421 at their next command"
    );
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    // Sessions in DATA finish their message (and its fsync) or time out; a
    // message that never got its 250 is simply not in the spool.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while metrics.connections_open.get() > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if let Some(j) = &journal {
        // Index what waits, and move the archive's log into its tables, so
        // the next start (or an offline `archive verify`) reads tables only.
        j.index_step(true).await;
        if let Err(e) = j.archive().flush().await {
            tracing::warn!(error = %e, "cannot flush the archive");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// What every stage is started with.
struct Common {
    config: Arc<Config>,
    spool: Spool,
    stores: crate::store::Stores,
    metrics: Arc<Metrics>,
}

/// Starts the inspect stage: DLP findings stored for every accepted message.
fn start_inspect(c: &Common, rules: &SharedRules, pipe: Pipe, next: Handoff) {
    let Common {
        config,
        spool,
        metrics,
        ..
    } = c;
    tokio::spawn(worker::run(
        spool.clone(),
        rules.clone(),
        config.dlp.limits.clone(),
        metrics.clone(),
        pipe,
        next,
    ));
}

/// Starts the policy stage: a verdict stored for every recipient.
fn start_policy(
    c: &Common,
    keys: &crate::keys::Keys,
    net: &Net,
    pipe: Pipe,
    next: Handoff,
) -> Result<(), ServeError> {
    let Common { config, spool, .. } = c;
    let wkd = if config.seal.wkd {
        Some(Arc::new(
            crate::keys::wkd::Wkd::new(net.dns.clone(), net.roots.clone(), config.seal.wkd_port)
                .map_err(|e| ServeError::Delivery(format!("WKD client: {e}")))?,
        ))
    } else {
        None
    };
    tokio::spawn(crate::policy::worker::run(
        spool.clone(),
        config.clone(),
        keys.clone(),
        crate::policy::worker::Lookups {
            wkd,
            mta_sts: net
                .mta_sts
                .clone()
                .map(|s| s as Arc<dyn crate::policy::worker::StsLookup>),
        },
        pipe,
        next,
    ));
    Ok(())
}

/// Starts the seal stage: the sealed copies and portal deposits the
/// verdicts ask for, stored before delivery.
fn start_seal(
    c: &Common,
    keys: &crate::keys::Keys,
    escrow: &Option<PortalStores>,
    pipe: Pipe,
    next: Handoff,
) -> Result<(), ServeError> {
    let Common {
        config,
        spool,
        metrics,
        ..
    } = c;
    let sealer = crate::seal::worker::Sealer::from_config(config, keys.clone())?;
    let portal_seal = match escrow {
        Some(e) => Some(
            crate::seal::portal::PortalSeal::new(
                config.clone(),
                e.messages.clone(),
                metrics.clone(),
            )
            .map_err(|e| ServeError::Portal(format!("templates_dir: {e}")))?,
        ),
        None => None,
    };
    tokio::spawn(crate::seal::worker::run(
        spool.clone(),
        sealer,
        portal_seal,
        c.stores.audit.clone(),
        config.server.hostname.clone(),
        pipe,
        next,
    ));
    Ok(())
}

/// Starts the deliver stage, handing finished messages to `journal`; the
/// handle for operators' retries, or `None` when delivery is off.
async fn start_deliver(
    c: &Common,
    net: &Net,
    journal: &Option<Arc<crate::archive::worker::Journal>>,
    pipe: Pipe,
) -> Result<Option<deliver::scheduler::Commands>, ServeError> {
    let Common {
        config,
        spool,
        metrics,
        ..
    } = c;
    if !config.delivery.enabled {
        tracing::warn!("delivery is disabled ([delivery] enabled = false): mail stays queued");
        return Ok(None);
    }
    let stage = deliver::worker::Stage::new(
        deliverer(config, spool, &c.stores, metrics, net).await?,
        journal
            .clone()
            .map(|j| j as Arc<dyn deliver::worker::Journaler>),
    );
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(deliver::scheduler::run(stage, pipe, rx));
    Ok(Some(tx))
}

/// Starts the SMTP listeners (and SIGHUP's reloads of what they and
/// inspect read); their tasks end once `stop` turns true.
async fn start_smtp(
    c: &Common,
    rules: &SharedRules,
    net: &Net,
    stop: &watch::Receiver<bool>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, ServeError> {
    let Common {
        config,
        spool,
        metrics,
        ..
    } = c;
    let server_tls = tls::ServerTls::new(config)?;
    let recipients: SharedRecipients = Arc::new(RwLock::new(load_recipients(config)?));
    let sender_auth = if config.inbound.authenticate {
        let auth = crate::smtp::sender_auth::SenderAuth::new(config, &net.dns)
            .map_err(|e| ServeError::Delivery(format!("sender authentication resolver: {e}")))?;
        Some(auth)
    } else {
        tracing::warn!(
            "sender authentication of inbound mail is off ([inbound] authenticate = false)"
        );
        None
    };
    let gateway = Gateway::new(
        config.clone(),
        spool.clone(),
        metrics.clone(),
        server_tls,
        recipients.clone(),
        sender_auth,
        crate::smtp::content_filter::ContentFilter::new(config),
    );
    tokio::spawn(reload_on_hup(config.clone(), rules.clone(), recipients));
    let mut tasks = Vec::new();
    for l in &config.listener {
        let tcp = bind(l.address, &format!("listener {}", l.name)).await?;
        tracing::info!(listener = %l.name, address = %l.address, tls = ?l.tls, "SMTP listener ready");
        tasks.push(tokio::spawn(gateway.clone().run_listener(
            Arc::new(l.clone()),
            tcp,
            stop.clone(),
        )));
    }
    Ok(tasks)
}

/// What policy, seal discovery and delivery share of the network: one
/// resolver, one set of trust roots, one MTA-STS cache.
struct Net {
    dns: crate::net::dns::Dns,
    roots: Arc<rustls::RootCertStore>,
    mta_sts: Option<Arc<deliver::mta_sts::MtaSts>>,
}

impl Net {
    fn new(config: &Config, spool: &Spool) -> Result<Self, ServeError> {
        let err = |e: &dyn std::fmt::Display| ServeError::Delivery(e.to_string());
        let dns = crate::net::dns::Dns::new(&config.delivery.resolvers).map_err(|e| err(&e))?;
        let roots = crate::net::tls::trust_roots(config.tls.extra_roots_file.as_deref())
            .map_err(|e| err(&e))?;
        let mta_sts = config.tls.mta_sts.then(|| {
            Arc::new(
                deliver::mta_sts::MtaSts::new(dns.clone(), roots.clone(), config.tls.mta_sts_port)
                    .with_store(spool.cache()),
            )
        });
        Ok(Net {
            dns,
            roots,
            mta_sts,
        })
    }
}

/// The deliver stage's long-lived parts, from the config.
async fn deliverer(
    config: &Arc<Config>,
    spool: &Spool,
    stores: &crate::store::Stores,
    metrics: &Arc<Metrics>,
    net: &Net,
) -> Result<Deliverer, ServeError> {
    use deliver::client::{tls as client_tls, ClientSettings};
    let err = |e: &dyn std::fmt::Display| ServeError::Delivery(e.to_string());
    let (dns, roots, mta_sts) = (net.dns.clone(), net.roots.clone(), net.mta_sts.clone());
    let dane = if config.tls.dane {
        let d = deliver::dane::Dane::new(&dns).map_err(|e| err(&e))?;
        // A resolver path that drops DNSSEC data would turn every TLSA
        // lookup into a temporary failure and hold back all mail.
        match d.probe(".").await {
            Ok(()) => Some(d),
            Err(e) if dane_required(config) => {
                return Err(ServeError::Delivery(format!(
                    "a TLS level is `dane` but DNSSEC does not work through the resolvers: {e}"
                )))
            }
            Err(e) => {
                tracing::error!(error = %e, "DANE is off: DNSSEC does not work through the configured resolvers (use a validating resolver, or set [tls] dane = false)");
                None
            }
        }
    } else {
        None
    };
    // A [[dkim]] key that does not load stops the start (the error names the file).
    let dkim = deliver::dkim::DkimSigners::new(&config.dkim).map_err(|e| err(&e))?;
    let d = &config.delivery;
    if d.smart_host.is_none() && !config.server.local_domains.is_empty() {
        tracing::warn!("delivery.smart_host is unset: inbound mail for the local domains waits in the queue and bounces after max_lifetime");
    }
    Ok(Deliverer {
        config: config.clone(),
        settings: ClientSettings {
            helo: d
                .helo_name
                .clone()
                .unwrap_or_else(|| config.server.hostname.clone()),
            connect_timeout: d.connect_timeout.0,
            command_timeout: d.command_timeout.0,
            data_timeout: d.data_timeout.0,
        },
        pool: deliver::pool::Pool::new(d.idle_timeout.0, d.max_connections_per_domain),
        opportunistic: client_tls::opportunistic_config(),
        verifying: client_tls::verifying_config(roots),
        dns,
        mta_sts,
        dane,
        spool: spool.clone(),
        tls_memory: spool.tls_memory(),
        audit: stores.audit.clone(),
        metrics: metrics.clone(),
        dkim: Arc::new(dkim),
    })
}

/// True when some destination must be authenticated by DANE.
fn dane_required(config: &Config) -> bool {
    use deliver::tls_policy::TlsLevel::Dane;
    config.tls.default_level == Dane
        || config.tls.domains.values().any(|l| *l == Dane)
        || config.route.iter().any(|r| r.tls == Some(Dane))
        || config.delivery.smart_host.as_ref().and_then(|s| s.tls) == Some(Dane)
}

/// Reads `server.recipients_file`, if set.
fn load_recipients(config: &Config) -> Result<Option<Arc<RecipientList>>, ServeError> {
    match &config.server.recipients_file {
        Some(f) => Ok(Some(Arc::new(RecipientList::load(f)?))),
        None => Ok(None),
    }
}

/// SIGHUP reloads the recipients list and the DLP rules; one that fails to
/// load is logged and the old one stays in force.
async fn reload_on_hup(config: Arc<Config>, rules: SharedRules, recipients: SharedRecipients) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        match load_recipients(&config) {
            Ok(list) => {
                *crate::locks::write(&recipients) = list;
                tracing::info!("recipients list reloaded");
            }
            Err(e) => {
                tracing::error!(error = %e, "recipients list reload failed; the previous list stays in force")
            }
        }
        match config.dlp.load_rules() {
            Ok(set) => {
                let detectors = set.detector_ids().len();
                *crate::locks::write(&rules) = Arc::new(set);
                tracing::info!(detectors, "DLP rules reloaded");
            }
            Err(e) => {
                tracing::error!(error = %e, "DLP rules reload failed; the previous rules stay in force")
            }
        }
    }
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
