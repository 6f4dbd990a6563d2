//! TLS client configuration for `wss://` connections: the system trust store plus an
//! optional extra CA, and an optional client certificate for mTLS.
//!
//! The files are read again for every connection attempt, so a rotated Kubernetes Secret
//! takes effect at the next reconnect without a restart.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};
use thiserror::Error;

use crate::agent::settings::TlsSettings;

/// A TLS file that cannot be used. Every variant names the file.
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("cannot read TLS file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid PEM in TLS file {path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("TLS file {path} contains no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("TLS file {path} contains no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoPrivateKey { path: PathBuf },
    #[error("CA certificate in {path} is not usable as a trust anchor: {reason}")]
    InvalidCaCertificate { path: PathBuf, reason: String },
    #[error(
        "the client certificate needs both a certificate file and a key file, but only the {given} file is set"
    )]
    IncompleteClientCertificate { given: &'static str },
    #[error("client certificate {cert} and key {key} cannot be used together: {reason}")]
    ClientCertificate {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
    #[error("the TLS crypto provider rejected the default protocol versions: {reason}")]
    Provider { reason: String },
    #[error("no trusted CA certificates: the system trust store is empty and no CA file is set")]
    NoTrustAnchors,
}

/// Reads and checks every configured TLS file, so that a bad path or an unparsable file
/// stops the worker at start-up instead of failing each connection attempt.
pub fn validate_tls_files(settings: &TlsSettings) -> Result<(), TlsError> {
    client_config(settings).map(|_| ())
}

/// Builds the rustls client configuration from the current contents of the TLS files.
pub fn client_config(settings: &TlsSettings) -> Result<Arc<ClientConfig>, TlsError> {
    let roots = root_store(settings.ca_file.as_deref())?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| TlsError::Provider {
            reason: error.to_string(),
        })?
        .with_root_certificates(roots);

    let config = match (&settings.cert_file, &settings.key_file) {
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => {
            return Err(TlsError::IncompleteClientCertificate {
                given: "certificate",
            });
        }
        (None, Some(_)) => return Err(TlsError::IncompleteClientCertificate { given: "key" }),
        (Some(cert), Some(key)) => {
            let chain = read_certificates(cert)?;
            let private_key = read_private_key(key)?;
            builder
                .with_client_auth_cert(chain, private_key)
                .map_err(|error| TlsError::ClientCertificate {
                    cert: cert.clone(),
                    key: key.clone(),
                    reason: error.to_string(),
                })?
        }
    };

    Ok(Arc::new(config))
}

/// Loads the system trust store and adds the certificates of `ca_file`.
fn root_store(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();

    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::warn!(error = %error, "failed to load part of the system trust store");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    if ignored > 0 {
        tracing::debug!(added, ignored, "skipped unparsable system CA certificates");
    }

    if let Some(path) = ca_file {
        for certificate in read_certificates(path)? {
            roots
                .add(certificate)
                .map_err(|error| TlsError::InvalidCaCertificate {
                    path: path.to_owned(),
                    reason: error.to_string(),
                })?;
        }
    }

    if roots.is_empty() {
        return Err(TlsError::NoTrustAnchors);
    }
    Ok(roots)
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

fn pem_error(path: &Path, error: pem::Error) -> TlsError {
    TlsError::Pem {
        path: path.to_owned(),
        reason: error.to_string(),
    }
}

/// Reads every certificate of a PEM file; a file without one is an error.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let contents = read_file(path)?;
    let certificates = CertificateDer::pem_slice_iter(&contents)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| pem_error(path, error))?;
    if certificates.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certificates)
}

/// Reads the first private key of a PEM file.
fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let contents = read_file(path)?;
    match PrivateKeyDer::from_pem_slice(&contents) {
        Ok(key) => Ok(key),
        Err(pem::Error::NoItemsFound) => Err(TlsError::NoPrivateKey {
            path: path.to_owned(),
        }),
        Err(error) => Err(pem_error(path, error)),
    }
}
