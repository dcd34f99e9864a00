//! One delivery attempt for the recipients of one message in one domain:
//! route, settle the TLS level (config, route, MTA-STS, memory, DANE), try
//! each host in order, and turn what happened into an outcome per recipient.

use super::client::{
    ClientError, ClientSettings, Connection, Envelope, RcptTo, Reply, Transaction,
};
use super::dane::{self, Dane, DaneLookup};
use super::mta_sts::{MtaSts, StsMode};
use super::pool::PoolKey;
use super::route::{self, Route, RouteKind};
use super::tls_policy::{PolicySource, TlsLevel};
use crate::config::Config;
use crate::net::dns::Dns;
use crate::spool::{DeliveryEvidence, OutboundTls, Spool};
use crate::telemetry::metrics::Metrics;
use rustls::pki_types::ServerName;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Why DANE holds a host back for now (a temporary failure, never a downgrade).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum DaneHold {
    /// The level asks for DANE, which is switched off.
    #[error("TLS level dane but DANE is disabled ([tls] dane = false)")]
    Disabled,
    /// The level asks for DANE; the host publishes no validated TLSA records.
    #[error("TLS level dane but {0} has no DNSSEC-validated TLSA records")]
    NoRecords(String),
    /// The lookup failed or was bogus.
    #[error("DANE TLSA lookup for {host}: {error}")]
    Lookup {
        /// The MX host.
        host: String,
        /// What the lookup said.
        error: dane::DaneError,
    },
}

/// What became of one recipient on this attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The next hop took it.
    Delivered,
    /// Try again later.
    Deferred,
    /// Permanent failure: bounce.
    Bounced,
    /// Dropped by policy without a bounce (`exclusive` without TLS).
    Dropped,
    /// TLS was required and the session could not have it (no STARTTLS, a
    /// failed handshake, a certificate that does not verify): the stage
    /// falls back down the seal chain, bounces an escalated recipient, or
    /// defers.
    TlsRefused,
}

/// What a transaction's recipients need from the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// The destination's own level (config, route, MTA-STS, DANE, memory).
    Destination,
    /// An escalated recipient: verified TLS or nothing.
    Verified,
    /// A sealed copy sent because TLS to the destination failed: our own
    /// levels (config, route, memory) no longer bind it, the content being
    /// sealed; the domain's published ones (MTA-STS, DANE) still do.
    AfterTlsFailure,
}

impl Outcome {
    fn as_str(&self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Deferred => "deferred",
            Outcome::Bounced => "bounced",
            Outcome::Dropped => "dropped",
            Outcome::TlsRefused => "tls_refused",
        }
    }
}

/// Everything an attempt needs that lives as long as the gateway.
pub struct Deliverer {
    /// Configuration.
    pub config: Arc<Config>,
    /// Resolver.
    pub dns: Dns,
    /// MTA-STS policies, when enabled.
    pub mta_sts: Option<Arc<MtaSts>>,
    /// DANE lookups, when enabled.
    pub dane: Option<Dane>,
    /// The spool.
    pub spool: Spool,
    /// Destinations that once took TLS (`[tls] remember`).
    pub tls_memory: Arc<dyn crate::store::tls_memory::TlsMemory>,
    /// The audit log (quarantine expiry).
    pub audit: Arc<dyn crate::store::audit_log::AuditLog>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Client timeouts and EHLO name.
    pub settings: ClientSettings,
    /// TLS that accepts any certificate (`may`, `encrypt`, `exclusive`).
    pub opportunistic: Arc<rustls::ClientConfig>,
    /// TLS that verifies the chain and host name (`verify`, MTA-STS).
    pub verifying: Arc<rustls::ClientConfig>,
    /// Idle connections for reuse.
    pub pool: super::pool::Pool,
    /// DKIM signers for outbound mail (`[[dkim]]`), keys loaded at start.
    pub dkim: Arc<super::dkim::DkimSigners>,
}

