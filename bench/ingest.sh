#!/usr/bin/env bash
# Ingest benchmark: the same smtp-source load (10 KB messages, 20 concurrent
# sessions) against Sealgate and against a local Postfix relaying to
# smtp-sink. Prints accepted messages per second for both, their ratio, and
# Sealgate's p50/p99 time from end of DATA to "250" (from its metrics).
# Sealgate's DLP inspect stage runs on the same two cores during the load.
# Usage: bench/ingest.sh [MESSAGES]   (default 5000)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000}
SESSIONS=20
SIZE=10240
scripts/install-deps test
cargo build --release -p sealgate >/dev/null
# CARGO_TARGET_DIR (scripts/run and scripts/test set one) moves the binary.
BIN=${CARGO_TARGET_DIR:-target}/release/sealgate
# On the project disk, not /tmp: fsync must reach a real device.
WORK=$(mktemp -d "$PWD/target/bench.XXXXXX")
chmod 755 "$WORK"   # Postfix runs as its own user and must reach its directories
cleanup() {
  [ -n "${SG_PID:-}" ] && kill "$SG_PID" 2>/dev/null || true
  [ -n "${SINK_PID:-}" ] && kill "$SINK_PID" 2>/dev/null || true
  postfix -c "$WORK/pf/etc" stop >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
now() { date +%s.%N; }

# --- Sealgate -------------------------------------------------------------
SG=$(port); ADMIN=$(port)
cat > "$WORK/sealgate.toml" <<TOML
[server]
hostname = "bench.sealgate.test"
data_dir = "$WORK/sg"
[[listener]]
name = "bench"
address = "127.0.0.1:$SG"
tls = "none"
[admin]
address = "127.0.0.1:$ADMIN"
[log]
level = "warn"
[limits]
max_connections_per_ip = 1000
TOML
$BIN serve --config "$WORK/sealgate.toml" 2>"$WORK/sealgate.log" &
SG_PID=$!
wait_port "$SG"; wait_port "$ADMIN"
t0=$(now)
smtp-source -s $SESSIONS -l $SIZE -m "$N" -c -f bench@tenant.test -t rcpt@example.com "127.0.0.1:$SG" >/dev/null
t1=$(now)
curl_metrics() { exec 3<>/dev/tcp/127.0.0.1/$ADMIN; printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3; cat <&3; }
curl_metrics > "$WORK/metrics.txt"
kill "$SG_PID"; wait "$SG_PID" 2>/dev/null || true; SG_PID=

# --- Postfix -> smtp-sink -------------------------------------------------
SINK=$(port); PF=$(port)
smtp-sink -u postfix -c "127.0.0.1:$SINK" 1000 >"$WORK/sink.out" 2>&1 &
SINK_PID=$!
mkdir -p "$WORK/pf/etc" "$WORK/pf/queue" "$WORK/pf/data"
chown postfix "$WORK/pf/data"
cat > "$WORK/pf/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $WORK/pf/queue
data_directory = $WORK/pf/data
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = bench.postfix.test
mydestination =
mynetworks = 127.0.0.0/8
relayhost = [127.0.0.1]:$SINK
maillog_file = /var/log/sealgate-bench-postfix.log
default_process_limit = 200
smtpd_client_connection_count_limit = 0
CF
awk -v p="$PF" '/^[a-z0-9]/ && NF>=8 { if ($1=="smtp" && $2=="inet") $1=p; $5="n" } {print}' /etc/postfix/master.cf > "$WORK/pf/etc/master.cf"
postfix -c "$WORK/pf/etc" start >/dev/null 2>&1
wait_port "$PF"; wait_port "$SINK"
t2=$(now)
smtp-source -s $SESSIONS -l $SIZE -m "$N" -c -f bench@tenant.test -t rcpt@example.com "127.0.0.1:$PF" >/dev/null
t3=$(now)
for _ in $(seq 600); do
  postqueue -c "$WORK/pf/etc" -p 2>/dev/null | grep -q "Mail queue is empty" && break
  sleep 0.1
done
t4=$(now)

python3 - "$N" "$t0" "$t1" "$t2" "$t3" "$t4" "$WORK/metrics.txt" <<'PY'
import sys, re
n = int(sys.argv[1]); t0, t1, t2, t3, t4 = map(float, sys.argv[2:7])
sg = n / (t1 - t0); pf = n / (t3 - t2); pf_e2e = n / (t4 - t2)
buckets = []; count = 0
for line in open(sys.argv[7]):
    m = re.match(r'sealgate_smtp_accept_seconds_bucket\{le="([^"]+)",listener="bench"\} (\d+)', line) or \
        re.match(r'sealgate_smtp_accept_seconds_bucket\{listener="bench",le="([^"]+)"\} (\d+)', line)
    if m:
        le = float('inf') if m.group(1) == '+Inf' else float(m.group(1)); buckets.append((le, int(m.group(2))))
    m = re.match(r'sealgate_smtp_accept_seconds_count\{listener="bench"\} (\d+)', line)
    if m: count = int(m.group(1))
def q(p):
    target = p * count; prev_le, prev_c = 0.0, 0
    for le, c in sorted(buckets):
        if c >= target:
            if le == float('inf'): return prev_le
            return prev_le + (le - prev_le) * ((target - prev_c) / max(c - prev_c, 1))
        prev_le, prev_c = le, c
    return float('nan')
batch = {}
for line in open(sys.argv[7]):
    for k in ('sealgate_spool_commit_batch_messages_sum', 'sealgate_spool_commit_batch_messages_count'):
        if line.startswith(k + ' '): batch[k] = float(line.split()[1])
print(f"messages: {n} x {10240} bytes, {20} concurrent sessions (smtp-source), loopback, plain SMTP")
print(f"sealgate accepted:  {sg:8.1f} msg/s   ({n} in {t1-t0:.2f} s; fsync before every 250)")
print(f"postfix accepted:   {pf:8.1f} msg/s   ({n} in {t3-t2:.2f} s); end to end to smtp-sink: {pf_e2e:.1f} msg/s")
print(f"ratio sealgate/postfix (accepted): {sg/pf:.2f}")
print(f"sealgate end-of-DATA -> 250: p50 {q(0.5)*1000:.2f} ms, p99 {q(0.99)*1000:.2f} ms ({count} samples)")
inspected = 0
for line in open(sys.argv[7]):
    if line.startswith('sealgate_inspect_seconds_count '): inspected = int(float(line.split()[1]))
print(f"sealgate DLP inspection (runs beside ingest): {inspected} of {n} messages inspected when the load ended")
if batch.get('sealgate_spool_commit_batch_messages_count'):
    print(f"sealgate group commit: {batch['sealgate_spool_commit_batch_messages_count']:.0f} fsyncs, {batch['sealgate_spool_commit_batch_messages_sum']/batch['sealgate_spool_commit_batch_messages_count']:.2f} messages per fsync")
PY
