//! Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP): HMAC-SHA1,
//! six digits, 30-second steps, as every authenticator app reads them from
//! an `otpauth://` URI. Built on ring's HMAC (already in the build) rather
//! than a crate of its own: the algorithm is a dozen lines and its test
//! vectors are below.

use chrono::{DateTime, Utc};

/// Seconds per step.
const STEP: i64 = 30;
/// Digits per code.
const DIGITS: u32 = 6;
/// Steps either side of now that still count (clock drift, typing time).
const SKEW: i64 = 1;

/// A new random secret (160 bits, RFC 4226's recommended length).
pub fn new_secret() -> [u8; 20] {
    rand::random()
}

/// The secret as authenticator apps take it typed in: base32, no padding.
pub fn secret_base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The `otpauth://` URI an authenticator app enrols from (as a QR code or pasted).
pub fn otpauth_uri(issuer: &str, user: &str, secret: &[u8]) -> String {
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP}",
        enc(issuer),
        enc(user),
        secret_base32(secret),
        enc(issuer)
    )
}

/// HOTP (RFC 4226) of `secret` at `counter`, with `digits` digits.
fn hotp(secret: &[u8], counter: u64, digits: u32) -> u32 {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let mac = ring::hmac::sign(&key, &counter.to_be_bytes());
    let h = mac.as_ref();
    let at = usize::from(h[h.len() - 1] & 0x0f);
    let bin = u32::from_be_bytes([h[at] & 0x7f, h[at + 1], h[at + 2], h[at + 3]]);
    bin % 10u32.pow(digits)
}

/// The time step `t` falls in.
pub fn step_at(t: DateTime<Utc>) -> u64 {
    (t.timestamp().max(0) / STEP) as u64
}

/// The code for `secret` at step `step`, as the app shows it.
pub fn code_at(secret: &[u8], step: u64) -> String {
    format!("{:06}", hotp(secret, step, DIGITS))
}

/// The step whose code `given` is, within [`SKEW`] steps of `now` and after
/// `last` (a code once used is refused: replay), or `None`.
pub fn check(secret: &[u8], given: &str, now: DateTime<Utc>, last: Option<u64>) -> Option<u64> {
    let given: String = given.chars().filter(|c| !c.is_whitespace()).collect();
    if given.len() != DIGITS as usize || !given.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = step_at(now) as i64;
    (now - SKEW..=now + SKEW)
        .filter(|s| *s >= 0)
        .map(|s| s as u64)
        .filter(|s| last.is_none_or(|l| *s > l))
        .find(|s| {
            let want = code_at(secret, *s);
            bool::from(subtle::ConstantTimeEq::ct_eq(
                want.as_bytes(),
                given.as_bytes(),
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"12345678901234567890";

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    #[test]
    fn rfc6238_sha1_vectors() {
        for (t, want) in [
            (59, 94287082),
            (1111111109, 7081804),
            (1111111111, 14050471),
            (1234567890, 89005924),
            (2000000000, 69279037),
            (20000000000, 65353130),
        ] {
            assert_eq!(hotp(SECRET, step_at(at(t)), 8), want, "t = {t}");
        }
        assert_eq!(code_at(SECRET, step_at(at(59))), "287082");
    }

    #[test]
    fn codes_hold_one_step_either_side_and_only_once() {
        let now = at(1111111111);
        let step = step_at(now);
        let code = code_at(SECRET, step);
        assert_eq!(check(SECRET, &code, now, None), Some(step));
        assert_eq!(check(SECRET, &code, at(1111111111 + 30), None), Some(step));
        assert_eq!(
            check(SECRET, &code, at(1111111111 + 90), None),
            None,
            "too late"
        );
        assert_eq!(check(SECRET, &code, now, Some(step)), None, "replayed");
        assert_eq!(check(SECRET, "12345", now, None), None);
        assert_eq!(check(SECRET, "abcdef", now, None), None);
        let other = if code == "000000" { "000001" } else { "000000" };
        assert_eq!(check(SECRET, other, now, Some(0)), None);
    }

    #[test]
    fn the_uri_names_issuer_user_and_secret() {
        let uri = otpauth_uri("Sealgate", "ann admin", SECRET);
        assert_eq!(
            uri,
            "otpauth://totp/Sealgate:ann%20admin?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Sealgate&algorithm=SHA1&digits=6&period=30"
        );
    }
}
