#!/usr/bin/env bash
# Sealing benchmark: Sealgate's in-process PGP/MIME and S/MIME sealing
# (gateway/examples/seal_bench.rs, release build) against gpg and openssl
# sealing the same messages for the same recipient, in the same run, on the
# same machine. Two RFC 5322 messages (CRLF): ~1 MB and ~10 MB, each a
# multipart/mixed with a short text part and a base64 attachment of random
# bytes (76-character lines). One recipient: bench@example.test.
#
# Both sides do the same work:
#   PGP:    one RSA-3072 encryption subkey (gpg-made key, read by Sealgate
#           with sequoia), AES-256 (SEIPD v1 with MDC on both sides), binary
#           literal data, ASCII armour, no compression: Sealgate never
#           compresses, so gpg runs with -z 0.
#   S/MIME: one self-signed RSA-2048 certificate, RSA PKCS#1 v1.5 key
#           transport, AES-256-CBC, CMS enveloped-data as base64 MIME
#           (openssl cms -encrypt -aes256 -outform SMIME).
# openssl runs in its default text mode, which rewrites line endings to
# CRLF as it reads; Sealgate's seal does the same normalisation (the
# benchmark messages are CRLF already, so neither changes a byte).
# Sealgate's figure is the median time of the seal call in-process (key and
# certificate parsed once, message already in memory, as in the gateway).
# gpg's and openssl's are the median wall time of a whole process run:
# start-up, reading key and message, writing the output file. Their
# start-up floor (sealing a ~200-byte message) is printed for reference.
# Every method seals each message once as a warm-up before the timed runs.
#
# Before the table the script checks that the outputs are real: Sealgate's
# PGP output (armour taken out of its multipart/encrypted) is decrypted with
# gpg and its S/MIME output with openssl cms -decrypt, for both sizes, and
# the result compared byte for byte with the message's MIME entity; gpg's
# and openssl's outputs are decrypted too, and every PGP output must say
# AES-256 and every S/MIME output aes-256-cbc.
#
# Usage: bench/seal.sh [RUNS_1MB [RUNS_10MB]]   (defaults 5 and 3)
# Environment: SEAL_KEEP=1 (keep the work directory: keys, messages,
# outputs, logs), CARGO_TARGET_DIR (honoured; default as scripts/run and
# scripts/test: ~/.cache/sealgate/target).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS1=${1:-5}
RUNS10=${2:-3}
FLOOR_RUNS=5
ADDR=bench@example.test
for n in "$RUNS1" "$RUNS10"; do
  case "$n" in '' | *[!0-9]* | 0) echo "usage: $0 [RUNS_1MB [RUNS_10MB]]" >&2; exit 2 ;; esac
done

scripts/install-deps test
# Release build output is shared with scripts/run and scripts/test, outside
# the checkout, so RocksDB is not compiled again.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sealgate/target}"
cargo build --release -p sealgate --example seal_bench

