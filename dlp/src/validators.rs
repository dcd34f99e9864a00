//! The closed registry of validators and normalisations that rule files may name.
//!
//! Rule authors pick validators by name; the code lives here so that every check is
//! unit-tested and no rule file can inject logic. Validators take the *normalised*
//! candidate (see [`Normalize`]) and answer yes or no; they never see context.

use serde::Deserialize;

/// How a raw match is turned into the value that validators check and that unique
/// counting compares (so `536-90-4399` and `536904399` count once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Normalize {
    /// Keep ASCII digits only.
    #[default]
    Digits,
    /// Keep ASCII letters and digits, uppercased.
    AlnumUpper,
    /// Like `alnum_upper`, then cut to the IBAN length of the country code.
    Iban,
    /// Digits, without a leading NANP `1` country code (so +1 415… and 415… count once).
    Nanp,
    /// Lowercase, keep everything (emails).
    Lower,
    /// Trim whitespace only (dates, dictionary terms).
    Trim,
}

impl Normalize {
    /// Applies the normalisation; `Iban` also cuts to the country's length.
    pub fn apply(self, raw: &str) -> String {
        match self {
            Normalize::Digits => raw.chars().filter(|c| c.is_ascii_digit()).collect(),
            Normalize::AlnumUpper => raw
                .chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .map(|c| c.to_ascii_uppercase())
                .collect(),
            Normalize::Iban => {
                let mut v = Normalize::AlnumUpper.apply(raw);
                if let Some(len) = v.get(..2).and_then(iban_country_length) {
                    v.truncate(len.min(v.len()));
                }
                v
            }
            Normalize::Nanp => {
                let d = Normalize::Digits.apply(raw);
                match d.strip_prefix('1') {
                    Some(rest) if d.len() == 11 => rest.to_string(),
                    _ => d,
                }
            }
            Normalize::Lower => raw.trim().to_ascii_lowercase(),
            Normalize::Trim => raw.trim().to_string(),
        }
    }
}

/// A named validator from the fixed registry; unknown names fail at load time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Validator {
    /// Luhn mod-10 over the digits (payment cards).
    Luhn,
    /// Issuer prefix (IIN) and length table for payment cards.
    CardBrand,
    /// ABA routing 3-7-1 weighted checksum (checksum only).
    AbaChecksum,
    /// ABA routing prefix ranges 00–12, 21–32, 61–72, 80.
    AbaPrefix,
    /// DEA registration check digit (two letters, seven digits).
    DeaChecksum,
    /// NPI: Luhn over `80840` + the ten digits (checksum only).
    NpiLuhn,
    /// IBAN: per-country length and ISO 7064 MOD 97-10.
    IbanMod97,
    /// IBAN: per-country BBAN structure (digits / letters / alphanumerics by position).
    IbanStructure,
    /// SSN: area, group and serial rules, and known advertising / test numbers.
    SsnStructure,
    /// ITIN: leading 9 and the IRS group ranges.
    ItinStructure,
    /// Medicare Beneficiary Identifier position classes.
    MbiStructure,
    /// A real calendar date between 1900 and the current year.
    DateReal,
    /// North American Numbering Plan structure (NPA and NXX rules).
    NanpPhone,
    /// Email syntax and a plausible top-level domain.
    EmailDomain,
    /// International (E.164) number length: 8 to 15 digits including the country code.
    E164Length,
}

impl Validator {
    /// Runs the validator on a normalised value; `max_year` bounds `date_real`.
    pub fn check(self, value: &str, max_year: i32) -> bool {
        match self {
            Validator::Luhn => luhn(value),
            Validator::CardBrand => card_brand(value).is_some(),
            Validator::AbaChecksum => aba_checksum(value),
            Validator::AbaPrefix => aba_prefix(value),
            Validator::DeaChecksum => dea_checksum(value),
            Validator::NpiLuhn => npi_luhn(value),
            Validator::IbanMod97 => iban_mod97(value),
            Validator::IbanStructure => iban_structure(value),
            Validator::SsnStructure => ssn_structure(value),
            Validator::ItinStructure => itin_structure(value),
            Validator::MbiStructure => mbi_structure(value),
            Validator::DateReal => date_real(value, max_year),
            Validator::NanpPhone => nanp_phone(value),
            Validator::EmailDomain => email_domain(value),
            Validator::E164Length => all_digits(value) && (8..=15).contains(&value.len()),
        }
    }
}

