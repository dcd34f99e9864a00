//! rustls client configurations for outbound STARTTLS: one that encrypts
//! without authenticating (levels `may`, `encrypt`, `exclusive`), and one
//! that checks the chain and host name against trusted roots (`verify`).
//! Both use the same protocol versions and suites as the listeners
//! ([`crate::net::tls::provider`]).

use crate::net::tls::provider;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// Accepts any certificate, as opportunistic SMTP TLS must (RFC 7435: most
/// MX hosts present certificates that would not verify, and refusing them
/// would mean sending in clear instead). The handshake signature is still
/// checked, so the session keys are bound to the presented certificate and
/// its SHA-256 in the delivery evidence means something.
#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// TLS 1.2+ with forward-secret AEAD suites that accepts any server
/// certificate (handshake signatures still verified): for `may`, `encrypt`
/// and `exclusive`.
pub fn opportunistic_config() -> Arc<ClientConfig> {
    let provider = provider();
    let config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(VERSIONS)
        // The provider has TLS 1.2 and 1.3 suites, so this cannot fail.
        .expect("provider supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate { provider }))
        .with_no_client_auth();
    Arc::new(config)
}

/// TLS 1.2+ with forward-secret AEAD suites, the chain verified against
/// `roots` and the certificate required to name the server (the
/// `ServerName` passed to `starttls`): for `verify`.
pub fn verifying_config(roots: Arc<RootCertStore>) -> Arc<ClientConfig> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .expect("provider supports TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configs_build() {
        let c = opportunistic_config();
        assert!(c.alpn_protocols.is_empty());
        let made = rcgen::generate_simple_self_signed(vec!["ca.test".into()]).unwrap();
        let mut roots = RootCertStore::empty();
        roots.add(made.cert.der().clone()).unwrap();
        verifying_config(Arc::new(roots));
    }
}
