#!/usr/bin/env bash
# Relay benchmark, end to end: smtp-source -> Sealgate -> smtp-sink against
# smtp-source -> Postfix -> smtp-sink, in the same run, on the same machine
# and disk: 10 KB messages, 20 concurrent client sessions, one recipient
# each, 20 delivery connections to the sink. Prints messages per second from
# the start of the load until the sink has received all N messages, for
# both, their ratio, Sealgate's p50/p99 time from acceptance to delivered
# (sealgate_delivery_completed_seconds), and the number of messages each
# sink received, which must be exactly N.
#
# Sealgate runs twice: with DLP inspection on (the default; every message
# is inspected before it is delivered) and with [dlp] enabled = false.
#
# Both legs are plain SMTP for both relays: neither smtp-source nor
# smtp-sink speaks STARTTLS, so TLS cannot be put on either leg for both.
#
# Bytes written to the disk per message are read from the block device's
# own counters (/sys/class/block/DEV/stat) around each leg, from the start
# of the load until the relay has stopped: everything the relay, its
# database's compactions and the kernel wrote for it, the same way for both.
#
# Usage: bench/relay.sh [MESSAGES]   (default 5000)
# A fifth leg sends RELAY_LIGHT_MESSAGES (default 2000; 0: no such leg) at
# a light, evenly paced RELAY_LIGHT_RATE (default 100 msg/s) through
# Sealgate with DLP on, for its latency when it is not saturated.
# Environment: RELAY_BASELINE (path to another sealgate binary, e.g. a
# release build of an earlier commit: it runs as a fourth leg, DLP on, so a
# change is compared with what came before in the same run),
# SEALGATE_LOG_LEVEL (default "info": Postfix logs every
# message too), RELAY_STALL_SECONDS (default 60: give up when the sink has
# received nothing new for this long), RELAY_KEEP=1 (keep the work directory:
# configs, logs, metrics), RELAY_PROFILE=DIR (record the DLP-on leg with
# perf at 199 Hz with DWARF call graphs, and write DIR/relay.folded, the
# flame graph DIR/relay.svg (inferno) and DIR/top.txt, the functions most
# often on the CPU by self time; needs linux-perf and inferno, which
# `scripts/install-deps bench` installs), CARGO_TARGET_DIR (honoured).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-5000}
SESSIONS=20
SIZE=10240
# Delivery connections to the sink. Postfix's default_destination_concurrency_limit
# is 20 (written out below); Sealgate's max_connections_per_domain is set to
# the same so neither relay gets more parallelism toward the sink.
CONCURRENCY=20
LOG_LEVEL=${SEALGATE_LOG_LEVEL:-info}
STALL=${RELAY_STALL_SECONDS:-60}
FROM=bench@tenant.test
RCPT=rcpt@sink.test
case "$N" in '' | *[!0-9]* | 0) echo "usage: $0 [MESSAGES]" >&2; exit 2 ;; esac