fn all_digits(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())
}

fn digit(b: u8) -> u32 {
    u32::from(b - b'0')
}

/// Luhn mod-10 over an all-digit string of at least two digits.
pub fn luhn(v: &str) -> bool {
    if v.len() < 2 || !all_digits(v) {
        return false;
    }
    let sum: u32 = v
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = digit(b);
            if i % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 {
                    d2 - 9
                } else {
                    d2
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Card lengths `lo..=hi` as a bit set (bit n = n digits), for [`CARD_IINS`].
const fn lens(lo: u32, hi: u32) -> u32 {
    (1 << (hi + 1)) - (1 << lo)
}

/// Issuer prefixes (ISO/IEC 7812 IINs) and lengths: (brand, prefix digits, low, high,
/// lengths). Where two rows' prefixes overlap, the longer prefix comes first and the
/// shorter one allows no length the longer does not, so the most specific IIN decides
/// a number's lengths whatever the row order (`card_iin_rows_nest` checks this).
const CARD_IINS: &[(&str, usize, u32, u32, u32)] = &[
    ("amex", 2, 34, 34, lens(15, 15)),
    ("amex", 2, 37, 37, lens(15, 15)),
    ("visa", 1, 4, 4, lens(13, 13) | lens(16, 16) | lens(19, 19)),
    ("mastercard", 2, 51, 55, lens(16, 16)),
    ("mastercard", 4, 2221, 2720, lens(16, 16)),
    ("mir", 4, 2200, 2204, lens(16, 19)),
    // JCB's legacy 15-digit IINs; 1800 sits inside UATP's 1, also 15 digits.
    ("jcb", 4, 2131, 2131, lens(15, 15)),
    ("jcb", 4, 1800, 1800, lens(15, 15)),
    ("jcb", 4, 3528, 3589, lens(16, 19)),
    ("discover", 4, 6011, 6011, lens(16, 19)),
    ("discover", 3, 644, 649, lens(16, 19)),
    ("discover", 2, 65, 65, lens(16, 19)),
    ("unionpay", 2, 62, 62, lens(16, 19)),
    ("diners", 3, 300, 305, lens(14, 19)),
    ("diners", 4, 3095, 3095, lens(14, 19)),
    ("diners", 2, 36, 36, lens(14, 19)),
    ("diners", 2, 38, 39, lens(14, 19)),
    // Maestro's published IINs, the only prefixes taken at 12 digits: 12-digit runs are
    // common (order and phone numbers) and Luhn alone passes one in ten of them.
    ("maestro", 4, 5018, 5018, lens(12, 19)),
    ("maestro", 4, 5020, 5020, lens(12, 19)),
    ("maestro", 4, 5038, 5038, lens(12, 19)),
    ("maestro", 4, 5893, 5893, lens(12, 19)),
    ("maestro", 4, 6304, 6304, lens(12, 19)),
    ("maestro", 4, 6759, 6759, lens(12, 19)),
    ("maestro", 4, 6761, 6763, lens(12, 19)),
    ("maestro", 4, 604, 604, lens(12, 19)), // 0604
    // The rest of the Maestro block (50, 56–69), less the prefixes RuPay (60), UnionPay
    // (62) and Discover (644–649, 65) hold: else their wrong lengths passed as Maestro.
    ("maestro", 2, 50, 50, lens(13, 19)),
    ("maestro", 2, 56, 59, lens(13, 19)),
    ("maestro", 2, 61, 61, lens(13, 19)),
    ("maestro", 3, 630, 643, lens(13, 19)),
    ("maestro", 2, 66, 69, lens(13, 19)),
    ("rupay", 2, 60, 60, lens(16, 16)),
    ("rupay", 2, 81, 82, lens(16, 16)),
    ("uatp", 1, 1, 1, lens(15, 15)),
];

/// The card brand for a digit string, if its prefix and length fit a known scheme.
pub fn card_brand(v: &str) -> Option<&'static str> {
    if !all_digits(v) || v.len() > 19 {
        return None;
    }
    let len_bit = 1u32 << v.len();
    let p = |n: usize| -> u32 { v.get(..n).and_then(|s| s.parse().ok()).unwrap_or(0) };
    // The first row that fits wins; the table's order makes that the most specific IIN.
    CARD_IINS
        .iter()
        .find(|&&(_, plen, lo, hi, allowed)| (lo..=hi).contains(&p(plen)) && allowed & len_bit != 0)
        .map(|row| row.0)
}

/// ABA routing number 3-7-1 checksum over exactly nine digits.
pub fn aba_checksum(v: &str) -> bool {
    if v.len() != 9 || !all_digits(v) {
        return false;
    }
    let d: Vec<u32> = v.bytes().map(digit).collect();
    let s = 3 * (d[0] + d[3] + d[6]) + 7 * (d[1] + d[4] + d[7]) + (d[2] + d[5] + d[8]);
    s.is_multiple_of(10)
}

/// ABA routing prefix: the Federal Reserve ranges 00–12, 21–32, 61–72 and 80.
pub fn aba_prefix(v: &str) -> bool {
    match v.get(..2).and_then(|s| s.parse::<u32>().ok()) {
        Some(p) => p <= 12 || (21..=32).contains(&p) || (61..=72).contains(&p) || p == 80,
        None => false,
    }
}

/// DEA number: letter, letter or `9`, seven digits; check digit from the first six.
pub fn dea_checksum(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() != 9 || !b[0].is_ascii_alphabetic() {
        return false;
    }
    if !(b[1].is_ascii_alphabetic() || b[1] == b'9') || !b[2..].iter().all(u8::is_ascii_digit) {
        return false;
    }
    let d: Vec<u32> = b[2..].iter().map(|&x| digit(x)).collect();
    let s = d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5]);
    s % 10 == d[6]
}

