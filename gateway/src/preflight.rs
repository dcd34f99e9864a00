//! Checks of the files a configuration names that only the stages can
//! read: the recipients list, DKIM keys, extra trust roots. `check-config`
//! and every command that loads the configuration run them with its own
//! checks (`config::load_file_checked`), so a bad file is named before
//! anything starts. On the top floor, since it calls into the stages.

use crate::config::Config;

/// Problems with the files `c` names, as `(field path, reason)` pairs.
pub fn files(c: &Config) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Some(f) = &c.server.recipients_file {
        if let Err(e) = crate::smtp::recipients::RecipientList::load(f) {
            out.push(("server.recipients_file".into(), e.to_string()));
        }
    }
    for (i, k) in c.dkim.iter().enumerate() {
        if let Err(e) = crate::deliver::dkim::load_key(&k.key_file, k.algorithm) {
            out.push((format!("dkim[{i}].key_file"), e.to_string()));
        }
    }
    if let Some(f) = &c.tls.extra_roots_file {
        if let Err(e) = crate::net::tls::trust_roots(Some(f)) {
            out.push(("tls.extra_roots_file".into(), e.to_string()));
        }
    }
    out
}