scripts/install-deps test
# Ask cargo where the binary is: CARGO_TARGET_DIR or a configured target-dir
# moves it out of ./target.
BIN=$(cargo build --release -p sealgate --message-format=json-render-diagnostics |
  python3 -c '
import json, sys
exe = None
for line in sys.stdin:
    try: m = json.loads(line)
    except ValueError: continue
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "sealgate":
        exe = m["executable"]
print(exe or "")')
[ -x "$BIN" ] || { echo "cargo did not report a sealgate executable" >&2; exit 1; }

BASELINE=${RELAY_BASELINE:-}
PROFILE=${RELAY_PROFILE:-}
# The light-load leg: evenly paced messages (bench/paced_source.py), DLP on.
LIGHT_N=${RELAY_LIGHT_MESSAGES:-2000}
LIGHT_RATE=${RELAY_LIGHT_RATE:-100}
if [ -n "$PROFILE" ]; then
  for tool in perf inferno-collapse-perf inferno-flamegraph; do
    command -v "$tool" >/dev/null || { echo "RELAY_PROFILE needs $tool: run scripts/install-deps bench" >&2; exit 2; }
  done
  mkdir -p "$PROFILE"; PROFILE=$(cd "$PROFILE" && pwd)
fi
if [ -n "$BASELINE" ] && [ ! -x "$BASELINE" ]; then
  echo "RELAY_BASELINE=$BASELINE is not an executable" >&2; exit 2
fi

# On the project disk, not /tmp: fsync must reach a real device.
mkdir -p target
WORK=$(mktemp -d "$PWD/target/bench-relay.XXXXXX")
# The block device under the work directory, for its write counter.
DEV=$(basename "$(df --output=source "$WORK" | tail -1)")
DEV_STAT=/sys/class/block/$DEV/stat
[ -r "$DEV_STAT" ] || DEV_STAT=
sectors_written() { if [ -n "$DEV_STAT" ]; then awk '{ print $7 }' "$DEV_STAT"; else echo 0; fi; }
chmod 755 "$WORK"   # Postfix runs as its own user and must reach its directories
PF_LOG=/var/log/sealgate-bench-relay-postfix.log
SG_PID= SINK_PID= WATCH_PID= PF_UP=
cleanup() {
  [ -n "$SG_PID" ] && kill "$SG_PID" 2>/dev/null || true
  [ -n "$SINK_PID" ] && kill "$SINK_PID" 2>/dev/null || true
  [ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null || true
  [ -n "$PF_UP" ] && postfix -c "$WORK/pf/etc" stop >/dev/null 2>&1 || true
  if [ -n "${RELAY_KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }
now() { date +%s.%N; }
metrics() { (exec 3<>/dev/tcp/127.0.0.1/$1; printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3; cat <&3); }
metric() { awk -v k="$2" '$1 == k { v = $2 } END { print v + 0 }' "$1"; }

# smtp-sink -c rewrites "sess=S quit=Q mesg=M\r" whenever a session ends, a
# QUIT arrives or a message's final "." arrives. This watcher reads that
# stream and writes PREFIX.done with the wall-clock time at which mesg first
# reached N, PREFIX.stalled if nothing new arrived for STALL seconds first,
# PREFIX.count (final mesg count and time of the last message) at EOF, and
# PREFIX.fifths: the time mesg reached each fifth of N, for the rate of
# each fifth of a long run (flat when nothing backs up).
cat > "$WORK/watch.py" <<'PY'
import os, re, select, sys, time
n, stall, prefix = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
def put(name, text):
    with open(prefix + name + ".tmp", "w") as f: f.write(text)
    os.rename(prefix + name + ".tmp", prefix + name)
pat = re.compile(rb"mesg=(\d+)")
count, last, hit, stalled, tail = 0, time.time(), False, False, b""
fifths = []
while True:
    ready, _, _ = select.select([0], [], [], 0.2)
    t = time.time()
    if ready:
        data = os.read(0, 1 << 16)
        if not data:
            break
        *records, tail = (tail + data).split(b"\r")
        for rec in records:
            m = pat.search(rec)
            if m and int(m.group(1)) > count:
                count, last = int(m.group(1)), t
                while len(fifths) < 5 and count >= n * (len(fifths) + 1) // 5:
                    fifths.append(t)
        if count >= n and not hit:
            hit = True
            put(".done", f"{t:.6f}\n")
    if not hit and not stalled and t - last > stall:
        stalled = True
        put(".stalled", f"{count}\n")
put(".count", f"{count} {last:.6f}\n")
put(".fifths", " ".join(f"{x:.6f}" for x in fifths) + "\n")
PY

start_sink() { # NAME [COUNT]: a fresh smtp-sink on port $SINK, its counter watched
  SINK=$(port)
  mkfifo "$WORK/$1.fifo"
  python3 "$WORK/watch.py" "${2:-$N}" "$STALL" "$WORK/$1" <"$WORK/$1.fifo" &
  WATCH_PID=$!
  smtp-sink -u postfix -c "127.0.0.1:$SINK" 1000 >"$WORK/$1.fifo" 2>"$WORK/$1.sink.err" &
  SINK_PID=$!
  wait_port "$SINK"
}
wait_sink() { # NAME: until the sink has all N messages, or has stalled
  while [ ! -e "$WORK/$1.done" ] && [ ! -e "$WORK/$1.stalled" ]; do
    kill -0 "$WATCH_PID" 2>/dev/null || { echo "$1: sink watcher died" >&2; cat "$WORK/$1.sink.err" >&2; exit 1; }
    sleep 0.02
  done
}
stop_sink() { # NAME: after a pause for stray duplicates; leaves NAME.count
  sleep 1
  kill "$SINK_PID"; wait "$SINK_PID" 2>/dev/null || true; SINK_PID=
  wait "$WATCH_PID" || true; WATCH_PID=
}
load() { # PORT: the client side, timed by the caller
  smtp-source -s $SESSIONS -l $SIZE -m "$N" -c -f "$FROM" -t "$RCPT" "127.0.0.1:$1" >/dev/null
}
paced() { # PORT: the light load, evenly paced
  python3 bench/paced_source.py "127.0.0.1:$1" "$LIGHT_N" "$LIGHT_RATE" 10 $SIZE "$FROM" "$RCPT" > "$WORK/light.paced"
}

# --- Postfix -> smtp-sink ---------------------------------------------------
run_postfix() {
  local name=postfix PF
  start_sink $name
  PF=$(port)
  mkdir -p "$WORK/pf/etc" "$WORK/pf/queue" "$WORK/pf/data"
  chown postfix "$WORK/pf/data"
  rm -f "$PF_LOG"
  cat > "$WORK/pf/etc/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $WORK/pf/queue
data_directory = $WORK/pf/data
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
myhostname = bench.postfix.test
mydestination =
mynetworks = 127.0.0.0/8
default_transport = smtp
relayhost = [127.0.0.1]:$SINK
default_destination_concurrency_limit = $CONCURRENCY
smtp_destination_concurrency_limit = $CONCURRENCY
smtpd_tls_security_level = none
smtp_tls_security_level = none
maillog_file = $PF_LOG
default_process_limit = 200
smtpd_client_connection_count_limit = 0
CF
  awk -v p="$PF" '/^[a-z0-9]/ && NF>=8 { if ($1=="smtp" && $2=="inet") $1=p; $5="n" } {print}' /etc/postfix/master.cf > "$WORK/pf/etc/master.cf"
  postfix -c "$WORK/pf/etc" start >/dev/null 2>&1
  PF_UP=1
  wait_port "$PF"
  sync
  local t0 t1 w0
  w0=$(sectors_written)
  t0=$(now); load "$PF"; t1=$(now)
  wait_sink $name
  # The queue should be empty by now; anything left is a delivery problem.
  for _ in $(seq 100); do
    postqueue -c "$WORK/pf/etc" -p 2>/dev/null | grep -q "Mail queue is empty" && break
    sleep 0.1
  done
  postqueue -c "$WORK/pf/etc" -p 2>/dev/null | tail -1 > "$WORK/$name.queue"
  postfix -c "$WORK/pf/etc" stop >/dev/null 2>&1 || true; PF_UP=
  sync
  echo $(( $(sectors_written) - w0 )) > "$WORK/$name.sectors"
  stop_sink $name
  echo "$t0 $t1" > "$WORK/$name.times"
}

# --- Sealgate -> smtp-sink --------------------------------------------------
run_sealgate() { # NAME DLP(true|false) [BINARY [LOADER COUNT]]
  local name=$1 bin=${3:-$BIN} loader=${4:-load} count=${5:-$N} SG ADMIN
  start_sink "$name" "$count"
  SG=$(port); ADMIN=$(port)
  cat > "$WORK/$name.toml" <<TOML
[server]
hostname = "bench.sealgate.test"
data_dir = "$WORK/$name"
[[listener]]
name = "bench"
address = "127.0.0.1:$SG"
tls = "none"
[admin]
address = "127.0.0.1:$ADMIN"
[log]
level = "$LOG_LEVEL"
[limits]
max_connections_per_ip = 1000
[tls]
default_level = "may"
dane = false
mta_sts = false
remember = false
[delivery]
max_connections = 100
max_connections_per_domain = $CONCURRENCY
[[route]]
domains = ["sink.test"]
host = "127.0.0.1"
port = $SINK
tls = "none"
[dlp]
enabled = $2
TOML
  "$bin" serve --config "$WORK/$name.toml" 2>"$WORK/$name.log" &
  SG_PID=$!
  wait_port "$SG"; wait_port "$ADMIN"
  local PERF_PID=
  if [ -n "$PROFILE" ] && [ "$name" = sealgate-dlp ]; then
    perf record -q -F 199 -g --call-graph dwarf,16384 -p "$SG_PID" -o "$WORK/perf.data" 2>"$WORK/perf.err" &
    PERF_PID=$!
    sleep 0.5
  fi
  sync
  local t0 t1 w0
  w0=$(sectors_written)
  t0=$(now); $loader "$SG"; t1=$(now)
  wait_sink "$name"
  # Wait for the last completions to be recorded (the histogram is observed
  # just after the sink's reply), then read the metrics.
  for _ in $(seq 100); do
    metrics "$ADMIN" > "$WORK/$name.metrics"
    [ "$(metric "$WORK/$name.metrics" sealgate_delivery_completed_seconds_count)" -ge "$count" ] && break
    sleep 0.1
  done
  metrics "$ADMIN" > "$WORK/$name.metrics"
  if [ -n "$PERF_PID" ]; then kill -INT "$PERF_PID"; wait "$PERF_PID" 2>/dev/null || true; fi
  # Peak resident memory, bytes the process itself had written to storage,
  # and its CPU time (user + system, clock ticks), before it stops.
  { grep VmHWM /proc/$SG_PID/status | awk '{ print $2 * 1024 }'
    awk '$1 == "write_bytes:" { print $2 }' /proc/$SG_PID/io
    awk '{ print $14 + $15 }' /proc/$SG_PID/stat; } > "$WORK/$name.proc" 2>/dev/null || true
  kill "$SG_PID"; wait "$SG_PID" 2>/dev/null || true; SG_PID=
  sync
  echo $(( $(sectors_written) - w0 )) > "$WORK/$name.sectors"
  stop_sink "$name"
  echo "$t0 $t1" > "$WORK/$name.times"
}

echo "relay benchmark: $N messages, running postfix, sealgate (DLP on), sealgate (DLP off)${BASELINE:+, the baseline (DLP on)} ..." >&2
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
run_postfix
run_sealgate sealgate-dlp true
run_sealgate sealgate-nodlp false
[ -n "$BASELINE" ] && run_sealgate baseline-dlp true "$BASELINE"
if [ "$LIGHT_N" -gt 0 ]; then
  echo "light load: $LIGHT_N messages at $LIGHT_RATE msg/s, sealgate DLP on ..." >&2
  run_sealgate sealgate-light true "$BIN" paced "$LIGHT_N"
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
if [ -n "$PROFILE" ] && [ -s "$WORK/perf.data" ]; then
  echo "rendering the profile of the DLP-on leg into $PROFILE ..." >&2
  perf script -i "$WORK/perf.data" 2>/dev/null | inferno-collapse-perf > "$PROFILE/relay.folded"
  inferno-flamegraph --title "sealgate relay, DLP on, $N messages" < "$PROFILE/relay.folded" > "$PROFILE/relay.svg"
  perf report -i "$WORK/perf.data" -g none --no-children --sort comm,symbol --percent-limit 0.5 --stdio 2>/dev/null |
    grep -v '^$' | grep -E '^ +[0-9]' | head -40 > "$PROFILE/top.txt"
  perf report -i "$WORK/perf.data" -g none --no-children --sort comm --stdio 2>/dev/null |
    grep -E '^ +[0-9]' | head -20 > "$PROFILE/threads.txt"
fi

python3 - "$N" "$WORK" "$SESSIONS" "$SIZE" "$CONCURRENCY" "$LOG_LEVEL" "$(postconf -d -h mail_version)" "$LOAD_BEFORE" "$LOAD_AFTER" "$BASELINE" "$DEV_STAT" "$LIGHT_N" "$LIGHT_RATE" <<'PY'
import calendar, json, math, os, re, sys, time
n, work, sessions, size, conc, loglevel, pfver, load0, load1, baseline, devstat, light_n, light_rate = int(sys.argv[1]), sys.argv[2], *sys.argv[3:14]
light_n = int(light_n)
def read(path, default=""):
    try: return open(path).read()
    except OSError: return default
def run(name):
    t0, t1 = map(float, read(f"{work}/{name}.times").split())
    done = read(f"{work}/{name}.done").strip()
    count, last = read(f"{work}/{name}.count", "0 0").split()
    r = {"t0": t0, "t1": t1, "count": int(count), "last": float(last),
         "done": float(done) if done else None}
    r["rate"] = n / (r["done"] - t0) if r["done"] else None
    r["accept_rate"] = n / (t1 - t0)
    return r
def hist(name, metric):
    buckets, count, total = [], 0, 0.0
    text = read(f"{work}/{name}.metrics")
    for line in text.splitlines():
        m = re.match(metric + r'_bucket\{le="([^"]+)"\} (\S+)', line)
        if m:
            le = math.inf if m.group(1) == "+Inf" else float(m.group(1))
            buckets.append((le, float(m.group(2))))
        elif line.startswith(metric + "_count "): count = int(float(line.split()[1]))
        elif line.startswith(metric + "_sum "): total = float(line.split()[1])
    return sorted(buckets), count, total, text
def quantile(buckets, count, p):
    # Linear interpolation inside the bucket holding the p-quantile, as
    # Prometheus' histogram_quantile does. None: above the top bucket.
    target = p * count; prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= target:
            if le == math.inf: return None
            return prev_le + (le - prev_le) * ((target - prev_c) / max(c - prev_c, 1))
        prev_le, prev_c = le, c
    return None
def ms(buckets, q):
    if q is None:
        top = max(le for le, _ in buckets if le != math.inf)
        return f"> {top*1000:.0f} ms (beyond the histogram's top bucket)"
    return f"{q*1000:.1f} ms"
def counter(text, name, **labels):
    tot = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"): continue
        lab = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(lab.get(k) == v for k, v in labels.items()): tot += float(line.split()[-1])
    return int(tot)
def gauge(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "): return int(float(line.split()[1]))
    return -1

def log_latencies(name):
    # Exact per-message times from Sealgate's own log (level info): the
    # "message accepted" line (after the spool commit, before the 250) to
    # the "message finished" line (after the last recipient is final).
    def ts(s):
        whole, _, frac = s.rstrip("Z").partition(".")
        return calendar.timegm(time.strptime(whole, "%Y-%m-%dT%H:%M:%S")) + float("0." + (frac or "0"))
    acc, lat = {}, []
    for line in read(f"{work}/{name}.log").splitlines():
        try: e = json.loads(line)
        except ValueError: continue
        m, i = e.get("message"), e.get("id")
        if m == "message accepted": acc[i] = ts(e["timestamp"])
        elif m == "message finished" and i in acc: lat.append(ts(e["timestamp"]) - acc.pop(i))
    return sorted(lat)
def rank(xs, p):
    return xs[max(math.ceil(p * len(xs)) - 1, 0)]

pf, on, off = run("postfix"), run("sealgate-dlp"), run("sealgate-nodlp")
base = run("baseline-dlp") if baseline else None
ok = True
def written(name):
    s = read(f"{work}/{name}.sectors").strip()
    return int(s) * 512 / n if s and devstat else None
def rate(r):
    return f"{r['rate']:8.1f} msg/s" if r["rate"] else "     n/a msg/s"
def detail(r):
    if not r["done"]:
        return f"(sink stalled at {r['count']} of {n})"
    return (f"({n} in {r['done']-r['t0']:.2f} s; all accepted after {r['t1']-r['t0']:.2f} s, "
            f"{r['accept_rate']:.1f} msg/s)")
print(f"relay benchmark: smtp-source -> relay -> smtp-sink, {n} messages x {size} bytes, 1 recipient each,")
print(f"  {sessions} concurrent smtp-source sessions, loopback, {os.cpu_count()} CPUs, relay spool on the project disk")
print(f"  TLS: none on either leg, for both relays: smtp-source and smtp-sink (Postfix {pfver}) do not speak STARTTLS")
print(f"  delivery to the sink: at most {conc} connections for both (Postfix default_destination_concurrency_limit = 20;")
print(f"  Sealgate [delivery] max_connections_per_domain = {conc}); both reuse connections; Sealgate log level {loglevel}")
print(f"  msg/s = N / (start of load -> the sink has received the Nth message)")
print(f"  load average before / after the runs: {load0} / {load1} (other work on the machine skews the figures,")
print(f"  and its writes count in the disk's bytes written)")
print()
print(f"postfix relay:   {rate(pf)}            {detail(pf)}")
print(f"sealgate relay:  {rate(on)} (DLP on)   {detail(on)}")
print(f"sealgate relay:  {rate(off)} (DLP off)  {detail(off)}")
if base:
    print(f"baseline relay:  {rate(base)} (DLP on)   {detail(base)}  [{baseline}]")
if pf["rate"] and on["rate"]:
    line = f"ratio sealgate/postfix: {on['rate']/pf['rate']:.2f} (DLP on)"
    if off["rate"]: line += f", {off['rate']/pf['rate']:.2f} (DLP off)"
    print(line)
if base and base["rate"] and on["rate"]:
    print(f"ratio sealgate/baseline (DLP on): {on['rate']/base['rate']:.2f}")
legs = [("postfix", "postfix"), ("sealgate-dlp", "sealgate DLP on"), ("sealgate-nodlp", "sealgate DLP off")]
if base: legs.append(("baseline-dlp", "baseline DLP on"))
w = [(label, written(name)) for name, label in legs]
if all(b is not None for _, b in w):
    print("disk written per message (" + os.path.basename(os.path.dirname(devstat)) + ", load to stop): " +
          ", ".join(f"{label} {b/1024:.1f} KiB" for label, b in w))
def fifths(name, t0):
    marks = [float(x) for x in read(f"{work}/{name}.fifths").split()]
    if len(marks) < 5: return None
    edges = [t0] + marks
    return [(n / 5) / (b - a) for a, b in zip(edges, edges[1:])]
print("rate over each fifth of the run (msg/s; flat when nothing backs up):")
for name, label in legs:
    r = fifths(name, run(name)["t0"])
    print(f"  {label}: " + (" ".join(f"{x:.0f}" for x in r) if r else "n/a"))
tick = os.sysconf("SC_CLK_TCK")
for name, label in legs[1:]:
    proc = read(f"{work}/{name}.proc").split()
    if len(proc) == 3:
        rss, wrote, cpu = int(proc[0]), int(proc[1]), int(proc[2])
        print(f"{label}: peak RSS {rss/2**20:.0f} MiB, the process wrote {wrote/n/1024:.1f} KiB per message "
              f"(/proc/PID/io write_bytes), CPU {cpu/tick/n*1000:.2f} ms per message (user + system)")
sealgate_legs = [("sealgate-dlp", "DLP on"), ("sealgate-nodlp", "DLP off")]
if base: sealgate_legs.append(("baseline-dlp", "baseline, DLP on"))
for name, label in sealgate_legs:
    b, c, s, text = hist(name, "sealgate_delivery_completed_seconds")
    if c == 0:
        print(f"sealgate accept->delivered p50/p99 ({label}): no samples"); ok = False; continue
    print(f"sealgate accept->delivered p50/p99 ({label}): {ms(b, quantile(b, c, 0.5))} / "
          f"{ms(b, quantile(b, c, 0.99))}  (mean {s/c*1000:.1f} ms, {c} samples)")
    lat = log_latencies(name)
    if lat:
        print(f"  {label}, exact from Sealgate's log (accepted -> finished lines): p50 {rank(lat, 0.5)*1000:.1f} ms / "
              f"p99 {rank(lat, 0.99)*1000:.1f} ms, max {lat[-1]*1000:.1f} ms ({len(lat)} messages)")
    delivered = counter(text, "sealgate_deliveries_total", result="delivered")
    other = counter(text, "sealgate_deliveries_total") - delivered
    spool = gauge(text, "sealgate_spool_messages")
    print(f"  {label}: deliveries delivered={delivered} other={other}, spool left={spool}")
    head, indexed = gauge(text, "sealgate_archive_head_sequence"), gauge(text, "sealgate_archive_indexed_sequence")
    print(f"  {label}: archive search index at the end of the load: {indexed} of {head} journaled (the rest follows)")
    if delivered != n or other or spool != 0: ok = False
if light_n:
    lat = log_latencies("sealgate-light")
    paced = read(f"{work}/light.paced").strip()
    got = read(f"{work}/sealgate-light.count", "0 0").split()[0]
    if lat:
        print(f"sealgate at a light load ({light_rate} msg/s, DLP on), accepted -> finished: p50 {rank(lat, 0.5)*1000:.1f} ms / "
              f"p99 {rank(lat, 0.99)*1000:.1f} ms, max {lat[-1]*1000:.1f} ms ({len(lat)} messages; sink received {got})")
    else:
        print("sealgate at a light load: no samples"); ok = False
    print(f"  {paced or 'paced source printed nothing'}")
    if int(got) != light_n: ok = False
print()
queue = read(f"{work}/postfix.queue").strip()
print(f"sink received: postfix {pf['count']}, sealgate (DLP on) {on['count']}, sealgate (DLP off) {off['count']}"
      + (f", baseline {base['count']}" if base else "") + f"  (expected {n} each)")
print(f"postfix queue after the run: {queue or 'unknown'}")
for r in (pf, on, off) + ((base,) if base else ()):
    if r["count"] != n or not r["done"]: ok = False
if "Mail queue is empty" not in queue: ok = False
print("check: " + ("OK, every sink received exactly N" if ok else "FAILED, see the counts above"))
sys.exit(0 if ok else 1)
PY