/// NPI: ten digits whose Luhn over `80840` + NPI holds (checksum only, no prefix rule).
pub fn npi_luhn(v: &str) -> bool {
    v.len() == 10 && all_digits(v) && luhn(&format!("80840{v}"))
}

/// IBAN length for a country code, per the SWIFT IBAN registry.
pub fn iban_country_length(cc: &str) -> Option<usize> {
    iban_format(cc).map(|(len, _)| len)
}

/// (total length, BBAN structure) per country code, any case; structure uses `n` digits,
/// `a` letters, `c` alphanumerics, as in the SWIFT registry (e.g. Albania `8n16c`).
fn iban_format(cc: &str) -> Option<(usize, &'static str)> {
    const T: &[(&str, usize, &str)] = &[
        ("AD", 24, "8n12c"),
        ("AE", 23, "3n16n"),
        ("AL", 28, "8n16c"),
        ("AT", 20, "16n"),
        ("AZ", 28, "4a20c"),
        ("BA", 20, "16n"),
        ("BE", 16, "12n"),
        ("BG", 22, "4a6n8c"),
        ("BH", 22, "4a14c"),
        ("BI", 27, "23n"),
        ("BR", 29, "23n1a1c"),
        ("BY", 28, "4c4n16c"),
        ("CH", 21, "5n12c"),
        ("CR", 22, "18n"),
        ("CY", 28, "8n16c"),
        ("CZ", 24, "20n"),
        ("DE", 22, "18n"),
        ("DJ", 27, "23n"),
        ("DK", 18, "14n"),
        ("DO", 28, "4c20n"),
        ("EE", 20, "16n"),
        ("EG", 29, "25n"),
        ("ES", 24, "20n"),
        ("FI", 18, "14n"),
        ("FK", 18, "2a12n"),
        ("FO", 18, "14n"),
        ("FR", 27, "10n11c2n"),
        ("GB", 22, "4a14n"),
        ("GE", 22, "2a16n"),
        ("GI", 23, "4a15c"),
        ("GL", 18, "14n"),
        ("GR", 27, "7n16c"),
        ("GT", 28, "4c20c"),
        ("HR", 21, "17n"),
        ("HU", 28, "24n"),
        ("IE", 22, "4a14n"),
        ("IL", 23, "19n"),
        ("IQ", 23, "4a15n"),
        ("IS", 26, "22n"),
        ("IT", 27, "1a10n12c"),
        ("JO", 30, "4a22c"),
        ("KW", 30, "4a22c"),
        ("KZ", 20, "3n13c"),
        ("LB", 28, "4n20c"),
        ("LC", 32, "4a24c"),
        ("LI", 21, "5n12c"),
        ("LT", 20, "16n"),
        ("LU", 20, "3n13c"),
        ("LV", 21, "4a13c"),
        ("LY", 25, "21n"),
        ("MC", 27, "10n11c2n"),
        ("MD", 24, "2c18c"),
        ("ME", 22, "18n"),
        ("MK", 19, "3n10c2n"),
        ("MN", 20, "16n"),
        ("MR", 27, "23n"),
        ("MT", 31, "4a5n18c"),
        ("MU", 30, "4a19n3a"),
        ("NI", 28, "4a20n"),
        ("NL", 18, "4a10n"),
        ("NO", 15, "11n"),
        ("OM", 23, "3n16c"),
        ("PK", 24, "4a16c"),
        ("PL", 28, "24n"),
        ("PS", 29, "4a21c"),
        ("PT", 25, "21n"),
        ("QA", 29, "4a21c"),
        ("RO", 24, "4a16c"),
        ("RS", 22, "18n"),
        ("RU", 33, "14n15c"),
        ("SA", 24, "2n18c"),
        ("SC", 31, "4a20n3a"),
        ("SD", 18, "14n"),
        ("SE", 24, "20n"),
        ("SI", 19, "15n"),
        ("SK", 24, "20n"),
        ("SM", 27, "1a10n12c"),
        ("SO", 23, "19n"),
        ("ST", 25, "21n"),
        ("SV", 28, "4a20n"),
        ("TL", 23, "19n"),
        ("TN", 24, "20n"),
        ("TR", 26, "6n16c"),
        ("UA", 29, "6n19c"),
        ("VA", 22, "18n"),
        ("VG", 24, "4a16n"),
        ("XK", 20, "16n"),
        ("YE", 30, "4a4n18c"),
    ];
    T.iter()
        .find(|(c, _, _)| c.eq_ignore_ascii_case(cc))
        .map(|(_, l, s)| (*l, *s))
}

