//! The real crypto peers the tests open sealed mail with: gpg in a
//! throw-away home, and openssl.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// A throw-away GNUPGHOME with one key pair; its agent is stopped on drop.
pub struct Gpg {
    /// The home directory.
    pub home: tempfile::TempDir,
}

impl Gpg {
    /// A new home with a key pair for `uid` (gpg's default algorithms, no expiry).
    pub fn new(uid: &str) -> Gpg {
        use std::os::unix::fs::PermissionsExt;
        let home = tempfile::Builder::new().prefix("sg-gpg").tempdir().unwrap();
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let g = Gpg { home };
        g.ok(
            &["--quick-gen-key", uid, "default", "default", "never"],
            None,
        );
        g
    }

    /// Runs gpg with `args` (and `stdin`); panics with its stderr if it fails.
    pub fn ok(&self, args: &[&str], stdin: Option<&[u8]>) -> Vec<u8> {
        let mut child = Command::new("gpg")
            .env("GNUPGHOME", self.home.path())
            .args(["--batch", "--no-tty", "--pinentry-mode", "loopback"])
            .args(["--passphrase", ""])
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gpg is not installed (scripts/install-deps test)");
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "gpg {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The fingerprint of the key for `email` (upper-case hex).
    pub fn fingerprint(&self, email: &str) -> String {
        String::from_utf8_lossy(&self.ok(&["--with-colons", "--fingerprint", email], None))
            .lines()
            .find(|l| l.starts_with("fpr:"))
            .and_then(|l| l.split(':').nth(9).map(String::from))
            .expect("a fingerprint")
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf")
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .output();
    }
}

/// Runs openssl in `dir`; panics with its stderr if it fails.
pub fn openssl(dir: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl is not installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Base64 of `data`, in one line.
pub fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Base64 of `data` in MIME lines of 76 characters, each ending in CRLF.
pub fn base64_lines(data: &[u8]) -> String {
    base64(data)
        .as_bytes()
        .chunks(76)
        .map(|l| format!("{}\r\n", String::from_utf8_lossy(l)))
        .collect()
}

/// A DKIM key made with openssl: the PEM private key in `dir` and the TXT
/// record's value. RSA keys publish the DER SubjectPublicKeyInfo, Ed25519
/// keys the raw 32-byte public key (RFC 8463).
pub fn dkim_key(dir: &Path, name: &str, ed25519: bool) -> (std::path::PathBuf, String) {
    let pem = format!("{name}.pem");
    let der = format!("{name}.pub.der");
    if ed25519 {
        openssl(dir, &["genpkey", "-algorithm", "ed25519", "-out", &pem]);
    } else {
        openssl(
            dir,
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                &pem,
            ],
        );
    }
    openssl(
        dir,
        &[
            "pkey", "-in", &pem, "-pubout", "-outform", "DER", "-out", &der,
        ],
    );
    let raw = dir.join(format!("{name}.pub.raw"));
    let spki = std::fs::read(dir.join(&der)).unwrap();
    std::fs::write(
        &raw,
        if ed25519 {
            &spki[spki.len() - 32..]
        } else {
            &spki[..]
        },
    )
    .unwrap();
    let b64 = String::from_utf8_lossy(&openssl(
        dir,
        &["base64", "-A", "-in", raw.to_str().unwrap()],
    ))
    .into_owned();
    let k = if ed25519 { "ed25519" } else { "rsa" };
    (dir.join(pem), format!("v=DKIM1; k={k}; p={}", b64.trim()))
}
