//! Whole-word keyword search over every term list at once.
//!
//! Keywords only count as whole words ("ssn" must not fire inside "lessons"), so a
//! match can only start where a word starts. The index therefore walks the text word
//! by word and looks each word up, instead of running an automaton over every byte:
//! a two-byte prefix bitmap rejects most words for a table load, and the rest hash
//! once and compare against the few terms that begin with that word. Terms whose
//! first byte is not a word byte (a rule author may write `#acct`) have no word
//! start to hang on; they go to a small Aho-Corasick automaton instead.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, AhoCorasickKind, MatchKind};
use std::collections::HashMap;

/// Keyword occurrences per list, each sorted by start.
pub(crate) type Occurrences = Vec<Vec<(usize, usize)>>;

/// ASCII letters, digits and `_`: what a keyword boundary is measured against.
fn is_word_byte(b: u8) -> bool {
    WORD[usize::from(b)]
}

const WORD: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || b == b'_';
        i += 1;
    }
    t
};

/// One term: its lower-case bytes and the lists that hold it.
#[derive(Debug)]
struct Term {
    bytes: Box<[u8]>,
    lists: Box<[usize]>,
}

/// Every term list, indexed by the first word of each term.
#[derive(Debug)]
pub(crate) struct KeywordIndex {
    terms: Vec<Term>,
    /// Hash of a term's lower-cased first word → its terms, longest first.
    by_first_word: HashMap<u64, Vec<u32>, IdentityHash>,
    /// Bit per `prefix_key` of every term's first word.
    prefixes: Box<[u64]>,
    /// Terms starting with a non-word byte, and the term index of each pattern.
    odd: Option<(AhoCorasick, Vec<u32>)>,
    list_count: usize,
}

impl KeywordIndex {
    /// Builds the index over `lists` (terms already lower-case and non-empty).
    pub(crate) fn new(lists: &[Vec<String>]) -> Result<KeywordIndex, String> {
        let mut terms: Vec<Term> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        let mut lists_of: Vec<Vec<usize>> = Vec::new();
        let mut order: Vec<&str> = Vec::new();
        for (l, ts) in lists.iter().enumerate() {
            for t in ts {
                let i = *index.entry(t.as_str()).or_insert_with(|| {
                    order.push(t);
                    lists_of.push(Vec::new());
                    order.len() - 1
                });
                if !lists_of[i].contains(&l) {
                    lists_of[i].push(l);
                }
            }
        }
        for (t, ls) in order.iter().zip(lists_of) {
            terms.push(Term {
                bytes: t.as_bytes().to_ascii_lowercase().into_boxed_slice(),
                lists: ls.into_boxed_slice(),
            });
        }

        let mut by_first_word: HashMap<u64, Vec<u32>, IdentityHash> = HashMap::default();
        let mut prefixes = vec![0u64; PREFIX_BITS / 64].into_boxed_slice();
        let mut odd_terms: Vec<(&[u8], u32)> = Vec::new();
        for (i, t) in terms.iter().enumerate() {
            let i = i as u32;
            let w = first_word_len(&t.bytes);
            if w == 0 {
                odd_terms.push((&t.bytes, i));
                continue;
            }
            set_bit(&mut prefixes, prefix_key(&t.bytes[..w]));
            by_first_word
                .entry(hash_lower(&t.bytes[..w]))
                .or_default()
                .push(i);
        }
        for v in by_first_word.values_mut() {
            v.sort_by_key(|&i| std::cmp::Reverse(terms[i as usize].bytes.len()));
        }
        let odd = if odd_terms.is_empty() {
            None
        } else {
            let ac = AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostLongest)
                .kind(Some(AhoCorasickKind::DFA))
                .build(odd_terms.iter().map(|(b, _)| b))
                .map_err(|e| format!("keyword automaton: {e}"))?;
            Some((ac, odd_terms.iter().map(|&(_, i)| i).collect()))
        };
        Ok(KeywordIndex {
            terms,
            by_first_word,
            prefixes,
            odd,
            list_count: lists.len(),
        })
    }

    /// Every whole-word occurrence of every term, per list, sorted by start. Where
    /// terms overlap at one start the longest whole-word term wins, and the search
    /// resumes after it.
    pub(crate) fn scan(&self, text: &str) -> Occurrences {
        let b = text.as_bytes();
        let n = b.len();
        let mut occ: Occurrences = vec![Vec::new(); self.list_count];
        // Positions before `resume` are inside the last match (matches do not overlap).
        let mut resume = 0;
        let mut carry = 0u64;
        for base in (0..n).step_by(64) {
            let chunk = &b[base..n.min(base + 64)];
            // Bit i set = byte i is a word byte. Branch-free: the walk below only
            // visits word starts, so prose costs a few vector instructions per 64
            // bytes, not a mispredicted branch at every word edge.
            let mask = word_mask(chunk);
            let mut starts = mask & !((mask << 1) | carry);
            carry = mask >> 63;
            while starts != 0 {
                let k = starts.trailing_zeros() as usize;
                starts &= starts - 1;
                let s = base + k;
                if s < resume {
                    continue;
                }
                let mut len = (!mask >> k).trailing_zeros() as usize;
                if k + len >= chunk.len() {
                    len = b[s..].iter().take_while(|&&c| is_word_byte(c)).count();
                }
                if !get_bit(&self.prefixes, prefix_key(&b[s..s + len])) {
                    continue;
                }
                let Some(cands) = self.by_first_word.get(&hash_lower(&b[s..s + len])) else {
                    continue;
                };
                for &t in cands {
                    let term = &self.terms[t as usize];
                    let e = s + term.bytes.len();
                    if e <= n
                        && b[s..e].eq_ignore_ascii_case(&term.bytes)
                        && (e == n || !is_word_byte(b[e]) || !is_word_byte(b[e - 1]))
                    {
                        for &l in term.lists.iter() {
                            occ[l].push((s, e));
                        }
                        resume = e;
                        break;
                    }
                }
            }
        }
        if let Some((ac, ids)) = &self.odd {
            let mut added = false;
            for m in ac.find_iter(text) {
                let (s, e) = (m.start(), m.end());
                if e == n || !is_word_byte(b[e]) || !is_word_byte(b[e - 1]) {
                    for &l in self.terms[ids[m.pattern().as_usize()] as usize]
                        .lists
                        .iter()
                    {
                        occ[l].push((s, e));
                        added = true;
                    }
                }
            }
            if added {
                // Merge: keep each list's occurrences sorted and non-overlapping, so
                // `acct` inside a found `#acct` is not a second value.
                for o in &mut occ {
                    o.sort_unstable_by_key(|&(s, e)| (s, std::cmp::Reverse(e)));
                    let mut end = 0;
                    o.retain(|&(s, e)| {
                        let keep = s >= end;
                        if keep {
                            end = e;
                        }
                        keep
                    });
                }
            }
        }
        occ
    }
}

