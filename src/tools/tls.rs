//! `netlab tls fingerprint|renew`: the certificate a `--tls` server presents.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::pki_types::pem::PemObject;

use crate::transport::tls::{self, Identity};

#[derive(Debug, Subcommand)]
pub enum TlsAction {
    /// Print the SHA-256 fingerprint of the certificate `serve --tls` presents (the
    /// generated one, made now if it does not exist yet), for `connect --tls-pin` or to
    /// check what a client recorded.
    Fingerprint {
        /// A certificate given to the server with --tls-cert, instead of the generated one.
        #[arg(long, env = "NETLAB_TLS_CERT", value_name = "PATH")]
        tls_cert: Option<PathBuf>,
    },
    /// Replace the generated certificate. Clients that trusted the old one on first use
    /// will refuse the new one until its line is deleted from their known_hosts.
    Renew {
        /// The address the server listens on, named in the certificate besides localhost.
        #[arg(long, env = "NETLAB_HOST", default_value = "127.0.0.1")]
        host: String,
    },
}

pub fn run(action: TlsAction, out: &mut impl Write) -> anyhow::Result<()> {
    crate::process::restrict_new_files();
    match action {
        TlsAction::Fingerprint {
            tls_cert: Some(path),
        } => {
            let cert = CertificateDer::from_pem_file(&path)
                .with_context(|| format!("{} holds no PEM certificate", path.display()))?;
            writeln!(out, "{}", tls::fingerprint(&cert))?;
        }
        TlsAction::Fingerprint { tls_cert: None } => {
            let identity = Identity::generated(&tls::default_dir()?, "127.0.0.1")?;
            writeln!(out, "{}", identity.fingerprint())?;
        }
        TlsAction::Renew { host } => {
            let dir = tls::default_dir()?;
            let identity = Identity::renew(&dir, &host)?;
            writeln!(
                out,
                "new certificate {} in {}; restart the servers that use it",
                identity.fingerprint(),
                dir.display()
            )?;
        }
    }
    Ok(())
}