WORK=$(mktemp -d "${TMPDIR:-/tmp}/sealgate-bench-seal.XXXXXX")
export GNUPGHOME="$WORK/gnupg"
mkdir -m 700 "$GNUPGHOME"
cleanup() {
  gpgconf --kill gpg-agent >/dev/null 2>&1 || true
  if [ -n "${SEAL_KEEP:-}" ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
fail() { echo "seal.sh: $*" >&2; exit 1; }

# --- keys -----------------------------------------------------------------
# RSA-3072 primary (certify, sign) and RSA-3072 encryption subkey: gpg's own
# default layout, spelled out so another gpg version makes the same key.
echo "seal benchmark: keys, messages ..." >&2
gpg --batch --passphrase '' --quick-gen-key "$ADDR" rsa3072 cert,sign never 2>"$WORK/gpg-keygen.log" ||
  { cat "$WORK/gpg-keygen.log" >&2; fail "gpg key generation failed"; }
FPR=$(gpg --batch --with-colons --list-keys "$ADDR" 2>>"$WORK/gpg-keygen.log" | awk -F: '$1 == "fpr" { print $10; exit }')
gpg --batch --passphrase '' --quick-add-key "$FPR" rsa3072 encr never 2>>"$WORK/gpg-keygen.log" ||
  { cat "$WORK/gpg-keygen.log" >&2; fail "gpg subkey generation failed"; }
gpg --batch --armor --export "$ADDR" > "$WORK/pubkey.asc" 2>>"$WORK/gpg-keygen.log"
[ -s "$WORK/pubkey.asc" ] || fail "gpg exported no public key"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$WORK/key.pem" -out "$WORK/cert.pem" -days 30 \
  -subj "/CN=Seal Bench" \
  -addext keyUsage=keyEncipherment,digitalSignature \
  -addext extendedKeyUsage=emailProtection \
  -addext subjectAltName=email:$ADDR 2>"$WORK/openssl-req.log" ||
  { cat "$WORK/openssl-req.log" >&2; fail "openssl req failed"; }

# --- messages ---------------------------------------------------------------
# LABEL.eml is the message; LABEL.entity is its MIME entity as sealing must
# encrypt it (the Content-* fields, a blank line, the body), written here
# independently of Sealgate's code to compare decrypted outputs with.
python3 - "$WORK" "$ADDR" <<'PY'
import base64, os, sys
work, addr = sys.argv[1], sys.argv[2]
def message(label, target):
    b = "=_seal-bench-" + os.urandom(8).hex()
    head = (f"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n"
            f"From: Bench Sender <sender@example.test>\r\n"
            f"To: Bench <{addr}>\r\n"
            f"Subject: seal benchmark {label}\r\n"
            f"Message-ID: <seal-bench-{label}@example.test>\r\n"
            f"MIME-Version: 1.0\r\n")
    ctype = f'Content-Type: multipart/mixed;\r\n boundary="{b}"\r\n'
    text = (f"--{b}\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n"
            "Content-Transfer-Encoding: 7bit\r\n\r\n"
            f"The attachment is {label} of random bytes, for the sealing benchmark.\r\n\r\n"
            f"--{b}\r\n"
            "Content-Type: application/octet-stream; name=\"random.bin\"\r\n"
            "Content-Disposition: attachment; filename=\"random.bin\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\n")
    tail = f"--{b}--\r\n"
    # 57 raw bytes make one 76-character line plus CRLF (78 bytes): whole
    # lines up to the target size.
    lines = (target - len(head) - len(ctype) - 2 - len(text) - len(tail)) // 78
    enc = base64.b64encode(os.urandom(lines * 57)).decode()
    att = "".join(enc[i:i + 76] + "\r\n" for i in range(0, len(enc), 76))
    body = text + att + tail
    with open(f"{work}/{label}.eml", "wb") as f:
        f.write((head + ctype + "\r\n" + body).encode())
    with open(f"{work}/{label}.entity", "wb") as f:
        f.write((ctype + "\r\n" + body).encode())
message("1MB", 1_000_000)
message("10MB", 10_000_000)
# The start-up floor: the same shape of message, tiny.
with open(f"{work}/tiny.eml", "wb") as f:
    f.write((f"From: sender@example.test\r\nTo: {addr}\r\nSubject: tiny\r\n"
             "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n"
             "A short message for the process start-up floor.\r\n").encode())
PY

# --- timing ------------------------------------------------------------------
ms_since() { # START (an $EPOCHREALTIME value): milliseconds since then
  local now=$EPOCHREALTIME
  awk -v a="$1" -v b="$now" 'BEGIN { printf "%.3f\n", (b - a) * 1000 }'
}
gpg_seal() { # IN OUT
  gpg --batch --yes --trust-model always -z 0 --armor --encrypt -r "$ADDR" -o "$2" "$1" 2>>"$WORK/gpg.log"
}
openssl_seal() { # IN OUT
  openssl cms -encrypt -aes256 -in "$1" -out "$2" -outform SMIME "$WORK/cert.pem" 2>>"$WORK/openssl.log"
}
time_peer() { # NAME FUNC LABEL RUNS: one warm-up, then RUNS timed runs, one ms per line
  local name=$1 func=$2 label=$3 runs=$4 i t0 out="$WORK/$3.$1.out"
  "$func" "$WORK/$label.eml" "$out" || fail "$name failed on $label, see $WORK/$name.log"
  : > "$WORK/$label.$name.ms"
  for i in $(seq "$runs"); do
    t0=$EPOCHREALTIME
    "$func" "$WORK/$label.eml" "$out" || fail "$name failed on $label, see $WORK/$name.log"
    ms_since "$t0" >> "$WORK/$label.$name.ms"
  done
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "seal benchmark: sealgate (seal_bench) ..." >&2
cargo run -q --release -p sealgate --example seal_bench -- \
  --runs "$RUNS1,$RUNS10" --out "$WORK/sealgate" \
  "$WORK/pubkey.asc" "$WORK/cert.pem" "$WORK/1MB.eml" "$WORK/10MB.eml" > "$WORK/sealgate.txt"
echo "seal benchmark: gpg, openssl ..." >&2
time_peer gpg gpg_seal tiny "$FLOOR_RUNS"
time_peer openssl openssl_seal tiny "$FLOOR_RUNS"
time_peer gpg gpg_seal 1MB "$RUNS1"
time_peer openssl openssl_seal 1MB "$RUNS1"
time_peer gpg gpg_seal 10MB "$RUNS10"
time_peer openssl openssl_seal 10MB "$RUNS10"
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the outputs are real ----------------------------------------------------
echo "seal benchmark: checking the outputs by decryption ..." >&2
armour() { # SEALED.eml OUT.asc: the armoured OpenPGP message inside a PGP/MIME message
  sed -n '/^-----BEGIN PGP MESSAGE-----\r\{0,1\}$/,/^-----END PGP MESSAGE-----\r\{0,1\}$/p' "$1" > "$2"
  [ -s "$2" ] || fail "no armoured OpenPGP message in $1"
}
gpg_open() { # IN.asc OUT: decrypts, prints the symmetric algorithm number (9: AES-256)
  local status
  status=$(gpg --batch --pinentry-mode loopback --passphrase '' --yes --status-fd 1 \
    -o "$2" --decrypt "$1" 2>>"$WORK/gpg.log") || fail "gpg cannot decrypt $1, see $WORK/gpg.log"
  grep -q '^\[GNUPG:\] DECRYPTION_OKAY' <<<"$status" || fail "gpg: no DECRYPTION_OKAY for $1"
  awk '$2 == "DECRYPTION_INFO" { print $4 }' <<<"$status"
}
cms_open() { # IN OUT
  openssl cms -decrypt -in "$1" -recip "$WORK/cert.pem" -inkey "$WORK/key.pem" -out "$2" 2>>"$WORK/openssl.log" ||
    fail "openssl cannot decrypt $1, see $WORK/openssl.log"
}
cms_cipher() { # IN: the content-encryption algorithm of an S/MIME message, as openssl names it
  openssl cms -cmsout -print -in "$1" 2>>"$WORK/openssl.log" |
    awk '/contentEncryptionAlgorithm:/ && !done { getline; sub(/^ *algorithm: */, ""); print $1; done = 1 }'
}
same() { # A B WHAT
  cmp -s "$1" "$2" || fail "$3: decrypted output differs from the original ($(wc -c <"$1") vs $(wc -c <"$2") bytes)"
}
CHECKS=()
for label in 1MB 10MB; do
  armour "$WORK/sealgate/$label.pgp.eml" "$WORK/$label.sg.asc"
  algo=$(gpg_open "$WORK/$label.sg.asc" "$WORK/$label.sg.pgp.dec")
  same "$WORK/$label.sg.pgp.dec" "$WORK/$label.entity" "sealgate PGP $label"
  [ "$algo" = 9 ] || fail "sealgate PGP $label: symmetric algorithm $algo, not 9 (AES-256)"
  algo=$(gpg_open "$WORK/$label.gpg.out" "$WORK/$label.gpg.dec")
  same "$WORK/$label.gpg.dec" "$WORK/$label.eml" "gpg $label"
  [ "$algo" = 9 ] || fail "gpg $label: symmetric algorithm $algo, not 9 (AES-256)"
  cms_open "$WORK/sealgate/$label.smime.eml" "$WORK/$label.sg.smime.dec"
  same "$WORK/$label.sg.smime.dec" "$WORK/$label.entity" "sealgate S/MIME $label"
  cms_open "$WORK/$label.openssl.out" "$WORK/$label.openssl.dec"
  same "$WORK/$label.openssl.dec" "$WORK/$label.eml" "openssl $label"
  for f in "$WORK/sealgate/$label.smime.eml" "$WORK/$label.openssl.out"; do
    c=$(cms_cipher "$f")
    [ "$c" = aes-256-cbc ] || fail "$f: content encryption ${c:-unknown}, not aes-256-cbc"
  done
  CHECKS+=("$label")
done

python3 - "$WORK" "$RUNS1" "$RUNS10" "$FLOOR_RUNS" "$LOAD_BEFORE" "$LOAD_AFTER" \
  "$(gpg --version | head -1) / $(gpg --version | sed -n 's/^libgcrypt /libgcrypt /p')" \
  "$(openssl version)" "$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')" <<'PY'
import os, statistics, sys
work, runs1, runs10, floor_runs, load0, load1, gpgver, sslver, cpu = sys.argv[1:10]
def times(label, name):
    with open(f"{work}/{label}.{name}.ms") as f:
        return sorted(float(x) for x in f.read().split())
def peer(label, name):
    return statistics.median(times(label, name))
sg = {}
with open(f"{work}/sealgate.txt") as f:
    for line in f:
        kind, label, med, lo, hi, runs, inb, outb = line.split()
        sg[kind, label] = (float(med), int(runs), int(inb), int(outb), float(lo), float(hi))
size = lambda p: os.path.getsize(p)
print("seal benchmark: Sealgate in-process sealing vs gpg and openssl, one recipient, same run, same machine")
print(f"  CPU: {cpu}, {os.cpu_count()} CPUs; load average before / after: {load0} / {load1}")
print(f"  peers: {gpgver}; {sslver}")
print("  same work on both sides:")
print("    PGP:    RSA-3072 encryption subkey, AES-256 (SEIPD v1 + MDC), ASCII-armoured output; no compression:")
print("            Sealgate does not compress, so gpg runs with -z 0 (gpg --trust-model always -z 0 --armor --encrypt)")
print("    S/MIME: RSA-2048 certificate, PKCS#1 v1.5 key transport, AES-256-CBC, base64 MIME output")
print("            (openssl cms -encrypt -aes256 -outform SMIME)")
print("  Sealgate: median of the seal call in-process (key/cert parsed once, message in memory), release build;")
print("  gpg/openssl: median wall time of the whole process (start-up, reading key and message, writing the output).")
print(f"  runs: {runs1} for 1MB, {runs10} for 10MB, after one warm-up each; ratio = Sealgate ms / peer ms (< 1: Sealgate faster)")
print()
print(f"{'message':<20} {'Sealgate PGP':>12} {'gpg':>9} {'ratio':>5}   {'Sealgate S/MIME':>15} {'openssl':>9} {'ratio':>5}")
for label in ("1MB", "10MB"):
    p, s, inb = sg["pgp", label][0], sg["smime", label][0], sg["pgp", label][2]
    g, o = peer(label, "gpg"), peer(label, "openssl")
    name = f"{label} ({inb:,} B)"
    print(f"{name:<20} {p:>9.1f} ms {g:>6.1f} ms {p/g:>5.2f}   {s:>12.1f} ms {o:>6.1f} ms {s/o:>5.2f}")
print()
print("spread, min-max ms (other load on the machine shows here first):")
for label in ("1MB", "10MB"):
    g, o = times(label, "gpg"), times(label, "openssl")
    print(f"  {label}: Sealgate PGP {sg['pgp', label][4]:.1f}-{sg['pgp', label][5]:.1f}, gpg {g[0]:.1f}-{g[-1]:.1f}; "
          f"Sealgate S/MIME {sg['smime', label][4]:.1f}-{sg['smime', label][5]:.1f}, openssl {o[0]:.1f}-{o[-1]:.1f}")
print(f"peer start-up floor (sealing a {size(work + '/tiny.eml')}-byte message, median of {floor_runs}): "
      f"gpg {peer('tiny', 'gpg'):.1f} ms, openssl {peer('tiny', 'openssl'):.1f} ms")
print("output sizes (bytes):")
for label in ("1MB", "10MB"):
    print(f"  {label}: Sealgate PGP/MIME {sg['pgp', label][3]:,}, gpg armour {size(f'{work}/{label}.gpg.out'):,}; "
          f"Sealgate S/MIME {sg['smime', label][3]:,}, openssl {size(f'{work}/{label}.openssl.out'):,}")
PY
echo "check: OK, decrypted with gpg and openssl cms, byte for byte: Sealgate PGP and S/MIME (${CHECKS[*]}) = MIME entity; gpg and openssl (${CHECKS[*]}) = message; all AES-256"
