//! What the benchmarks' generated corpora share: the vocabulary and a
//! deterministic generator, so every run measures the same mail.

/// Words of the generated mail.
pub const WORDS: &[&str] = &[
    "patient",
    "results",
    "potassium",
    "sodium",
    "invoice",
    "meeting",
    "schedule",
    "report",
    "quarterly",
    "review",
    "insulin",
    "referral",
    "appointment",
    "billing",
    "claim",
    "policy",
    "renewal",
    "contract",
    "draft",
    "budget",
    "cardiology",
    "radiology",
    "discharge",
    "summary",
];

/// A deterministic pseudo-random generator (xorshift).
pub struct Rng(pub u64);
impl Rng {
    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    /// One of `v`.
    pub fn pick<'a>(&mut self, v: &[&'a str]) -> &'a str {
        v[(self.next() % v.len() as u64) as usize]
    }
}
