//! Times Sealgate's in-process sealing: PGP/MIME (`seal::pgp::seal`) and
//! S/MIME enveloped-data (`seal::smime::seal`) of whole messages, one
//! recipient, default options (no signer, no protected headers, RSA
//! PKCS#1 v1.5 key transport). `bench/seal.sh` runs it next to gpg and
//! openssl and prints the comparison.
//!
//! Usage:
//!   seal_bench [--runs N[,N...]] [--out DIR] PUBKEY.asc CERT.pem MSG...
//!
//! `--runs`: timed seals per message and method, one count per message in
//! order (the last count repeats; default 5). Each message is sealed once
//! more before the timed runs, as a warm-up.
//! `--out DIR`: write the last sealed output of each kind to
//! `DIR/LABEL.pgp.eml` and `DIR/LABEL.smime.eml`, for checking by decryption.
//!
//! Only the `seal` call is timed: the key and certificate are parsed once
//! and the message is in memory, as in the gateway. One line per message
//! and method on stdout, fields separated by single spaces:
//!
//!   pgp LABEL MEDIAN_MS MIN_MS MAX_MS RUNS INPUT_BYTES OUTPUT_BYTES
//!   smime LABEL MEDIAN_MS MIN_MS MAX_MS RUNS INPUT_BYTES OUTPUT_BYTES
//!
//! LABEL is the message file's name without its extension. Progress goes to stderr.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use sealgate::seal::pgp::{self, PgpOptions, RecipientKey};
use sealgate::seal::smime::{self, RecipientCert, SmimeOptions};

const USAGE: &str = "usage: seal_bench [--runs N[,N...]] [--out DIR] PUBKEY.asc CERT.pem MSG...";

struct Args {
    runs: Vec<usize>,
    out: Option<PathBuf>,
    key: PathBuf,
    cert: PathBuf,
    messages: Vec<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut runs = vec![5];
    let mut out = None;
    let mut positional = Vec::new();
    let mut it = std::env::args_os().skip(1);
    while let Some(arg) = it.next() {
        match arg.to_str() {
            Some("--runs") => {
                let v = it.next().ok_or("--runs needs a value")?;
                let v = v.to_str().ok_or("--runs: not UTF-8")?;
                runs = v
                    .split(',')
                    .map(|n| match n.trim().parse::<usize>() {
                        Ok(n) if n > 0 => Ok(n),
                        _ => Err(format!("--runs: {n:?} is not a positive count")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            Some("--out") => out = Some(PathBuf::from(it.next().ok_or("--out needs a value")?)),
            Some("-h" | "--help") => return Err(USAGE.to_string()),
            Some(s) if s.starts_with("--") => return Err(format!("unknown option {s}\n{USAGE}")),
            _ => positional.push(PathBuf::from(arg)),
        }
    }
    if positional.len() < 3 {
        return Err(USAGE.to_string());
    }
    let messages = positional.split_off(2);
    let cert = positional.pop().ok_or(USAGE)?;
    let key = positional.pop().ok_or(USAGE)?;
    Ok(Args {
        runs,
        out,
        key,
        cert,
        messages,
    })
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Times `runs` calls of `f` after one warm-up call; returns the sorted
/// durations and the output of the last call.
fn time<E: std::fmt::Display>(
    runs: usize,
    mut f: impl FnMut() -> Result<Vec<u8>, E>,
) -> Result<(Vec<Duration>, Vec<u8>), String> {
    let mut last = f().map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        let out = f().map_err(|e| e.to_string())?;
        times.push(start.elapsed());
        // The previous output is freed here, outside the timed span.
        last = out;
    }
    times.sort();
    Ok((times, last))
}

/// The median of sorted durations (mean of the middle two for an even count).
fn median(sorted: &[Duration]) -> Duration {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    let key = RecipientKey::parse(&read(&args.key)?)
        .map_err(|e| format!("{}: {e}", args.key.display()))?;
    let cert = RecipientCert::parse(&read(&args.cert)?)
        .map_err(|e| format!("{}: {e}", args.cert.display()))?;
    eprintln!(
        "seal_bench: OpenPGP key {} ({}), S/MIME certificate {}",
        key.fingerprint(),
        key.user_ids().join(", "),
        cert.subject()
    );
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let pgp_opts = PgpOptions::default();
    let smime_opts = SmimeOptions::default();

    for (i, path) in args.messages.iter().enumerate() {
        let message = read(path)?;
        let runs = *args.runs.get(i).or(args.runs.last()).unwrap_or(&5);
        let label = path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
            .ok_or_else(|| format!("{}: need a file name without spaces", path.display()))?;
        eprintln!(
            "seal_bench: {label}: {} bytes, 1 warm-up + {runs} timed seals per method",
            message.len()
        );

        let pgp = time(runs, || pgp::seal(&message, &[&key], &pgp_opts))
            .map_err(|e| format!("{label}: PGP: {e}"))?;
        let smime = time(runs, || smime::seal(&message, &[&cert], &smime_opts))
            .map_err(|e| format!("{label}: S/MIME: {e}"))?;

        for (kind, (times, sealed)) in [("pgp", &pgp), ("smime", &smime)] {
            println!(
                "{kind} {label} {:.3} {:.3} {:.3} {} {} {}",
                ms(median(times)),
                ms(times[0]),
                ms(times[times.len() - 1]),
                times.len(),
                message.len(),
                sealed.len()
            );
            if let Some(dir) = &args.out {
                let file = dir.join(format!("{label}.{kind}.eml"));
                std::fs::write(&file, sealed).map_err(|e| format!("{}: {e}", file.display()))?;
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seal_bench: {e}");
            ExitCode::FAILURE
        }
    }
}
