//! Which server certificates `netlab connect --tls` accepts.
//!
//! Invariant: nothing is sent to a server before its certificate is accepted: by a CA
//! (`--tls-ca`, checked by rustls as a browser would, name included), by an explicit pin
//! (`--tls-pin`), or by trust on first use as OpenSSH's `StrictHostKeyChecking
//! accept-new`: the first certificate seen for HOST:PORT is recorded in `known_hosts`,
//! and a different one later is refused, naming both fingerprints and the line to delete.
//!
//! Format of `known_hosts`: one line per server, `HOST:PORT sha256:HEX`, as typed (so
//! `localhost:9090` and `127.0.0.1:9090` are two entries, as in ssh).

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{self, CryptoProvider};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::rustls::{
    self, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use crate::private_file;
use crate::transport::tls::fingerprint;

/// How the server's certificate is judged.
#[derive(Clone, Debug)]
pub enum Trust {
    /// Signed by one of these CAs, for the name connected to.
    Ca(PathBuf),
    /// Exactly this certificate: `sha256:HEX`.
    Pin(String),
    /// The one recorded in this `known_hosts` file, or, the first time, whichever comes.
    FirstUse(PathBuf),
}

impl Trust {
    /// The rustls settings: a CA's verifier, or one that checks the handshake's
    /// signatures and leaves the certificate to [`Trust::accept`].
    pub fn client_config(&self) -> anyhow::Result<ClientConfig> {
        let provider = Arc::new(crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let config = match self {
            Trust::Ca(path) => {
                let mut roots = RootCertStore::empty();
                let certs = CertificateDer::pem_file_iter(path)
                    .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| {
                        anyhow::anyhow!("could not read the CA file {}: {e}", path.display())
                    })?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    bail!("{} holds no usable CA certificate", path.display());
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            Trust::Pin(_) | Trust::FirstUse(_) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SignaturesOnly(provider)))
                .with_no_client_auth(),
        };
        Ok(config)
    }

    /// After the handshake, before anything is sent: whether `cert`, presented by
    /// `target` (HOST:PORT as typed), is the one to trust. Says on stderr when it
    /// records a new server.
    pub fn accept(&self, target: &str, cert: &[u8]) -> anyhow::Result<()> {
        let seen = fingerprint(cert);
        match self {
            Trust::Ca(_) => Ok(()),
            Trust::Pin(pin) if pin.eq_ignore_ascii_case(&seen) => Ok(()),
            Trust::Pin(pin) => bail!(
                "the certificate of {target} is {seen}, not the pinned {pin}; nothing was sent"
            ),
            Trust::FirstUse(path) => {
                let known = KnownHosts::read(path)?;
                match known.find(target) {
                    Some((_, recorded)) if recorded.eq_ignore_ascii_case(&seen) => Ok(()),
                    Some((line, recorded)) => bail!(
                        "THE CERTIFICATE OF {target} HAS CHANGED: it was {recorded}, it is now \
                         {seen}. Someone may be impersonating the server, or its certificate \
                         was renewed; nothing was sent. If the change is expected, delete line \
                         {line} of {}",
                        path.display()
                    ),
                    None => {
                        known.add(path, target, &seen)?;
                        eprintln!(
                            "netlab: first TLS connection to {target}: its certificate {seen} \
                             is now trusted (recorded in {})",
                            path.display()
                        );
                        Ok(())
                    }
                }
            }
        }
    }
}

/// For `netlab bench --tls`, which loads one's own servers: the handshake in full, the
/// certificate not judged. Without `resume`, every handshake is a full one.
pub fn unjudged(resume: bool) -> anyhow::Result<ClientConfig> {
    let provider = Arc::new(crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SignaturesOnly(provider)))
        .with_no_client_auth();
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(config)
}

/// `<state dir>/netlab/known_hosts`, beside the session tokens.
pub fn default_known_hosts() -> anyhow::Result<PathBuf> {
    let Some(dir) = dirs::state_dir().or_else(dirs::config_dir) else {
        bail!("no state directory for this user (is HOME set?); give --known-hosts");
    };
    Ok(dir.join("netlab").join("known_hosts"))
}

/// A `sha256:` and 64 hex digits, as `--tls-pin` takes it.
pub fn parse_pin(s: &str) -> Result<String, String> {
    let hex = s.strip_prefix("sha256:").unwrap_or("");
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!(
            "{s:?} is not a fingerprint: sha256: and 64 hex digits, as `netlab tls fingerprint` prints"
        ))
    }
}

struct KnownHosts {
    text: String,
}

impl KnownHosts {
    fn read(path: &Path) -> anyhow::Result<KnownHosts> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("could not read {}", path.display())),
        };
        // Whoever can write it can make netlab trust any server.
        private_file::refuse_exposed("the known_hosts file", [path])?;
        Ok(KnownHosts { text })
    }

    /// The line number and fingerprint recorded for `target`.
    fn find(&self, target: &str) -> Option<(usize, &str)> {
        self.text.lines().enumerate().find_map(|(i, line)| {
            let (host, fp) = line.trim().split_once(' ')?;
            (host == target).then(|| (i + 1, fp.trim()))
        })
    }

    fn add(mut self, path: &Path, target: &str, fingerprint: &str) -> anyhow::Result<()> {
        if !self.text.is_empty() && !self.text.ends_with('\n') {
            self.text.push('\n');
        }
        self.text.push_str(&format!("{target} {fingerprint}\n"));
        private_file::replace(path, self.text.as_bytes())
    }
}

/// Checks that the server holds the key of the certificate it presents (the handshake's
/// signatures), and accepts the certificate itself for [`Trust::accept`] to judge.
#[derive(Debug)]
struct SignaturesOnly(Arc<CryptoProvider>);

impl ServerCertVerifier for SignaturesOnly {
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
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_use_records_then_compares() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("netlab").join("known_hosts");
        let trust = Trust::FirstUse(path.clone());
        trust.accept("127.0.0.1:9090", b"first").unwrap();
        trust.accept("127.0.0.1:9090", b"first").unwrap();
        trust.accept("localhost:9090", b"other").unwrap();
        let err = trust
            .accept("127.0.0.1:9090", b"second")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&fingerprint(b"first")) && err.contains(&fingerprint(b"second")),
            "{err}"
        );
        assert!(
            err.contains(&format!("delete line 1 of {}", path.display())),
            "{err}"
        );
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!(
                "127.0.0.1:9090 {}\nlocalhost:9090 {}\n",
                fingerprint(b"first"),
                fingerprint(b"other")
            )
        );
    }

    #[test]
    fn pins_are_exact() {
        let pin = parse_pin(
            &fingerprint(b"cert")
                .to_uppercase()
                .replace("SHA256", "sha256"),
        )
        .unwrap();
        Trust::Pin(pin.clone()).accept("h:1", b"cert").unwrap();
        assert!(Trust::Pin(pin).accept("h:1", b"other").is_err());
        assert!(parse_pin("sha256:abc").is_err());
        assert!(parse_pin(&fingerprint(b"x").replace("sha256:", "md5:")).is_err());
    }
}