/// The TLS level a destination is held to, and why.
#[derive(Debug, Clone)]
struct Requirement {
    level: TlsLevel,
    source: PolicySource,
}

/// Why one host could not take the transaction.
struct HostFailure {
    reply: Reply,
    /// The failure was the lack of (acceptable) TLS.
    no_tls: bool,
    permanent: bool,
    ip: Option<IpAddr>,
    tls: Option<OutboundTls>,
}

/// The result of trying one host.
enum HostResult {
    Sent(Transaction, Option<OutboundTls>, IpAddr),
    Failed(HostFailure),
}

impl Deliverer {
    fn base_requirement(&self, route: &Route) -> Requirement {
        let (level, by_route) = self.config.tls_level_for(&route.domain);
        Requirement {
            level,
            source: if by_route {
                PolicySource::Route
            } else {
                PolicySource::Config
            },
        }
    }

    /// Evidence for an attempt that failed inside the gateway.
    pub fn internal_error(&self) -> DeliveryEvidence {
        let req = Requirement {
            level: self.config.tls.default_level,
            source: PolicySource::Config,
        };
        evidence(
            "",
            None,
            0,
            None,
            &req,
            "451 4.3.0 internal error during delivery".into(),
        )
    }

    /// Delivers `message` to `rcpts` (all in `domain`); returns one outcome
    /// and its evidence per recipient, in order.
    pub async fn deliver(
        &self,
        domain: &str,
        from: &str,
        params: &crate::model::envelope::MailParams,
        rcpts: Vec<RcptTo>,
        message: &[u8],
        need: Transport,
    ) -> Vec<(Outcome, DeliveryEvidence)> {
        let n = rcpts.len();
        let route = match route::resolve(&self.config, &self.dns, domain).await {
            Ok(r) => r,
            Err(e) => {
                let outcome = if e.is_temporary() {
                    Outcome::Deferred
                } else {
                    Outcome::Bounced
                };
                let req = Requirement {
                    level: self.config.tls.default_level,
                    source: PolicySource::Config,
                };
                let ev = evidence("", None, 0, None, &req, e.to_string());
                return self.finish(domain, vec![(outcome, ev); n]);
            }
        };
        let mut req = self.base_requirement(&route);
        if need == Transport::AfterTlsFailure && req.level > TlsLevel::May {
            req = Requirement {
                level: TlsLevel::May,
                source: PolicySource::Policy,
            };
        }
        let mut hosts = route.hosts.clone();
        if route.kind == RouteKind::Mx {
            if let Some(sts) = &self.mta_sts {
                match sts.policy(domain).await {
                    Ok(Some(p)) if matches!(p.mode, StsMode::Enforce) => {
                        hosts.retain(|h| p.mx_matches(h));
                        if req.level < TlsLevel::Verify {
                            req = Requirement {
                                level: TlsLevel::Verify,
                                source: PolicySource::MtaSts,
                            };
                        }
                        if hosts.is_empty() {
                            let ev = evidence(
                                "",
                                None,
                                route.port,
                                None,
                                &req,
                                "451 4.7.5 no MX host matches the domain's MTA-STS policy".into(),
                            );
                            return self.finish(domain, vec![(Outcome::Deferred, ev); n]);
                        }
                    }
                    Ok(Some(p)) if matches!(p.mode, StsMode::Testing) => {
                        let unlisted = hosts.iter().filter(|h| !p.mx_matches(h)).count();
                        if unlisted > 0 {
                            tracing::warn!(
                                domain,
                                unlisted,
                                "MTA-STS testing policy: MX hosts not in the policy (report only)"
                            );
                        }
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(domain, error = %e, "MTA-STS policy unavailable"),
                }
            }
        }
        if self.config.tls.remember
            && !req.level.requires_tls()
            && need != Transport::AfterTlsFailure
        {
            match self.tls_memory.remembered(domain).await {
                Ok(Some(_)) => {
                    req = Requirement {
                        level: TlsLevel::Encrypt,
                        source: PolicySource::Memory,
                    }
                }
                Ok(None) => {}
                // Unknown is not "never took TLS": do not risk a plain delivery.
                Err(e) => {
                    let ev = evidence(
                        "",
                        None,
                        route.port,
                        None,
                        &req,
                        format!("451 4.3.0 TLS memory unreadable: {e}"),
                    );
                    return self.finish(domain, vec![(Outcome::Deferred, ev); n]);
                }
            }
        }

        // An escalated recipient (policy verdict) takes verified TLS or nothing.
        if need == Transport::Verified && req.level < TlsLevel::Verify {
            req = Requirement {
                level: TlsLevel::Verify,
                source: PolicySource::Policy,
            };
        }
        let envelope = Envelope {
            from: from.to_string(),
            params: params.clone(),
            recipients: rcpts,
        };
        let mut last: Option<(String, HostFailure, Requirement)> = None;
        'hosts: for host in &hosts {
            let (host_req, tlsa) = match self.dane_for(host, route.port, &req).await {
                Ok(x) => x,
                Err(reason) => {
                    let f = HostFailure {
                        reply: Reply::local(451, "4.7.5", reason),
                        no_tls: false,
                        permanent: false,
                        ip: None,
                        tls: None,
                    };
                    last = Some((host.clone(), f, req.clone()));
                    continue;
                }
            };
            let addrs = match self.dns.addrs(host).await {
                Ok(a) => a,
                Err(e) => {
                    let f = HostFailure {
                        reply: Reply::local(451, "4.4.3", e.to_string()),
                        no_tls: false,
                        permanent: false,
                        ip: None,
                        tls: None,
                    };
                    last = Some((host.clone(), f, host_req));
                    continue;
                }
            };
            for ip in addrs {
                let addr = SocketAddr::new(ip, route.port);
                match self
                    .try_host(addr, host, &host_req, tlsa.clone(), &envelope, message)
                    .await
                {
                    HostResult::Sent(txn, tls, ip) => {
                        let out = outcomes(&txn, host, ip, route.port, tls.clone(), &host_req);
                        let took_tls =
                            tls.is_some() && out.iter().any(|(o, _)| *o == Outcome::Delivered);
                        if took_tls && self.config.tls.remember {
                            if let Err(e) = self.tls_memory.remember(domain).await {
                                tracing::warn!(domain, error = %e, "cannot record TLS memory");
                            }
                        }
                        return self.finish(domain, out);
                    }
                    HostResult::Failed(f) => {
                        tracing::info!(domain, host = %host, ip = %ip, code = f.reply.code, "host failed; trying the next");
                        if f.no_tls {
                            self.metrics.tls_failures.with_label_values(&[domain]).inc();
                        }
                        // A permanent refusal (5xx to MAIL, a message too
                        // big or needing SMTPUTF8) would be the same elsewhere.
                        let stop = f.permanent;
                        last = Some((host.clone(), f, host_req.clone()));
                        if stop {
                            break 'hosts;
                        }
                    }
                }
            }
        }
        let (host, f, req) = last.unwrap_or_else(|| {
            (
                String::new(),
                HostFailure {
                    reply: Reply::local(451, "4.4.4", "no host to try"),
                    no_tls: false,
                    permanent: false,
                    ip: None,
                    tls: None,
                },
                req,
            )
        });
        let outcome = if f.no_tls && req.level == TlsLevel::Exclusive {
            Outcome::Dropped
        } else if f.no_tls && req.level.requires_tls() {
            Outcome::TlsRefused
        } else if f.permanent {
            Outcome::Bounced
        } else {
            Outcome::Deferred
        };
        let ev = evidence(&host, f.ip, route.port, f.tls, &req, f.reply.to_string());
        self.finish(domain, vec![(outcome, ev); n])
    }

