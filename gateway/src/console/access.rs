//! Who may see what: the roles' areas, checked on the server for every
//! request, and an admin's domain scope applied to every trace row.

use crate::store::console::ConsoleUser;
use crate::store::tokens::Role;

/// A part of the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// The message trace and its detail views (metadata, never content).
    Trace,
    /// The dashboard's counts.
    Dashboard,
    /// The audit log, read-only.
    Audit,
    /// The archive: search and read message content.
    Archive,
}

/// True when `role` may use `area`. Admins run the gateway but never read
/// archived content; archivists read the archive and nothing else;
/// auditors read the audit log and nothing else.
pub fn may(role: Role, area: Area) -> bool {
    matches!(
        (role, area),
        (Role::Admin, Area::Trace | Area::Dashboard)
            | (Role::Archivist, Area::Archive)
            | (Role::Auditor, Area::Audit)
    )
}

/// The areas `role` may use, in menu order.
pub fn areas(role: Role) -> impl Iterator<Item = Area> {
    [Area::Trace, Area::Dashboard, Area::Audit, Area::Archive]
        .into_iter()
        .filter(move |a| may(role, *a))
}

/// The domain of `address` (after the last `@`), lower-case.
fn domain_of(address: &str) -> String {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('>').to_ascii_lowercase())
        .unwrap_or_default()
}

/// True when `user` may see a message from `sender` to `recipient`: a user
/// without domains sees all; a domain-scoped admin sees mail whose sender
/// or that recipient is in one of their domains (subdomains included).
pub fn sees(user: &ConsoleUser, sender: &str, recipient: &str) -> bool {
    if user.domains.is_empty() {
        return true;
    }
    let within = |address: &str| {
        let d = domain_of(address);
        !d.is_empty()
            && user
                .domains
                .iter()
                .any(|mine| d == *mine || d.ends_with(&format!(".{mine}")))
    };
    within(sender) || within(recipient)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(role: Role, domains: &[&str]) -> ConsoleUser {
        ConsoleUser {
            name: "u".into(),
            role,
            domains: domains.iter().map(|d| d.to_string()).collect(),
            password: String::new(),
            totp: None,
            totp_step: None,
            failures: 0,
            locked_until: None,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn each_role_reaches_only_its_areas() {
        assert!(may(Role::Admin, Area::Trace));
        assert!(may(Role::Admin, Area::Dashboard));
        assert!(
            !may(Role::Admin, Area::Archive),
            "admins never read content"
        );
        assert!(!may(Role::Admin, Area::Audit));
        assert!(!may(Role::Auditor, Area::Trace));
        assert!(may(Role::Auditor, Area::Audit));
        assert!(!may(Role::Archivist, Area::Trace));
        assert!(may(Role::Archivist, Area::Archive));
        assert_eq!(areas(Role::Auditor).collect::<Vec<_>>(), [Area::Audit]);
    }

    #[test]
    fn a_domain_admin_sees_only_mail_of_their_domains() {
        let all = user(Role::Admin, &[]);
        let mine = user(Role::Admin, &["hospital.test"]);
        assert!(sees(&all, "a@bank.test", "b@other.test"));
        assert!(sees(&mine, "nurse@hospital.test", "x@bank.test"));
        assert!(sees(&mine, "x@bank.test", "dr@Hospital.TEST"));
        assert!(sees(&mine, "x@bank.test", "dr@lab.hospital.test"));
        assert!(!sees(&mine, "x@bank.test", "y@other.test"));
        assert!(!sees(&mine, "x@evilhospital.test", "y@other.test"));
        assert!(
            !sees(&mine, "", "y@other.test"),
            "a bounce to another domain"
        );
    }
}
