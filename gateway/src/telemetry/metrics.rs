//! Prometheus metrics. Labels carry reasons, listeners and directions, never
//! addresses, subjects or content.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every metric Sealgate exports, on its own registry.
pub struct Metrics {
    registry: Registry,
    /// Connections accepted, by listener.
    pub connections: IntCounterVec,
    /// Connections refused before the greeting, by reason.
    pub connections_refused: IntCounterVec,
    /// Connections open now.
    pub connections_open: IntGauge,
    /// Sessions ended, by outcome.
    pub sessions: IntCounterVec,
    /// Messages accepted into the spool, by direction.
    pub messages_accepted: IntCounterVec,
    /// Messages or transactions refused, by reason.
    pub messages_refused: IntCounterVec,
    /// Inbound sender authentication results, by check, result and action.
    pub inbound_auth: IntCounterVec,
    /// Message octets accepted.
    pub bytes_accepted: IntCounter,
    /// Messages in the spool.
    pub spool_messages: IntGauge,
    /// Octets of message data in the spool.
    pub spool_bytes: IntGauge,
    /// Duration of each synced spool write (one per group commit).
    pub fsync_seconds: Histogram,
    /// Messages made durable by one sync.
    pub commit_batch: Histogram,
    /// Time from end of DATA to the 250 reply.
    pub accept_seconds: HistogramVec,
    /// Messages with a finding, by detector id and confidence.
    pub dlp_findings: IntCounterVec,
    /// Parts that could not be scanned, by reason code.
    pub dlp_unscannable: IntCounterVec,
    /// Time to inspect one message.
    pub inspect_seconds: Histogram,
    /// Recipient delivery attempts ended, by result and TLS level held to.
    pub deliveries: IntCounterVec,
    /// Delivery attempts that failed for want of TLS, by destination domain.
    pub tls_failures: IntCounterVec,
    /// Age in seconds of the oldest message in the queue.
    pub queue_oldest_seconds: IntGauge,
    /// Recipients waiting for a retry.
    pub queue_deferred: IntGauge,
    /// Time from acceptance to the last recipient's final state.
    pub delivered_seconds: Histogram,
    /// DSNs queued, by kind (failed, delayed).
    pub dsns: IntCounterVec,
    /// Escrow portal events, by event (notice, code_sent, login_ok, login_failed, locked, read, download, reply, revoke, expire).
    pub portal_events: IntCounterVec,
    /// Messages journaled, by outcome (`new` content or `merged` duplicate).
    pub archive_journaled: IntCounterVec,
    /// Octets of messages journaled, as received (duplicates included).
    pub archive_raw_bytes: IntCounter,
    /// Octets of content written to the archive (compressed, encrypted; once per content).
    pub archive_stored_bytes: IntCounter,
    /// Time to journal one message (synced write included).
    pub archive_journal_seconds: Histogram,
    /// Time to answer one archive search.
    pub archive_search_seconds: Histogram,
    /// The archive chain's last sequence number.
    pub archive_head: IntGauge,
    /// The last sequence number the committed search index covers.
    pub archive_indexed: IntGauge,
    /// The last sequence number a verify found intact.
    pub archive_verified: IntGauge,
    /// Messages this node took from a node whose lease ran out, by the
    /// stage they resumed at (those at `deliver` may be delivered twice).
    pub cluster_takeovers: IntCounterVec,
    /// Messages this node holds leases on.
    pub cluster_leases: IntGauge,
    /// Ids handed on to a stage and not yet taken by it, by stage.
    pub stage_waiting: IntGaugeVec,
    /// Time an id waited between being handed on and its stage taking it, by stage.
    pub stage_wait_seconds: HistogramVec,
    /// Time a stage worked on an id, from taking it to handing it on or dropping it, by stage.
    pub stage_work_seconds: HistogramVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn latency_buckets() -> Vec<f64> {
    // 50 µs .. ~3.3 s, fine enough for percentiles in the benchmark.
    prometheus::exponential_buckets(0.000_05, 1.25, 50).expect("valid buckets")
}

fn stage_buckets() -> Vec<f64> {
    // 0.5 ms .. ~43 s: a stage's turn is milliseconds, a stage behind is seconds.
    prometheus::exponential_buckets(0.000_5, 1.5, 29).expect("valid buckets")
}

impl Metrics {
    /// Creates and registers all metrics.
    pub fn new() -> Self {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("unique metric");
            c
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("unique metric");
            g
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))
                .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let connections = counter_vec(
            "sealgate_smtp_connections_total",
            "SMTP connections accepted",
            &["listener"],
        );
        let connections_refused = counter_vec(
            "sealgate_smtp_connections_refused_total",
            "SMTP connections refused before the greeting",
            &["reason"],
        );
        let connections_open = gauge(
            "sealgate_smtp_connections_open",
            "SMTP connections open now",
        );
        let sessions = counter_vec(
            "sealgate_smtp_sessions_total",
            "SMTP sessions ended",
            &["outcome"],
        );
        let messages_accepted = counter_vec(
            "sealgate_messages_accepted_total",
            "Messages accepted into the spool",
            &["direction"],
        );
        let messages_refused = counter_vec(
            "sealgate_messages_refused_total",
            "Messages, recipients or commands refused",
            &["reason"],
        );
        let inbound_auth = counter_vec(
            "sealgate_inbound_auth_total",
            "Inbound messages' sender authentication results (check: spf, dkim, arc, dmarc)",
            &["check", "result", "action"],
        );
        let bytes_accepted = IntCounter::new(
            "sealgate_message_bytes_accepted_total",
            "Message octets accepted",
        )
        .expect("valid metric");
        registry
            .register(Box::new(bytes_accepted.clone()))
            .expect("unique metric");
        let spool_messages = gauge("sealgate_spool_messages", "Messages in the spool");
        let spool_bytes = gauge("sealgate_spool_bytes", "Message octets in the spool");
        let fsync_seconds = histogram(
            "sealgate_spool_fsync_seconds",
            "Duration of one synced spool write (group commit)",
            latency_buckets(),
        );
        let commit_batch = histogram(
            "sealgate_spool_commit_batch_messages",
            "Messages made durable by one sync",
            vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0],
        );
        let accept_seconds = HistogramVec::new(
            HistogramOpts::new(
                "sealgate_smtp_accept_seconds",
                "Time from end of DATA to the 250 reply",
            )
            .buckets(latency_buckets()),
            &["listener"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(accept_seconds.clone()))
            .expect("unique metric");
        let dlp_findings = counter_vec(
            "sealgate_dlp_findings_total",
            "Messages with a DLP finding, by detector and confidence",
            &["detector", "confidence"],
        );
        let dlp_unscannable = counter_vec(
            "sealgate_dlp_unscannable_parts_total",
            "Message parts that could not be scanned, by reason",
            &["reason"],
        );
        let inspect_seconds = histogram(
            "sealgate_inspect_seconds",
            "Time to inspect one message",
            latency_buckets(),
        );
        let deliveries = counter_vec(
            "sealgate_deliveries_total",
            "Recipient delivery attempts, by result and TLS level",
            &["result", "tls_level"],
        );
        let tls_failures = counter_vec(
            "sealgate_delivery_tls_failures_total",
            "Delivery attempts that failed for want of TLS, by destination domain",
            &["domain"],
        );
        let queue_oldest_seconds = gauge(
            "sealgate_queue_oldest_message_seconds",
            "Age of the oldest message in the queue",
        );
        let queue_deferred = gauge(
            "sealgate_queue_deferred_recipients",
            "Recipients waiting for a retry",
        );
        // 1 ms .. ~1 day: retries make this span hours, not milliseconds.
        let delivered_seconds = histogram(
            "sealgate_delivery_completed_seconds",
            "Time from acceptance to the last recipient's final state",
            prometheus::exponential_buckets(0.001, 1.5, 46).expect("valid buckets"),
        );
        let dsns = counter_vec(
            "sealgate_dsn_total",
            "Delivery status notifications queued, by kind",
            &["kind"],
        );
        let portal_events = counter_vec(
            "sealgate_portal_events_total",
            "Escrow portal events, by event",
            &["event"],
        );
        let archive_journaled = counter_vec(
            "sealgate_archive_journaled_total",
            "Messages journaled into the archive, by outcome (new, merged)",
            &["outcome"],
        );
        let archive_raw_bytes = IntCounter::new(
            "sealgate_archive_raw_bytes_total",
            "Octets of messages journaled, as received, duplicates included",
        )
        .expect("valid metric");
        registry
            .register(Box::new(archive_raw_bytes.clone()))
            .expect("unique metric");
        let archive_stored_bytes = IntCounter::new(
            "sealgate_archive_stored_bytes_total",
            "Octets of content written to the archive (compressed and encrypted, once per content)",
        )
        .expect("valid metric");
        registry
            .register(Box::new(archive_stored_bytes.clone()))
            .expect("unique metric");
        let archive_journal_seconds = histogram(
            "sealgate_archive_journal_seconds",
            "Time to journal one message, synced write included",
            latency_buckets(),
        );
        let archive_search_seconds = histogram(
            "sealgate_archive_search_seconds",
            "Time to answer one archive search",
            latency_buckets(),
        );
        let archive_head = gauge(
            "sealgate_archive_head_sequence",
            "The archive chain's last sequence number",
        );
        let archive_indexed = gauge(
            "sealgate_archive_indexed_sequence",
            "The last archive sequence number the committed search index covers (head minus this: what search cannot find yet)",
        );
        let archive_verified = gauge(
            "sealgate_archive_verified_sequence",
            "The last sequence number an archive verify found intact (0: none yet)",
        );
        let cluster_takeovers = counter_vec(
            "sealgate_cluster_takeovers_total",
            "Messages this node took from a node whose lease ran out, by the stage they resumed at (stage=\"deliver\": may be delivered twice)",
            &["stage"],
        );
        let cluster_leases = gauge(
            "sealgate_cluster_leases",
            "Queued messages this node holds leases on (0 on a single node)",
        );
        let stage_waiting = IntGaugeVec::new(
            Opts::new(
                "sealgate_stage_waiting_messages",
                "Messages handed on to a stage and not yet taken by it, by stage",
            ),
            &["stage"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(stage_waiting.clone()))
            .expect("unique metric");
        let stage_histogram = |name: &str, help: &str| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(stage_buckets()),
                &["stage"],
            )
            .expect("valid metric");
            registry
                .register(Box::new(h.clone()))
                .expect("unique metric");
            h
        };
        let stage_wait_seconds = stage_histogram(
            "sealgate_stage_wait_seconds",
            "Time a message waited between being handed on and its stage taking it, by stage",
        );
        let stage_work_seconds = stage_histogram(
            "sealgate_stage_work_seconds",
            "Time a stage worked on a message, from taking it to handing it on or dropping it, by stage",
        );
        Metrics {
            registry,
            cluster_takeovers,
            cluster_leases,
            stage_waiting,
            stage_wait_seconds,
            stage_work_seconds,
            archive_journaled,
            archive_raw_bytes,
            archive_stored_bytes,
            archive_journal_seconds,
            archive_search_seconds,
            archive_head,
            archive_indexed,
            archive_verified,
            deliveries,
            tls_failures,
            queue_oldest_seconds,
            queue_deferred,
            delivered_seconds,
            dsns,
            portal_events,
            dlp_findings,
            dlp_unscannable,
            inspect_seconds,
            connections,
            connections_refused,
            connections_open,
            sessions,
            messages_accepted,
            messages_refused,
            inbound_auth,
            bytes_accepted,
            spool_messages,
            spool_bytes,
            fsync_seconds,
            commit_batch,
            accept_seconds,
        }
    }

    /// Counts a refusal by reason.
    pub fn refused(&self, reason: &str) {
        self.messages_refused.with_label_values(&[reason]).inc();
    }

    /// Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding to a Vec cannot fail");
        String::from_utf8(buf).expect("prometheus text is UTF-8")
    }
}