    /// DANE for one host: a usable TLSA set raises the level to `dane`; a
    /// configured `dane` level without one, or a bogus answer, is a
    /// temporary failure (RFC 7672: never a downgrade).
    async fn dane_for(
        &self,
        host: &str,
        port: u16,
        req: &Requirement,
    ) -> Result<(Requirement, Option<Vec<dane::Tlsa>>), DaneHold> {
        let Some(d) = &self.dane else {
            if req.level == TlsLevel::Dane {
                return Err(DaneHold::Disabled);
            }
            return Ok((req.clone(), None));
        };
        if req.level == TlsLevel::None {
            return Ok((req.clone(), None));
        }
        match d.tlsa(host, port).await {
            Ok(DaneLookup::Usable(recs)) => Ok((
                Requirement {
                    level: TlsLevel::Dane,
                    source: if req.level == TlsLevel::Dane {
                        req.source
                    } else {
                        PolicySource::Dane
                    },
                },
                Some(recs),
            )),
            Ok(_) if req.level == TlsLevel::Dane => Err(DaneHold::NoRecords(host.to_string())),
            Ok(_) => Ok((req.clone(), None)),
            Err(error) => Err(DaneHold::Lookup {
                host: host.to_string(),
                error,
            }),
        }
    }

    /// Connects to one address and runs the transaction under `req`.
    async fn try_host(
        &self,
        addr: SocketAddr,
        host: &str,
        req: &Requirement,
        tlsa: Option<Vec<dane::Tlsa>>,
        envelope: &Envelope,
        message: &[u8],
    ) -> HostResult {
        let fail = |e: ClientError, no_tls: bool, tls: Option<OutboundTls>| {
            HostResult::Failed(HostFailure {
                permanent: false,
                reply: e.reply(),
                no_tls,
                ip: Some(addr.ip()),
                tls,
            })
        };
        let key = PoolKey {
            host: host.to_string(),
            addr,
            level: req.level,
        };
        // A pooled session proves it is alive with RSET before it is used.
        while let Some((mut conn, tls)) = self.pool.take(&key) {
            if conn.reset().await.is_ok() {
                tracing::debug!(host, "reusing an open connection");
                return self.transact(conn, key, tls, envelope, message).await;
            }
        }
        let mut conn = match Connection::connect(addr, &self.settings).await {
            Ok(c) => c,
            Err(e) => return fail(e, false, None),
        };
        let mut tls = None;
        if req.level != TlsLevel::None {
            if conn.extensions().starttls {
                let (config, verified) = match req.level {
                    TlsLevel::Verify => (self.verifying.clone(), true),
                    TlsLevel::Dane => (
                        dane::dane_config(tlsa.unwrap_or_default(), vec![host.to_string()]),
                        true,
                    ),
                    _ => (self.opportunistic.clone(), false),
                };
                let name = server_name(host, addr.ip());
                match conn.starttls(config, name).await {
                    Ok(c) => {
                        conn = c;
                        tls = conn.tls_facts().map(|mut t| {
                            t.verified = verified;
                            t
                        });
                    }
                    Err(e) if req.level == TlsLevel::May => {
                        // Opportunistic: a failed handshake falls back to a
                        // plain session on a fresh connection, as Postfix does.
                        tracing::info!(host, error = %e, "STARTTLS failed; retrying in plain (level may)");
                        conn = match Connection::connect(addr, &self.settings).await {
                            Ok(c) => c,
                            Err(e) => return fail(e, false, None),
                        };
                    }
                    // Only a definite refusal counts as "no TLS" (which drops
                    // `exclusive` mail); a timeout or a 4xx is just a failure.
                    Err(e) => {
                        let definite = match &e {
                            ClientError::Tls(_) => true,
                            ClientError::Rejected { reply, .. } => reply.is_permanent(),
                            _ => false,
                        };
                        return fail(e, definite, None);
                    }
                }
            } else if req.level.requires_tls() {
                conn.quit().await;
                return HostResult::Failed(HostFailure {
                    reply: Reply::local(
                        451,
                        "4.7.4",
                        format!("{host} does not offer STARTTLS (TLS level {})", req.level),
                    ),
                    no_tls: true,
                    permanent: false,
                    ip: Some(addr.ip()),
                    tls: None,
                });
            }
        }
        self.transact(conn, key, tls, envelope, message).await
    }

