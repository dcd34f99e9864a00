//! Which local recipients exist: an optional list (Postfix's
//! `relay_recipient_maps`), so inbound mail to unknown users is refused at
//! RCPT time instead of being accepted and bounced later to a sender that is
//! often forged (backscatter).
//!
//! File format: one entry per line, `#` comments. `user@domain` accepts that
//! address; `@domain` accepts every address in the domain. Domains the file
//! does not mention are not restricted.

use super::address::{ascii_domain, Mailbox};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, RwLock};

/// The list in force, replaced whole on reload; `None` means no list.
pub type SharedRecipients = Arc<RwLock<Option<Arc<RecipientList>>>>;

/// Why the recipients file did not load.
#[derive(Debug, thiserror::Error)]
pub enum RecipientsError {
    /// Unreadable file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// A line that is neither `user@domain` nor `@domain`.
    #[error("{path}:{line}: `{text}` is not user@domain or @domain")]
    Syntax {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// The line.
        text: String,
    },
}

/// Known recipients per domain (ASCII form, lower case).
#[derive(Debug, Default)]
pub struct RecipientList {
    domains: HashMap<String, DomainEntry>,
}

#[derive(Debug, Default)]
struct DomainEntry {
    any: bool,
    locals: HashSet<String>,
}

impl RecipientList {
    /// Reads a recipients file.
    pub fn load(path: &Path) -> Result<Self, RecipientsError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| RecipientsError::Io {
            path: p.clone(),
            source,
        })?;
        Self::parse(&text, &p)
    }

    fn parse(text: &str, path: &str) -> Result<Self, RecipientsError> {
        let mut list = RecipientList::default();
        for (n, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let bad = || RecipientsError::Syntax {
                path: path.to_string(),
                line: n + 1,
                text: line.to_string(),
            };
            if let Some(domain) = line.strip_prefix('@') {
                Mailbox::parse(&format!("x@{domain}")).map_err(|_| bad())?;
                list.domains.entry(ascii_domain(domain)).or_default().any = true;
            } else {
                let m = Mailbox::parse(line).map_err(|_| bad())?;
                list.domains
                    .entry(m.domain_ascii())
                    .or_default()
                    .locals
                    .insert(m.local().to_lowercase());
            }
        }
        Ok(list)
    }

    /// Whether mail to `m` may be accepted. Local parts compare without case,
    /// as Microsoft 365 and Google Workspace treat them.
    pub fn accepts(&self, m: &Mailbox) -> bool {
        match self.domains.get(&m.domain_ascii()) {
            None => true,
            Some(d) => d.any || d.locals.contains(&m.local().to_lowercase()),
        }
    }

    /// Number of listed addresses and catch-all domains.
    pub fn len(&self) -> usize {
        self.domains
            .values()
            .map(|d| d.locals.len() + usize::from(d.any))
            .sum()
    }

    /// True when the list has no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mb(s: &str) -> Mailbox {
        Mailbox::parse(s).unwrap()
    }

    #[test]
    fn exact_catch_all_and_unlisted_domains() {
        let l = RecipientList::parse(
            "# staff\nDr.Who@Hospital.test\n@clinic.test  # every address\n",
            "f",
        )
        .unwrap();
        assert!(l.accepts(&mb("dr.who@hospital.test")));
        assert!(!l.accepts(&mb("nobody@hospital.test")));
        assert!(l.accepts(&mb("anyone@clinic.test")));
        assert!(l.accepts(&mb("x@unlisted.test")));
        assert_eq!(l.len(), 2);
    }

    #[test]
    fn bad_line_is_named() {
        let e = RecipientList::parse("ok@a.test\nnot an address\n", "r.txt")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "r.txt:2: `not an address` is not user@domain or @domain");
    }
}