/// Bit i set when `chunk[i]` (at most 64 bytes) is a word byte. Eight bytes are
/// classified at once with arithmetic on a `u64` (no table loads, no branches).
fn word_mask(chunk: &[u8]) -> u64 {
    let mut m = 0u64;
    let mut words = chunk.chunks_exact(8);
    for (j, w) in words.by_ref().enumerate() {
        let x = u64::from_le_bytes(w.try_into().expect("chunks_exact gives 8 bytes"));
        m |= word_bits8(x) << (8 * j);
    }
    let done = chunk.len() - words.remainder().len();
    for (i, &c) in words.remainder().iter().enumerate() {
        m |= u64::from(is_word_byte(c)) << (done + i);
    }
    m
}

/// For the eight bytes of `x` (first byte lowest), bit i set when byte i is an ASCII
/// letter, digit or `_`. Each test is "byte ≥ k", read from the high bit of
/// `byte + (0x80 - k)` on bytes below 0x80, where the sum cannot carry into the next.
fn word_bits8(x: u64) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const ONES: u64 = 0x0101_0101_0101_0101;
    let ascii = !x & HIGH;
    let low = x & !HIGH;
    let folded = low | (0x20 * ONES);
    let at_least = |v: u64, k: u8| (v + u64::from(0x80 - k) * ONES) & HIGH;
    let letter = at_least(folded, b'a') & !at_least(folded, b'z' + 1);
    let digit = at_least(low, b'0') & !at_least(low, b'9' + 1);
    let z = low ^ (u64::from(b'_') * ONES);
    let underscore = !((z + 0x7F * ONES) | z) & HIGH;
    let bits = (letter | digit | underscore) & ascii;
    // Gather the eight high bits into the low byte, first byte lowest.
    ((bits >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) & 0xFF
}

/// Length of the leading run of word bytes (0 when the term starts with another byte).
fn first_word_len(t: &[u8]) -> usize {
    t.iter().take_while(|&&b| is_word_byte(b)).count()
}

/// Bits in the prefix bitmap: 5 bits per byte of the first two, 4 of length
/// (2 KiB, so it stays in L1 while the text streams past).
const PREFIX_BITS: usize = 1 << 14;