    /// Runs one transaction on an established session, then keeps the
    /// session for reuse.
    async fn transact(
        &self,
        mut conn: Connection,
        key: PoolKey,
        tls: Option<OutboundTls>,
        envelope: &Envelope,
        message: &[u8],
    ) -> HostResult {
        let ip = key.addr.ip();
        match conn.send(envelope, message).await {
            Ok(txn) => {
                self.pool.put(key, conn, tls.clone()).await;
                HostResult::Sent(txn, tls, ip)
            }
            Err(e) => {
                let permanent = e.is_permanent();
                // Refused before MAIL (size, SMTPUTF8): the session is still good.
                if matches!(e, ClientError::NeedsSmtpUtf8 | ClientError::TooBig { .. }) {
                    self.pool.put(key, conn, tls.clone()).await;
                } else {
                    conn.quit().await;
                }
                HostResult::Failed(HostFailure {
                    reply: e.reply(),
                    no_tls: false,
                    permanent,
                    ip: Some(ip),
                    tls,
                })
            }
        }
    }

    fn finish(
        &self,
        domain: &str,
        out: Vec<(Outcome, DeliveryEvidence)>,
    ) -> Vec<(Outcome, DeliveryEvidence)> {
        for (o, ev) in &out {
            self.metrics
                .deliveries
                .with_label_values(&[o.as_str(), ev.tls_level.as_str()])
                .inc();
            tracing::info!(
                domain,
                host = %ev.host,
                result = o.as_str(),
                tls = ev.tls.as_ref().map(|t| t.version.as_str()).unwrap_or("none"),
                tls_level = ev.tls_level.as_str(),
                policy = ev.policy_source.as_str(),
                // Codes only: remote replies often quote addresses.
                reply = ev.reply.split(' ').take(2).collect::<Vec<_>>().join(" "),
                "delivery attempt"
            );
        }
        out
    }
}

