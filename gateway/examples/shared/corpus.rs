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

/// The commonest English words, most frequent first: most of any mail's words.
const COMMON: &str = "\
    the to and of a in for is on that you this i with it be we are as have at will your \
    from or not by can if our please all an me would was so but they do us has any there \
    been let know thanks also more one about should which need when what their could \
    just up out time new get may now some here see them other these than into only over \
    after then before well make sure still each next week today tomorrow morning \
    afternoon back send sent call email note attached below above regarding following \
    update question questions information help work team day days first last two three \
    like look forward hear hope good great thank best regards kind dear hi hello again \
    soon possible think review confirm change changes request issue meeting schedule \
    date list form copy file page number office";

/// Words of a hospital's and a finance office's mail: about one word in seven.
const DOMAIN: &str = "\
    patient results potassium sodium invoice quarterly insulin referral appointment \
    billing claim policy renewal contract draft budget cardiology radiology discharge \
    summary clinic nurse physician pharmacy prescription dose follow-up visit admission \
    ward unit shift staff payment account balance statement approval vendor purchase \
    order audit compliance training department insurance coverage authorization \
    procedure surgery imaging scan lab specimen consult chart record records portal \
    password reset printer laptop badge parking holiday payroll timesheet project \
    deadline agenda minutes slides spreadsheet report analysis forecast revenue expenses";

/// One word of mail prose: common words skewed to the most frequent (the product
/// of two uniforms falls off roughly like Zipf's law), domain words one in seven.
pub fn word(rng: &mut Rng) -> &'static str {
    static LISTS: std::sync::OnceLock<(Vec<&str>, Vec<&str>)> = std::sync::OnceLock::new();
    let (common, domain) = LISTS.get_or_init(|| {
        (
            COMMON.split_whitespace().collect(),
            DOMAIN.split_whitespace().collect(),
        )
    });
    if rng.below(7) == 0 {
        return rng.pick(domain);
    }
    let n = common.len() as u64;
    common[(rng.below(n) * rng.below(n) / n) as usize]
}

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
