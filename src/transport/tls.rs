//! TLS for the servers (`--tls`): the certificate, and the acceptor made from it.
//!
//! Invariant: a server's certificate stays the same across restarts until someone renews
//! it, because clients that trust on first use remember its fingerprint. The generated one
//! lives in `<data dir>/netlab/tls/` (key 0600 in a 0700 directory, refused once others
//! can read it); a given one is checked at start-up (the PEM, the key matching it, its
//! dates), so that a server never runs with a certificate no client will accept.

use std::fs;
use std::io::ErrorKind;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

use crate::private_file;

/// A certificate chain and its key: what a TLS server presents.
pub struct Identity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    /// The SHA-256 fingerprint of the server's own certificate, `sha256:` and 64 hex
    /// digits: what clients that trust on first use remember.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.chain[0])
    }

    /// The certificate and key given by `--tls-cert` and `--tls-key`.
    pub fn from_files(cert: &Path, key: &Path) -> anyhow::Result<Identity> {
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| pem_error(cert, "certificate", e))?;
        if chain.is_empty() {
            bail!("{} holds no PEM certificate", cert.display());
        }
        check_dates(&chain[0], cert)?;
        private_file::refuse_exposed("the TLS key", [key])?;
        let key_der =
            PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, "private key", e))?;
        let identity = Identity {
            chain,
            key: key_der,
        };
        // Built once here so that a key that does not match fails at start-up.
        identity.server_config().with_context(|| {
            format!(
                "the key {} does not go with the certificate {}",
                key.display(),
                cert.display()
            )
        })?;
        Ok(identity)
    }

    /// The self-signed certificate in `dir`, made on first use for `host` (when it names
    /// one address) and the loopback names.
    pub fn generated(dir: &Path, host: &str) -> anyhow::Result<Identity> {
        let (cert, key) = generated_paths(dir);
        private_file::refuse_exposed("the TLS key", [key.as_path()])?;
        match (fs::read(&cert), fs::read(&key)) {
            (Ok(cert_pem), Ok(key_pem)) => {
                let chain = CertificateDer::pem_slice_iter(&cert_pem)
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| pem_error(&cert, "certificate", e))?;
                let key_der = PrivateKeyDer::from_pem_slice(&key_pem)
                    .map_err(|e| pem_error(&key, "private key", e))?;
                if chain.is_empty() {
                    bail!(
                        "{} holds no certificate; netlab tls renew makes a new one",
                        cert.display()
                    );
                }
                Ok(Identity {
                    chain,
                    key: key_der,
                })
            }
            (Err(e), _) | (_, Err(e)) if e.kind() != ErrorKind::NotFound => Err(e)
                .with_context(|| format!("could not read the certificate in {}", dir.display())),
            _ => Identity::renew(dir, host),
        }
    }

    /// A new self-signed certificate in `dir`, replacing any other.
    pub fn renew(dir: &Path, host: &str) -> anyhow::Result<Identity> {
        let made = rcgen::generate_simple_self_signed(names_for(host))
            .context("could not make a certificate")?;
        let (cert, key) = generated_paths(dir);
        // The key first: a certificate is never on disk without its key.
        private_file::replace(&key, made.signing_key.serialize_pem().as_bytes())?;
        private_file::replace(&cert, made.cert.pem().as_bytes())?;
        Ok(Identity {
            chain: vec![made.cert.der().clone()],
            key: PrivateKeyDer::try_from(made.signing_key.serialize_der())
                .map_err(|e| anyhow::anyhow!("the new key: {e}"))?,
        })
    }

    /// The acceptor for `--tls`: TLS 1.3 and 1.2, ring's cipher suites.
    pub fn acceptor(&self) -> anyhow::Result<TlsAcceptor> {
        Ok(TlsAcceptor::from(Arc::new(self.server_config()?)))
    }

    fn server_config(&self) -> anyhow::Result<ServerConfig> {
        Ok(
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert(self.chain.clone(), self.key.clone_key())?,
        )
    }
}

/// Where the generated certificate is kept: `<data dir>/netlab/tls`.
pub fn default_dir() -> anyhow::Result<PathBuf> {
    let Some(data) = dirs::data_dir() else {
        bail!("no data directory for this user (is HOME set?); give --tls-cert and --tls-key");
    };
    Ok(data.join("netlab").join("tls"))
}

fn generated_paths(dir: &Path) -> (PathBuf, PathBuf) {
    (dir.join("cert.pem"), dir.join("key.pem"))
}

/// `sha256:` and the hex SHA-256 of a DER certificate.
pub fn fingerprint(der: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(der)))
}

/// The names a generated certificate is for: the loopback names, and the address the
/// server listens on when it is one address (not 0.0.0.0 or ::).
fn names_for(host: &str) -> Vec<String> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1"].map(String::from).into();
    let unspecified = host.parse::<IpAddr>().is_ok_and(|ip| ip.is_unspecified());
    if !unspecified && !names.iter().any(|n| n == host) {
        names.push(host.to_owned());
    }
    names
}

fn pem_error(path: &Path, what: &str, e: rustls::pki_types::pem::Error) -> anyhow::Error {
    match e {
        rustls::pki_types::pem::Error::Io(e) => {
            anyhow::anyhow!("could not read {}: {e}", path.display())
        }
        rustls::pki_types::pem::Error::NoItemsFound => {
            anyhow::anyhow!("{} holds no PEM {what}", path.display())
        }
        e => anyhow::anyhow!("{} is not a PEM {what}: {e}", path.display()),
    }
}

/// Fails for a certificate that is expired or not valid yet.
fn check_dates(cert: &CertificateDer<'_>, path: &Path) -> anyhow::Result<()> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| anyhow::anyhow!("{} is not an X.509 certificate: {e}", path.display()))?;
    let validity = parsed.validity();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if validity.not_after.timestamp() < now {
        bail!(
            "the certificate {} expired on {}",
            path.display(),
            validity.not_after
        );
    }
    if validity.not_before.timestamp() > now {
        bail!(
            "the certificate {} is not valid before {}",
            path.display(),
            validity.not_before
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_generated_certificate_is_kept_and_reused_until_renewed() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        let first = Identity::generated(&tls, "127.0.0.1")
            .unwrap()
            .fingerprint();
        assert!(
            first.starts_with("sha256:") && first.len() == 7 + 64,
            "{first}"
        );
        let again = Identity::generated(&tls, "127.0.0.1")
            .unwrap()
            .fingerprint();
        assert_eq!(first, again);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&tls), 0o700);
        assert_eq!(mode(&tls.join("key.pem")), 0o600);
        let renewed = Identity::renew(&tls, "127.0.0.1").unwrap().fingerprint();
        assert_ne!(renewed, first);
        assert_eq!(
            Identity::generated(&tls, "127.0.0.1")
                .unwrap()
                .fingerprint(),
            renewed
        );
        Identity::generated(&tls, "127.0.0.1")
            .unwrap()
            .acceptor()
            .unwrap();
    }

    #[test]
    fn names_are_the_loopback_ones_and_the_listening_address() {
        assert_eq!(names_for("127.0.0.1"), ["localhost", "127.0.0.1", "::1"]);
        assert_eq!(names_for("0.0.0.0"), ["localhost", "127.0.0.1", "::1"]);
        assert_eq!(
            names_for("192.0.2.7"),
            ["localhost", "127.0.0.1", "::1", "192.0.2.7"]
        );
    }
}
