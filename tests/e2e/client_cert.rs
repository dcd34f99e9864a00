//! A connector recognised by its TLS client certificate (how an M365
//! outbound connector is pinned): certificates are made with openssl, swaks
//! presents them over STARTTLS.

use sealgate_e2e::{queued_id, swaks, Gateway};
use std::path::Path;
use std::process::Command;

fn openssl(dir: &Path, args: &[&str]) {
    let o = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl is installed");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A CA and a client certificate for `name` signed by it; returns the CA path.
fn make_certs(dir: &Path, name: &str) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=Test Tenant CA",
    ];
    ca.extend(ec);
    ca.extend([
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ]);
    openssl(dir, &ca);
    let subj = format!("/CN={name}");
    let mut csr = vec![
        "req",
        "-keyout",
        "client.key",
        "-out",
        "client.csr",
        "-subj",
        &subj,
    ];
    csr.extend(ec);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        format!(
            "subjectAltName=DNS:{name}\nextendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n"
        ),
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "client.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
    // A look-alike certificate for the same name from a CA nobody trusts.
    let mut rogue = vec![
        "req",
        "-x509",
        "-keyout",
        "rogue.key",
        "-out",
        "rogue.pem",
        "-days",
        "2",
        "-subj",
        &subj,
    ];
    rogue.extend(ec);
    openssl(dir, &rogue);
}

/// swaks over STARTTLS, presenting `cert` (certificate, key) if given.
fn send(server: &str, to: &str, cert: Option<(&Path, &Path)>) -> std::process::Output {
    let mut args = vec!["--server", server, "--to", to, "-tls"];
    if let Some((c, k)) = cert {
        args.extend([
            "--tls-cert",
            c.to_str().unwrap(),
            "--tls-key",
            k.to_str().unwrap(),
        ]);
    }
    swaks(&args)
}

#[test]
fn connector_by_client_certificate() {
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path(), "relay.tenant.test");
    let ca = certs.path().join("ca.pem");
    let g = Gateway::start(&format!(
        "[tls]\nclient_ca_file = \"{}\"\n\n[[connector]]\nname = \"tenant-cert\"\ntls_client_names = [\"*.tenant.test\"]\n",
        ca.display()
    ));
    let server = format!("127.0.0.1:{}", g.smtp);
    let cert = certs.path().join("client.pem");
    let key = certs.path().join("client.key");

    // Without a certificate, loopback is just the internet: no relaying.
    let o = send(&server, "someone@example.com", None);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(text.contains("550 5.7.1"), "{text}");

    // With the trusted certificate: outbound through the connector.
    let o = send(&server, "someone@example.com", Some((&cert, &key)));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{text}\n{}", g.log());
    let id = queued_id(&text).unwrap();
    let m: serde_json::Value =
        serde_json::from_slice(&g.cli(&["queue", "show", &id, "--json"]).stdout).unwrap();
    assert_eq!(m["origin"]["connector"], "tenant-cert");
    assert_eq!(m["origin"]["direction"], "outbound");
    assert!(
        m["origin"]["tls"]["client_names"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n == "relay.tenant.test"),
        "{m:#}"
    );

    // A certificate with the right name from an untrusted CA completes the
    // handshake (ordinary MTAs present self-signed certificates) but matches
    // no connector, so it cannot relay.
    let rogue = certs.path().join("rogue.pem");
    let rogue_key = certs.path().join("rogue.key");
    let o = send(&server, "someone@example.com", Some((&rogue, &rogue_key)));
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(text.contains("550 5.7.1"), "{text}");
    let o = send(&server, "doctor@hospital.test", Some((&rogue, &rogue_key)));
    assert!(
        o.status.success(),
        "inbound TLS with a self-signed client certificate must work: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    let q = g.queue();
    assert_eq!(q.len(), 2);
    assert!(q
        .iter()
        .any(|m| m["direction"] == "inbound" && m["connector"].is_null()));
}
