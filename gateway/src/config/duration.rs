//! Human durations in the config file: `"30s"`, `"5m"`, `"2h"`, `"5d"`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A duration written as a number and a unit (`s`, `m`, `h`, `d`; `ms` too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span(pub Duration);

impl Span {
    /// Seconds.
    pub const fn secs(s: u64) -> Self {
        Span(Duration::from_secs(s))
    }

    /// Parses `"90s"`, `"5m"` etc.
    pub fn parse(s: &str) -> Result<Self, SpanError> {
        let s = s.trim();
        let split = s
            .find(|c: char| !c.is_ascii_digit())
            .ok_or_else(|| SpanError::NoUnit(s.to_string()))?;
        let (num, unit) = s.split_at(split);
        let n: u64 = num
            .parse()
            .map_err(|_| SpanError::NoNumber(s.to_string()))?;
        let mult = match unit {
            "ms" => return Ok(Span(Duration::from_millis(n))),
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86400,
            _ => return Err(SpanError::Unit(unit.to_string())),
        };
        n.checked_mul(mult)
            .map(|s| Span(Duration::from_secs(s)))
            .ok_or_else(|| SpanError::TooLong(s.to_string()))
    }
}

/// Why a duration does not parse; the text says how to write one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpanError {
    /// Digits only.
    #[error("`{0}` has no unit; write e.g. \"30s\", \"5m\", \"2h\" or \"5d\"")]
    NoUnit(String),
    /// No leading number.
    #[error("`{0}` does not start with a whole number")]
    NoNumber(String),
    /// A unit other than ms, s, m, h, d.
    #[error("`{0}` is not a unit; use ms, s, m, h or d")]
    Unit(String),
    /// More seconds than fit in 64 bits.
    #[error("`{0}` is too long")]
    TooLong(String),
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        let s = self.0.as_secs();
        if !ms.is_multiple_of(1000) {
            write!(f, "{ms}ms")
        } else if s.is_multiple_of(86400) && s > 0 {
            write!(f, "{}d", s / 86400)
        } else if s.is_multiple_of(3600) && s > 0 {
            write!(f, "{}h", s / 3600)
        } else if s.is_multiple_of(60) && s > 0 {
            write!(f, "{}m", s / 60)
        } else {
            write!(f, "{s}s")
        }
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Span::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        assert_eq!(Span::parse("5m").unwrap(), Span::secs(300));
        assert_eq!(Span::parse("250ms").unwrap().0, Duration::from_millis(250));
        assert_eq!(Span::secs(86400 * 5).to_string(), "5d");
        assert!(Span::parse("5").is_err());
        assert!(Span::parse("5y").is_err());
        assert!(Span::parse("m").is_err());
    }
}