fn server_name(host: &str, ip: IpAddr) -> ServerName<'static> {
    ServerName::try_from(host.trim_end_matches('.').to_string())
        .unwrap_or_else(|_| ServerName::IpAddress(ip.into()))
}

fn evidence(
    host: &str,
    ip: Option<IpAddr>,
    port: u16,
    tls: Option<OutboundTls>,
    req: &Requirement,
    reply: String,
) -> DeliveryEvidence {
    DeliveryEvidence {
        at: chrono::Utc::now(),
        host: host.to_string(),
        ip,
        port,
        tls,
        tls_level: req.level,
        policy_source: req.source,
        reply,
    }
}

/// Per-recipient outcomes of a transaction that took place.
fn outcomes(
    txn: &Transaction,
    host: &str,
    ip: IpAddr,
    port: u16,
    tls: Option<OutboundTls>,
    req: &Requirement,
) -> Vec<(Outcome, DeliveryEvidence)> {
    let by_code = |r: &Reply| {
        if r.is_positive() {
            Outcome::Delivered
        } else if r.is_permanent() {
            Outcome::Bounced
        } else {
            Outcome::Deferred
        }
    };
    txn.rcpts
        .iter()
        .map(|rcpt| {
            let decisive = if !txn.mail.is_positive() {
                &txn.mail
            } else if !rcpt.is_positive() {
                rcpt
            } else {
                match &txn.data {
                    Some(d) => d,
                    // Accepted at RCPT but no DATA happened: try again.
                    None => &txn.mail,
                }
            };
            let outcome = match (&txn.data, rcpt.is_positive() && txn.mail.is_positive()) {
                (None, true) => Outcome::Deferred,
                _ => by_code(decisive),
            };
            let ev = evidence(host, Some(ip), port, tls.clone(), req, decisive.to_string());
            (outcome, ev)
        })
        .collect()
}