/// IBAN: known country, exact length, numeric check digits, MOD 97-10 remainder 1.
/// Letters count in any case (the check is defined on the upper-cased form).
pub fn iban_mod97(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() < 15 || b.len() > 34 || !b.iter().all(u8::is_ascii_alphanumeric) {
        return false;
    }
    if !b[0].is_ascii_alphabetic()
        || !b[1].is_ascii_alphabetic()
        || !b[2].is_ascii_digit()
        || !b[3].is_ascii_digit()
    {
        return false;
    }
    if iban_country_length(&v[..2]) != Some(b.len()) {
        return false;
    }
    // Rearranged value, letters as two digits; the remainder is carried so no bigint is needed.
    let mut rem: u32 = 0;
    for &c in b[4..].iter().chain(b[..4].iter()) {
        if c.is_ascii_digit() {
            rem = (rem * 10 + digit(c)) % 97;
        } else {
            rem = (rem * 100 + u32::from(c.to_ascii_uppercase() - b'A') + 10) % 97;
        }
    }
    rem == 1
}

/// IBAN: the BBAN matches the country's registry structure (letters in any case).
pub fn iban_structure(v: &str) -> bool {
    let Some((len, fmt)) = v.get(..2).and_then(iban_format) else {
        return false;
    };
    if v.len() != len {
        return false;
    }
    let bban = &v.as_bytes()[4..];
    let mut pos = 0usize;
    let mut count = 0usize;
    for c in fmt.bytes() {
        if c.is_ascii_digit() {
            count = count * 10 + (c - b'0') as usize;
            continue;
        }
        let ok = |x: &u8| match c {
            b'n' => x.is_ascii_digit(),
            b'a' => x.is_ascii_alphabetic(),
            _ => x.is_ascii_alphanumeric(),
        };
        match bban.get(pos..pos + count) {
            Some(seg) if seg.iter().all(ok) => {}
            _ => return false,
        }
        pos += count;
        count = 0;
    }
    pos == bban.len()
}

/// SSN structure: nine digits, area not 000 / 666 / 9xx, group not 00, serial not 0000,
/// and not a known advertising or sequence number.
pub fn ssn_structure(v: &str) -> bool {
    if v.len() != 9 || !all_digits(v) {
        return false;
    }
    let area: u32 = v[..3].parse().unwrap_or(0);
    let group: u32 = v[3..5].parse().unwrap_or(0);
    let serial: u32 = v[5..].parse().unwrap_or(0);
    if area == 0 || area == 666 || area >= 900 || group == 0 || serial == 0 {
        return false;
    }
    // Woolworth wallet card, SSA advertisement, and the third python-stdnum blacklist entry.
    const ADVERTISING: [&str; 3] = ["078051120", "219099999", "457555462"];
    if ADVERTISING.contains(&v) || v == "123456789" || v.starts_with("98765432") {
        return false;
    }
    let first = v.as_bytes()[0];
    !v.bytes().all(|b| b == first)
}

