//! Subject tags such as `[secure]`: found case-insensitively anywhere in the
//! subject, and removed before delivery so the recipient never sees them.

/// Where a tag sits in a subject: byte range of the match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagHit {
    /// The configured tag that matched (as configured).
    pub tag: String,
    /// Byte range in the subject.
    pub at: std::ops::Range<usize>,
}

/// Every occurrence of any of `tags` in `subject`, in order.
pub fn find(subject: &str, tags: &[String]) -> Vec<TagHit> {
    // ASCII lower-casing keeps byte offsets valid for the original string.
    let lower = subject.to_ascii_lowercase();
    let mut hits: Vec<TagHit> = Vec::new();
    for tag in tags.iter().filter(|t| !t.is_empty()) {
        let needle = tag.to_ascii_lowercase();
        let mut from = 0;
        while let Some(i) = lower[from..].find(&needle) {
            let start = from + i;
            hits.push(TagHit {
                tag: tag.clone(),
                at: start..start + needle.len(),
            });
            from = start + needle.len();
        }
    }
    hits.sort_by_key(|h| h.at.start);
    // Overlaps (one tag inside another) count once.
    hits.dedup_by(|b, a| b.at.start < a.at.end);
    hits
}

/// `subject` without the tags in `hits`, with the whitespace they leave
/// collapsed: `"[secure] Lab results"` becomes `"Lab results"`.
pub fn strip(subject: &str, hits: &[TagHit]) -> String {
    let mut out = String::with_capacity(subject.len());
    let mut last = 0;
    for h in hits {
        out.push_str(&subject[last..h.at.start]);
        last = h.at.end;
    }
    out.push_str(&subject[last..]);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags() -> Vec<String> {
        vec!["[secure]".into(), "[encrypt]".into(), "[pgp]".into()]
    }

    #[test]
    fn tags_match_anywhere_ignoring_case_and_strip_cleanly() {
        let s = "Re: [SECURE] Lab results [Encrypt]";
        let hits = find(s, &tags());
        assert_eq!(
            hits.iter().map(|h| h.tag.as_str()).collect::<Vec<_>>(),
            ["[secure]", "[encrypt]"]
        );
        assert_eq!(strip(s, &hits), "Re: Lab results");
        assert!(find("Secure results", &tags()).is_empty());
        assert_eq!(strip("[pgp]", &find("[pgp]", &tags())), "");
    }
}
