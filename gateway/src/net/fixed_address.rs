//! A ureq resolver that answers every name with one address we chose, so a
//! URL can carry the name a certificate is checked for while DNS (the
//! system's, or ureq's) decides nothing about the peer. The HTTPS GET uses
//! it with the address our own resolver found; the CLI's admin client with
//! the admin listener's address.

use std::net::SocketAddr;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// Resolves every name to the one address it holds.
#[derive(Debug, Clone, Copy)]
pub struct FixedAddress(pub SocketAddr);

impl Resolver for FixedAddress {
    fn resolve(
        &self,
        _uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let mut addrs = self.empty();
        addrs.push(self.0);
        Ok(addrs)
    }
}