/// ITIN: leading 9 and digits 4–5 in 50–65, 70–88, 90–92 or 94–99.
pub fn itin_structure(v: &str) -> bool {
    if v.len() != 9 || !all_digits(v) || !v.starts_with('9') {
        return false;
    }
    let g: u32 = v[3..5].parse().unwrap_or(0);
    (50..=65).contains(&g)
        || (70..=88).contains(&g)
        || (90..=92).contains(&g)
        || (94..=99).contains(&g)
}

/// MBI: `C A AN N A AN N A A N N`, letters without S, L, O, I, B, Z, first digit 1–9.
pub fn mbi_structure(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() != 11 {
        return false;
    }
    let letter = |c: u8| c.is_ascii_uppercase() && !b"SLOIBZ".contains(&c);
    let num = |c: u8| c.is_ascii_digit();
    (b'1'..=b'9').contains(&b[0])
        && letter(b[1])
        && (letter(b[2]) || num(b[2]))
        && num(b[3])
        && letter(b[4])
        && (letter(b[5]) || num(b[5]))
        && num(b[6])
        && letter(b[7])
        && letter(b[8])
        && num(b[9])
        && num(b[10])
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

fn month_from_name(s: &str) -> Option<u32> {
    let s = s.trim_end_matches('.').to_ascii_lowercase();
    if s.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| {
            s.starts_with(m) && (s.len() == 3 || full_month(m).starts_with(&s) || s == "sept")
        })
        .map(|i| i as u32 + 1)
}

fn full_month(abbr: &str) -> &'static str {
    match abbr {
        "jan" => "january",
        "feb" => "february",
        "mar" => "march",
        "apr" => "april",
        "may" => "may",
        "jun" => "june",
        "jul" => "july",
        "aug" => "august",
        "sep" => "september",
        "oct" => "october",
        "nov" => "november",
        _ => "december",
    }
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

fn real(y: i32, m: u32, d: u32, max_year: i32) -> bool {
    (1900..=max_year).contains(&y) && (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m)
}

fn year_of(s: &str, max_year: i32) -> Option<i32> {
    let y: i32 = s.parse().ok()?;
    match s.len() {
        4 => Some(y),
        // Two-digit years: the most recent year not after `max_year`.
        2 => Some(if 2000 + y <= max_year {
            2000 + y
        } else {
            1900 + y
        }),
        _ => None,
    }
}

/// A real date (US month/day order first, then day/month, ISO, or month names)
/// with 1900 ≤ year ≤ `max_year`.
pub fn date_real(v: &str, max_year: i32) -> bool {
    let parts: Vec<&str> = v
        .split(['/', '-', '.', ' ', ','])
        .filter(|p| !p.is_empty())
        .collect();
    if parts.len() != 3 {
        return false;
    }
    let num = |s: &str| -> Option<u32> {
        if s.len() <= 2 && all_digits(s) {
            s.parse().ok()
        } else {
            None
        }
    };
    // ISO: yyyy-mm-dd
    if parts[0].len() == 4 && all_digits(parts[0]) {
        return match (year_of(parts[0], max_year), num(parts[1]), num(parts[2])) {
            (Some(y), Some(m), Some(d)) => real(y, m, d, max_year),
            _ => false,
        };
    }
    let Some(y) = year_of(parts[2], max_year) else {
        return false;
    };
    match (num(parts[0]), num(parts[1])) {
        (Some(a), Some(b)) => real(y, a, b, max_year) || real(y, b, a, max_year),
        (Some(d), None) => month_from_name(parts[1]).is_some_and(|m| real(y, m, d, max_year)),
        (None, Some(d)) => month_from_name(parts[0]).is_some_and(|m| real(y, m, d, max_year)),
        _ => false,
    }
}