/// The bitmap key of a word: its first two bytes folded to 5 bits (case-free for
/// letters; 0 for a one-byte word) and its length up to 15. Ordinary words seldom
/// share all three with a term's first word, so most of them cost one bit test.
fn prefix_key(w: &[u8]) -> usize {
    let fold = |c: u8| usize::from((c | 0x20) & 0x1f);
    let a = fold(w[0]);
    let b = w.get(1).map_or(0, |&c| fold(c));
    (a << 9) | (b << 4) | w.len().min(15)
}

fn set_bit(bits: &mut [u64], k: usize) {
    bits[k >> 6] |= 1 << (k & 63);
}

fn get_bit(bits: &[u64], k: usize) -> bool {
    bits[k >> 6] & (1 << (k & 63)) != 0
}

/// FNV-1a over the lower-cased bytes: a word is a few bytes, so a simple hash wins.
fn hash_lower(w: &[u8]) -> u64 {
    w.iter().fold(0xcbf2_9ce4_8422_2325, |h, &c| {
        (h ^ u64::from(c.to_ascii_lowercase())).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The keys are already hashes; hashing them again would only cost time.
#[derive(Debug, Default, Clone, Copy)]
struct IdentityHash;

impl std::hash::BuildHasher for IdentityHash {
    type Hasher = Identity;
    fn build_hasher(&self) -> Identity {
        Identity(0)
    }
}

/// Passes a `u64` key through unchanged.
#[derive(Debug, Default)]
struct Identity(u64);

impl std::hash::Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_word_mask_agrees_with_the_byte_test_for_every_byte_in_every_place() {
        for c in 0..=255u8 {
            for at in 0..64 {
                let mut chunk = [b' '; 64];
                chunk[at] = c;
                for len in [64, at + 1] {
                    let want = u64::from(is_word_byte(c)) << at;
                    assert_eq!(
                        word_mask(&chunk[..len]),
                        want,
                        "byte {c:#x} at {at}, len {len}"
                    );
                }
            }
        }
        let mixed: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37)).collect();
        let want = mixed
            .iter()
            .enumerate()
            .fold(0u64, |m, (i, &c)| m | (u64::from(is_word_byte(c)) << i));
        assert_eq!(word_mask(&mixed), want);
    }

    fn idx(lists: &[&[&str]]) -> KeywordIndex {
        let lists: Vec<Vec<String>> = lists
            .iter()
            .map(|l| l.iter().map(|t| t.to_string()).collect())
            .collect();
        KeywordIndex::new(&lists).unwrap()
    }

    fn found<'t>(k: &KeywordIndex, t: &'t str, list: usize) -> Vec<&'t str> {
        k.scan(t)[list].iter().map(|&(s, e)| &t[s..e]).collect()
    }

    #[test]
    fn whole_words_only_any_case() {
        let k = idx(&[&["ssn", "social security"]]);
        let t = "Lessons: SSN 1, Social  Security, social security, ssns, xssn, ssn";
        assert_eq!(found(&k, t, 0), ["SSN", "social security", "ssn"]);
    }

    #[test]
    fn longest_term_wins_and_lists_share_terms() {
        let k = idx(&[&["card", "card #"], &["card"]]);
        let t = "card #4, card";
        assert_eq!(k.scan(t)[0], vec![(0, 6), (9, 13)]);
        assert_eq!(k.scan(t)[1], vec![(9, 13)]);
    }

    #[test]
    fn punctuation_inside_and_unicode_around() {
        let k = idx(&[&["d.o.b.", "covid-19", "driver’s license", "x-ray"]]);
        let t = "D.O.B. 1/2/3; é covid-19 (X-Ray) driver’s license";
        assert_eq!(
            found(&k, t, 0),
            ["D.O.B.", "covid-19", "X-Ray", "driver’s license"]
        );
    }

    #[test]
    fn a_term_starting_with_punctuation_is_found_once() {
        let k = idx(&[&["#acct", "acct"]]);
        assert_eq!(found(&k, "ref #acct 9, acct", 0), ["#acct", "acct"]);
    }

    #[test]
    fn words_across_the_64_byte_blocks() {
        let k = idx(&[&["ssn", "social security number"]]);
        for pad in 0..140 {
            // A term straddling a block edge is found wherever it falls...
            let t = format!("{}Social Security Number ssn", " ".repeat(pad));
            assert_eq!(found(&k, &t, 0), ["Social Security Number", "ssn"], "{pad}");
            // ...and a term glued to a word that began in the block before is not.
            let t = format!("{}ssn", "a".repeat(pad));
            assert_eq!(found(&k, &t, 0).len(), usize::from(pad == 0), "{pad}");
        }
    }

    #[test]
    fn a_prefix_of_a_longer_word_is_not_a_match() {
        let k = idx(&[&["dob", "diabetes"]]);
        assert!(k.scan("doberman diabetesx").iter().all(Vec::is_empty));
    }
}
