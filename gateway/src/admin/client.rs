//! The `sealgate` commands' client for a running gateway's admin API:
//! plain HTTP on loopback, or HTTPS that trusts only `admin.ca_file` (else
//! the admin listener's own certificates) and connects to `admin.address`
//! whatever DNS says of the certificate's name.

use crate::config::Config;
use crate::net::fixed_address::FixedAddress;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
use ureq::unversioned::transport::DefaultConnector;

/// Why no client could be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The admin certificate, which the client trusts, does not load.
    #[error("admin certificate {path}: {reason}")]
    Certificate {
        /// The certificate file.
        path: String,
        /// What was wrong.
        reason: String,
    },
    /// The admin token file cannot be read.
    #[error(transparent)]
    Token(#[from] crate::secret_file::SecretFileError),
}

/// A client for one gateway's admin API, with its bearer token.
pub struct ApiClient {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

impl ApiClient {
    /// A client for the gateway `config` describes, sending `token`.
    pub fn new(config: &Config, token: &str) -> Result<Self, ClientError> {
        let target = connect_address(config.admin.address);
        let auth = format!("Bearer {}", token.trim());
        if !config.admin.tls {
            return Ok(ApiClient {
                agent: ureq::Agent::new_with_defaults(),
                base: format!("http://{target}"),
                auth,
            });
        }
        let cert = match &config.admin.ca_file {
            Some(ca) => ca.clone(),
            None => {
                crate::net::tls::https_pair(config, &config.admin.cert_file, &config.admin.key_file)
                    .map_err(|e| ClientError::Certificate {
                        path: "admin.cert_file".into(),
                        reason: e.to_string(),
                    })?
                    .0
            }
        };
        let bad = |reason: String| ClientError::Certificate {
            path: cert.display().to_string(),
            reason,
        };
        let roots: Vec<Certificate<'static>> = CertificateDer::pem_file_iter(&cert)
            .map_err(|e| bad(e.to_string()))?
            .map(|c| c.map(|c| Certificate::from_der(c.as_ref()).to_owned()))
            .collect::<Result<_, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if roots.is_empty() {
            return Err(bad("no certificate in the file".into()));
        }
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::Specific(Arc::new(roots)))
            .unversioned_rustls_crypto_provider(crate::net::tls::provider())
            .build();
        let agent_config = ureq::Agent::config_builder().tls_config(tls).build();
        Ok(ApiClient {
            agent: ureq::Agent::with_parts(
                agent_config,
                DefaultConnector::new(),
                FixedAddress(target),
            ),
            base: format!("https://{}:{}", config.admin_server_name(), target.port()),
            auth,
        })
    }

    /// A client reading the token from `config`'s admin token file.
    pub fn from_token_file(config: &Config) -> Result<Self, ClientError> {
        let token = crate::secret_file::read(&config.admin_token_file())?;
        Self::new(config, &token)
    }

    /// `GET path` with the token; HTTP error statuses are answers, not errors.
    pub fn get(&self, path: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
            .config()
            .http_status_as_error(false)
            .build()
    }

    /// `POST path` with the token.
    pub fn post(&self, path: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        self.agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
            .config()
            .http_status_as_error(false)
            .build()
    }

    /// `DELETE path` with the token.
    pub fn delete(&self, path: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.agent
            .delete(format!("{}{path}", self.base))
            .header("Authorization", &self.auth)
            .config()
            .http_status_as_error(false)
            .build()
    }
}

/// Where a client on this host reaches a listener bound to `bound`: a
/// wildcard address is reached on loopback.
fn connect_address(bound: SocketAddr) -> SocketAddr {
    let ip = match bound.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, bound.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_listeners_are_reached_on_loopback() {
        assert_eq!(
            connect_address("0.0.0.0:9025".parse().unwrap()),
            "127.0.0.1:9025".parse().unwrap()
        );
        assert_eq!(
            connect_address("[::]:9025".parse().unwrap()),
            "[::1]:9025".parse().unwrap()
        );
        assert_eq!(
            connect_address("10.1.2.3:9025".parse().unwrap()),
            "10.1.2.3:9025".parse().unwrap()
        );
    }
}