/// NANP: optional leading 1, then NPA `[2-9][0-8]x` and NXX `[2-9]xx`, neither N11.
pub fn nanp_phone(v: &str) -> bool {
    let v = if v.len() == 11 && v.starts_with('1') {
        &v[1..]
    } else {
        v
    };
    if v.len() != 10 || !all_digits(v) {
        return false;
    }
    let b = v.as_bytes();
    let n11 = |x: &[u8]| x[1] == b'1' && x[2] == b'1';
    b[0] >= b'2' && b[1] != b'9' && !n11(&b[0..3]) && b[3] >= b'2' && !n11(&b[3..6])
}

/// Email: sane local part and dot-separated DNS labels ending in an alphabetic or
/// punycode top-level domain.
pub fn email_domain(v: &str) -> bool {
    let Some((local, domain)) = v.rsplit_once('@') else {
        return false;
    };
    if local.is_empty()
        || local.len() > 64
        || local.starts_with('.')
        || local.ends_with('.')
        || local.contains("..")
    {
        return false;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || domain.len() > 253 {
        return false;
    }
    let label_ok = |l: &&str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
    };
    if !labels.iter().all(label_ok) {
        return false;
    }
    let tld = labels[labels.len() - 1];
    tld.starts_with("xn--") || (tld.len() >= 2 && tld.bytes().all(|c| c.is_ascii_alphabetic()))
}

/// True when all digits except the last (check) digit are the same, e.g. `000000000`,
/// `1111111112`: checksum-valid but never issued.
pub fn repeated_digits(v: &str) -> bool {
    let d: Vec<u8> = v.bytes().filter(u8::is_ascii_digit).collect();
    d.len() >= 3 && d[..d.len() - 1].iter().all(|&x| x == d[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_vectors() {
        for v in [
            "4111111111111111",
            "4012888888881881",
            "378282246310005",
            "5555555555554444",
            "6011111111111117",
            "3530111333300000",
        ] {
            assert!(luhn(v), "{v}");
        }
        for v in [
            "4012888888881882",
            "36168002586008",
            "",
            "1",
            "41111111a1111111",
        ] {
            assert!(!luhn(v), "{v}");
        }
    }

    #[test]
    fn card_brands() {
        assert_eq!(card_brand("4111111111111111"), Some("visa"));
        assert_eq!(card_brand("4222222222222"), Some("visa")); // 13-digit Visa
        assert_eq!(card_brand("2221000000000009"), Some("mastercard"));
        assert_eq!(card_brand("2720990000000007"), Some("mastercard"));
        assert_eq!(card_brand("378282246310005"), Some("amex"));
        assert_eq!(card_brand("6011000990139424"), Some("discover"));
        assert_eq!(card_brand("6212345678901265"), Some("unionpay"));
        assert_eq!(card_brand("4111111111111111110"), Some("visa")); // 19-digit Visa
        assert_eq!(card_brand("122000000000003"), Some("uatp"));
        assert_eq!(card_brand("411111111111111"), None); // Visa never has 15 digits
        assert_eq!(card_brand("2721000000000000"), None); // past the 2-series range
        assert_eq!(card_brand("1748503543012"), None);
        assert_eq!(card_brand("7111111111111111"), None);
        assert_eq!(card_brand("30569309025904"), Some("diners"));
        assert_eq!(card_brand("5019717010103742"), Some("maestro")); // Dankort, in 50
    }

    #[test]
    fn card_brands_jcb_maestro_unionpay() {
        for (v, brand) in [
            ("3530111333300000", "jcb"),
            ("3566002020360505", "jcb"),
            ("3528123456789012", "jcb"),
            ("35891234567890127", "jcb"),
            ("3589123456789012346", "jcb"),
            ("213112345678904", "jcb"), // legacy 15-digit
            ("180012345678905", "jcb"), // legacy 15-digit, inside UATP's 1
            ("6759649826438453", "maestro"),
            ("6799990100000000019", "maestro"),
            ("501812345673", "maestro"), // 12 digits
            ("060412345674", "maestro"),
            ("630412345674", "maestro"),
            ("676112345670", "maestro"),
            ("589312345673", "maestro"),
            ("6200000000000005", "unionpay"),
            ("6250941006528599", "unionpay"),
            ("62121234567890123", "unionpay"),
            ("6212123456789012342", "unionpay"),
        ] {
            assert!(luhn(v), "{v} must be Luhn-valid");
            assert_eq!(card_brand(v), Some(brand), "{v}");
        }
        // Luhn-valid, but a length the prefix's brand does not issue.
        for v in [
            "353012345678906",      // JCB 3528–3589 at 15
            "2131123456789013",     // legacy JCB at 16
            "560012345677",         // 12 digits outside Maestro's published IINs
            "620012345679",         // UnionPay at 12
            "621212345678908",      // UnionPay at 15, not Maestro
            "6011123456783",        // Discover at 13
            "6500123456785",        // Discover at 13
            "6000123456786",        // RuPay at 13
            "35891234567890123455", // 20 digits
        ] {
            assert!(luhn(v), "{v} must be Luhn-valid");
            assert_eq!(card_brand(v), None, "{v}");
        }
        // The wide Maestro block still holds what the brands above do not.
        assert_eq!(card_brand("6300123456780"), Some("maestro"));
        assert_eq!(card_brand("5600123456784"), Some("maestro"));
        assert_eq!(card_brand("6011123456789012348"), Some("discover"));
    }

    #[test]
    fn card_iin_rows_nest() {
        // Each row's prefix range, widened to four digits.
        let span = |&(_, plen, lo, hi, _): &(&str, usize, u32, u32, u32)| {
            let k = 10u32.pow(4 - plen as u32);
            (lo * k, hi * k + k - 1)
        };
        for (i, a) in CARD_IINS.iter().enumerate() {
            for b in &CARD_IINS[i + 1..] {
                let ((alo, ahi), (blo, bhi)) = (span(a), span(b));
                if ahi < blo || bhi < alo {
                    continue;
                }
                assert!(
                    a.1 > b.1 && b.4 & !a.4 == 0,
                    "{a:?} and {b:?} overlap: the longer prefix must come first and the \
                     shorter allow no other length"
                );
            }
        }
    }

    #[test]
    fn aba() {
        for v in [
            "121000358",
            "322271627",
            "071101307",
            "111000025",
            "121000248",
            "121042882",
        ] {
            assert!(aba_checksum(v) && aba_prefix(v), "{v}");
        }
        assert!(!aba_prefix("421042111") && aba_prefix("800000000"));
        for v in [
            "123400000",
            "123456789",
            "112000025",
            "12100035",
            "abcdefghi",
        ] {
            assert!(!aba_checksum(v), "{v}");
        }
    }

    #[test]
    fn dea() {
        for v in [
            "AB1234563",
            "FA1111119",
            "MJ1234563",
            "GL0285191",
            "BB1388568",
            "K92993548",
        ] {
            assert!(dea_checksum(v), "{v}");
        }
        for v in [
            "AB1234560",
            "BG8207031",
            "AB123456",
            "AB12345678",
            "1B1234563",
            "A11234563",
        ] {
            assert!(!dea_checksum(v), "{v}");
        }
    }

    #[test]
    fn npi() {
        for v in ["1234567893", "1245319599", "1003000126"] {
            assert!(npi_luhn(v), "{v}");
        }
        for v in [
            "1234567890",
            "0234567893",
            "3234567893",
            "123456789",
            "12345678934",
        ] {
            assert!(!npi_luhn(v), "{v}");
        }
    }

    #[test]
    fn iban() {
        for v in [
            "DE44500105175407324931",
            "GB82WEST12345698765432",
            "AL47212110090000000235698741",
            "KZ86125KZT5004100100",
        ] {
            assert!(iban_mod97(v) && iban_structure(v), "{v}");
        }
        assert!(!iban_mod97("DE45500105175407324931"));
        assert!(!iban_mod97("AL47212A10090000000235698741"));
        assert!(
            iban_mod97("AL84212110090000AB023569874")
                || !iban_structure("AL84212110090000AB023569874")
        );
        assert!(!iban_structure("AL84212110090000AB023569874"));
        assert!(!iban_mod97("DE4450010517540732493")); // one short
        assert!(!iban_mod97("XX44500105175407324931")); // unknown country
        assert_eq!(
            Normalize::Iban.apply("VG96 VPVG 0000 0123 4567 8901 X"),
            "VG96VPVG0000012345678901"
        );
    }

    #[test]
    fn iban_any_case() {
        for v in [
            "gb82west12345698765432",
            "de89370400440532013000",
            "Gb82WeSt12345698765432",
            "vg96vpvg0000012345678901",
        ] {
            assert!(iban_mod97(v) && iban_structure(v), "{v}");
            let up = v.to_ascii_uppercase();
            assert!(iban_mod97(&up) && iban_structure(&up), "{up}");
        }
        assert_eq!(
            Normalize::Iban.apply("gb82 west 1234 5698 7654 32"),
            "GB82WEST12345698765432"
        );
        assert_eq!(iban_country_length("gb"), Some(22));
        assert!(!iban_mod97("gb82west12345698765433"));
        assert!(!iban_mod97("de89370400440532013001"));
        assert!(!iban_mod97("gb82west1234569876543")); // one short
        assert!(!iban_structure("gb82w3st12345698765432")); // bank code must be letters
    }

    #[test]
    fn ssn() {
        for v in ["536904399", "078051123", "772121234", "899991234"] {
            assert!(ssn_structure(v), "{v}");
        }
        for v in [
            "078051120",
            "219099999",
            "457555462",
            "000123456",
            "666121234",
            "912121234",
            "123001234",
            "123450000",
            "111111111",
            "123456789",
            "987654321",
            "12345678",
        ] {
            assert!(!ssn_structure(v), "{v}");
        }
    }

    #[test]
    fn itin() {
        for v in [
            "912903456",
            "911701234",
            "911531234",
            "911641234",
            "999991234",
        ] {
            assert!(itin_structure(v), "{v}");
        }
        for v in [
            "912934567",
            "911891234",
            "123456789",
            "911491234",
            "91170123",
        ] {
            assert!(!itin_structure(v), "{v}");
        }
    }

    #[test]
    fn mbi() {
        for v in ["1EG4TE5MK73", "9XX9XX9XX99", "2AG9XC4NN22"] {
            assert!(mbi_structure(v), "{v}");
        }
        for v in [
            "1SG4TE5MK73",
            "1EG4LE5MK73",
            "1BG4TE5MK73",
            "AEG4TE5MK73",
            "12G4TE5MK73",
            "0EG4TE5MK73",
            "1EG4TE5MK7",
            "1EG4TE5OK73",
        ] {
            assert!(!mbi_structure(v), "{v}");
        }
    }

    #[test]
    fn dates() {
        for v in [
            "03/14/1972",
            "14/03/1972",
            "1972-03-14",
            "2/29/2000",
            "3.14.72",
            "March 14, 1972",
            "14 Mar 1972",
            "14-Mar-1972",
            "Sept 3 1999",
        ] {
            assert!(date_real(v, 2026), "{v}");
        }
        for v in [
            "02/30/1972",
            "2/29/1900",
            "13/13/1972",
            "1899-01-01",
            "03/14/2030",
            "Foo 14 1972",
            "1972-13-01",
            "14/03",
        ] {
            assert!(!date_real(v, 2026), "{v}");
        }
    }

    #[test]
    fn phones() {
        for v in ["4155550132", "14155550132", "2125551234"] {
            assert!(nanp_phone(v), "{v}");
        }
        for v in [
            "1155550132",
            "4115550132",
            "4951234567",
            "4155110132",
            "415555013",
            "0155550132",
        ] {
            assert!(!nanp_phone(v), "{v}");
        }
    }

    #[test]
    fn emails() {
        for v in [
            "info@presidio.site",
            "user@xn--80ak6aa92e.com",
            "a@xn--d1acufc.xn--p1ai",
            "first.last+tag@mail.example.org",
        ] {
            assert!(email_domain(v), "{v}");
        }
        for v in [
            "info@presidio.",
            "a@b",
            ".a@b.com",
            "a..b@c.com",
            "a@-b.com",
            "a@b.c0m",
            "a@b.c",
        ] {
            assert!(!email_domain(v), "{v}");
        }
    }

    #[test]
    fn e164() {
        assert!(Validator::E164Length.check("551198456566", 2026));
        assert!(!Validator::E164Length.check("5511", 2026));
        assert!(!Validator::E164Length.check("1234567890123456", 2026));
    }

    #[test]
    fn repeated() {
        assert!(repeated_digits("000000000"));
        assert!(repeated_digits("1111111112"));
        assert!(!repeated_digits("1234567893"));
    }

    #[test]
    fn normalisations() {
        assert_eq!(Normalize::Digits.apply("536-90-4399"), "536904399");
        assert_eq!(Normalize::AlnumUpper.apply("1eg4-te5-mk73"), "1EG4TE5MK73");
        assert_eq!(Normalize::Lower.apply(" A@B.COM "), "a@b.com");
        assert_eq!(Normalize::Nanp.apply("+1 415 555 0132"), "4155550132");
    }
}
