//! Certificate material of `selfSigned` pools: a CA per pool and a client certificate signed
//! by it.
//!
//! [`ensure_self_signed`] takes what the pool's Secrets hold now and returns what they must
//! hold: the existing material while it is valid, fresh material when it is missing, broken,
//! issued by another CA, or due for renewal. It talks to no API server; the controller reads
//! the Secrets before and writes them after. The only impurity is key generation.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use time::OffsetDateTime;

use crate::validate::CertificatePolicy;

/// Secret key of a certificate (PEM), as in `kubernetes.io/tls` Secrets.
pub const CERT_KEY: &str = "tls.crt";
/// Secret key of a private key (PEM).
pub const PRIVATE_KEY_KEY: &str = "tls.key";
/// Secret and ConfigMap key of a CA certificate bundle (PEM).
pub const CA_CERT_KEY: &str = "ca.crt";
/// Key of the CA's private key in the CA Secret.
pub const CA_PRIVATE_KEY_KEY: &str = "ca.key";
/// Key of the previous CA certificate in the CA Secret, kept in the published bundle until it
/// expires so that servers keep trusting certificates it signed.
pub const PREVIOUS_CA_CERT_KEY: &str = "ca-previous.crt";

/// Certificate generation or parsing failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate generation for pool {pool} failed: {source}")]
    Generate {
        pool: String,
        #[source]
        source: rcgen::Error,
    },
    #[error("certificate validity for pool {pool} is out of range: {reason}")]
    Validity { pool: String, reason: String },
}

/// A certificate with its private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedCertificate {
    pub cert_pem: String,
    pub key_pem: String,
    /// Expiry, seconds since the Unix epoch.
    pub not_after: i64,
}

/// Current contents of the pool's CA Secret and client TLS Secret.
#[derive(Debug, Clone, Default)]
pub struct ExistingMaterial {
    pub ca_cert_pem: Option<String>,
    pub ca_key_pem: Option<String>,
    pub previous_ca_cert_pem: Option<String>,
    pub client_cert_pem: Option<String>,
    pub client_key_pem: Option<String>,
    /// The CA certificate stored next to the client certificate: the CA that signed it.
    pub client_ca_cert_pem: Option<String>,
}

/// Desired contents of the pool's Secrets, and the changes that lead there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfSignedMaterial {
    pub ca: KeyedCertificate,
    /// The CA this one replaced, while it is still valid.
    pub previous_ca_cert_pem: Option<String>,
    pub client: KeyedCertificate,
    /// Seconds since the Unix epoch at which the next renewal (client or CA) is due.
    pub renew_at: i64,
    pub ca_renewed: bool,
    pub client_renewed: bool,
}

impl SelfSignedMaterial {
    /// PEM bundle a server trusts to verify worker certificates: the current CA, then the
    /// previous one while it is valid.
    pub fn ca_bundle(&self) -> String {
        let mut bundle = self.ca.cert_pem.clone();
        if let Some(previous) = &self.previous_ca_cert_pem {
            if !bundle.ends_with('\n') {
                bundle.push('\n');
            }
            bundle.push_str(previous);
        }
        bundle
    }
}

/// Identity of the pool the certificates are for.
#[derive(Debug, Clone, Copy)]
pub struct PoolIdentity<'a> {
    pub name: &'a str,
    pub namespace: &'a str,
}

impl PoolIdentity<'_> {
    fn label(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Common name of the client certificate: `<pool>.<namespace>.cascor-worker`.
    pub fn client_common_name(&self) -> String {
        format!("{}.{}.cascor-worker", self.name, self.namespace)
    }
}

/// Returns the current time in seconds since the Unix epoch.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Reads the expiry (seconds since the Unix epoch) of the first certificate in a PEM string.
pub fn certificate_not_after(cert_pem: &str) -> Option<i64> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes()).ok()?;
    let certificate = pem.parse_x509().ok()?;
    Some(certificate.validity().not_after.timestamp())
}

/// Keeps or renews the pool's CA and client certificate.
pub fn ensure_self_signed(
    existing: &ExistingMaterial,
    policy: &CertificatePolicy,
    pool: PoolIdentity<'_>,
    now: i64,
) -> Result<SelfSignedMaterial, TlsError> {
    let ca_renew_before = seconds(policy.ca_renew_before());
    let client_renew_before = seconds(policy.renew_before);

    let current_ca = usable_ca(existing).filter(|ca| now < ca.not_after - ca_renew_before);
    let (ca, ca_renewed) = match current_ca {
        Some(ca) => (ca, false),
        None => (generate_ca(pool, policy, now)?, true),
    };

    let previous_ca_cert_pem = if ca_renewed {
        existing
            .ca_cert_pem
            .clone()
            .filter(|pem| certificate_not_after(pem).is_some_and(|not_after| not_after > now))
    } else {
        existing
            .previous_ca_cert_pem
            .clone()
            .filter(|pem| certificate_not_after(pem).is_some_and(|not_after| not_after > now))
    };

    let current_client =
        usable_client(existing, &ca).filter(|client| now < client.not_after - client_renew_before);
    let (client, client_renewed) = match current_client {
        Some(client) => (client, false),
        None => (issue_client(pool, policy, &ca, now)?, true),
    };

    let renew_at = (client.not_after - client_renew_before).min(ca.not_after - ca_renew_before);
    Ok(SelfSignedMaterial {
        ca,
        previous_ca_cert_pem,
        client,
        renew_at,
        ca_renewed,
        client_renewed,
    })
}

fn seconds(duration: Duration) -> i64 {
    i64::try_from(duration.as_secs()).unwrap_or(i64::MAX / 4)
}

/// The stored CA when its certificate parses and its key loads.
fn usable_ca(existing: &ExistingMaterial) -> Option<KeyedCertificate> {
    let cert_pem = existing.ca_cert_pem.clone()?;
    let key_pem = existing.ca_key_pem.clone()?;
    let not_after = certificate_not_after(&cert_pem)?;
    let key = KeyPair::from_pem(&key_pem).ok()?;
    Issuer::from_ca_cert_pem(&cert_pem, key).ok()?;
    Some(KeyedCertificate {
        cert_pem,
        key_pem,
        not_after,
    })
}

/// The stored client certificate when it parses, its key loads and it was issued by `ca`.
fn usable_client(existing: &ExistingMaterial, ca: &KeyedCertificate) -> Option<KeyedCertificate> {
    if existing.client_ca_cert_pem.as_deref() != Some(ca.cert_pem.as_str()) {
        return None;
    }
    let cert_pem = existing.client_cert_pem.clone()?;
    let key_pem = existing.client_key_pem.clone()?;
    let not_after = certificate_not_after(&cert_pem)?;
    KeyPair::from_pem(&key_pem).ok()?;
    Some(KeyedCertificate {
        cert_pem,
        key_pem,
        not_after,
    })
}

fn timestamp(pool: PoolIdentity<'_>, unix: i64) -> Result<OffsetDateTime, TlsError> {
    OffsetDateTime::from_unix_timestamp(unix).map_err(|error| TlsError::Validity {
        pool: pool.label(),
        reason: error.to_string(),
    })
}

fn generate_ca(
    pool: PoolIdentity<'_>,
    policy: &CertificatePolicy,
    now: i64,
) -> Result<KeyedCertificate, TlsError> {
    let generate_error = |source| TlsError::Generate {
        pool: pool.label(),
        source,
    };
    let not_after = now.saturating_add(seconds(policy.ca_duration));

    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "juniper-cascor");
    name.push(
        DnType::CommonName,
        format!("cascor-worker-ca {}", pool.label()),
    );
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    // Back-dated a minute so that clocks slightly behind the operator's accept it.
    params.not_before = timestamp(pool, now - 60)?;
    params.not_after = timestamp(pool, not_after)?;

    let key = KeyPair::generate().map_err(generate_error)?;
    let certificate = params.self_signed(&key).map_err(generate_error)?;
    Ok(KeyedCertificate {
        cert_pem: certificate.pem(),
        key_pem: key.serialize_pem(),
        not_after,
    })
}

fn issue_client(
    pool: PoolIdentity<'_>,
    policy: &CertificatePolicy,
    ca: &KeyedCertificate,
    now: i64,
) -> Result<KeyedCertificate, TlsError> {
    let generate_error = |source| TlsError::Generate {
        pool: pool.label(),
        source,
    };
    // A certificate never outlives the CA that signed it.
    let not_after = now
        .saturating_add(seconds(policy.duration))
        .min(ca.not_after);

    let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(generate_error)?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, ca_key).map_err(generate_error)?;

    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "juniper-cascor");
    name.push(DnType::CommonName, pool.client_common_name());
    params.distinguished_name = name;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = timestamp(pool, now - 60)?;
    params.not_after = timestamp(pool, not_after)?;

    let key = KeyPair::generate().map_err(generate_error)?;
    let certificate = params.signed_by(&key, &issuer).map_err(generate_error)?;
    Ok(KeyedCertificate {
        cert_pem: certificate.pem(),
        key_pem: key.serialize_pem(),
        not_after,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const POOL: PoolIdentity<'static> = PoolIdentity {
        name: "spirals",
        namespace: "ml",
    };

    fn policy(duration: u64, renew_before: u64, ca_duration: u64) -> CertificatePolicy {
        CertificatePolicy {
            duration: Duration::from_secs(duration),
            renew_before: Duration::from_secs(renew_before),
            ca_duration: Duration::from_secs(ca_duration),
        }
    }

    fn stored(material: &SelfSignedMaterial) -> ExistingMaterial {
        ExistingMaterial {
            ca_cert_pem: Some(material.ca.cert_pem.clone()),
            ca_key_pem: Some(material.ca.key_pem.clone()),
            previous_ca_cert_pem: material.previous_ca_cert_pem.clone(),
            client_cert_pem: Some(material.client.cert_pem.clone()),
            client_key_pem: Some(material.client.key_pem.clone()),
            client_ca_cert_pem: Some(material.ca.cert_pem.clone()),
        }
    }

    #[test]
    fn first_run_issues_ca_and_client() {
        let now = 1_800_000_000;
        let material = ensure_self_signed(
            &ExistingMaterial::default(),
            &policy(3600, 1200, 36000),
            POOL,
            now,
        )
        .unwrap();

        assert!(material.ca_renewed);
        assert!(material.client_renewed);
        assert_eq!(material.client.not_after, now + 3600);
        assert_eq!(
            certificate_not_after(&material.client.cert_pem),
            Some(now + 3600)
        );
        assert_eq!(
            certificate_not_after(&material.ca.cert_pem),
            Some(now + 36000)
        );
        assert_eq!(material.renew_at, now + 2400);
        assert_eq!(material.previous_ca_cert_pem, None);
    }

    #[test]
    fn valid_material_is_kept() {
        let now = 1_800_000_000;
        let policy = policy(3600, 1200, 36000);
        let first = ensure_self_signed(&ExistingMaterial::default(), &policy, POOL, now).unwrap();

        let second = ensure_self_signed(&stored(&first), &policy, POOL, now + 100).unwrap();

        assert!(!second.ca_renewed);
        assert!(!second.client_renewed);
        assert_eq!(second.client, first.client);
        assert_eq!(second.ca, first.ca);
    }

    #[test]
    fn client_renews_inside_renew_window() {
        let now = 1_800_000_000;
        let policy = policy(3600, 1200, 36000);
        let first = ensure_self_signed(&ExistingMaterial::default(), &policy, POOL, now).unwrap();

        let later = first.renew_at;
        let second = ensure_self_signed(&stored(&first), &policy, POOL, later).unwrap();

        assert!(second.client_renewed);
        assert!(!second.ca_renewed);
        assert_ne!(second.client.cert_pem, first.client.cert_pem);
        assert_eq!(second.client.not_after, later + 3600);
        assert_eq!(second.ca, first.ca);
    }

    #[test]
    fn ca_rotation_keeps_previous_in_bundle() {
        let now = 1_800_000_000;
        let policy = policy(60, 20, 300);
        let first = ensure_self_signed(&ExistingMaterial::default(), &policy, POOL, now).unwrap();

        // The CA renews a third of its lifetime before expiry: at now + 200.
        let second = ensure_self_signed(&stored(&first), &policy, POOL, now + 200).unwrap();

        assert!(second.ca_renewed);
        assert!(
            second.client_renewed,
            "a new CA must re-issue the client certificate"
        );
        assert_eq!(
            second.previous_ca_cert_pem.as_deref(),
            Some(first.ca.cert_pem.as_str())
        );
        assert!(second.ca_bundle().contains(&first.ca.cert_pem));
        assert!(second.ca_bundle().contains(&second.ca.cert_pem));
    }

    #[test]
    fn client_from_other_ca_is_replaced() {
        let now = 1_800_000_000;
        let policy = policy(3600, 1200, 36000);
        let first = ensure_self_signed(&ExistingMaterial::default(), &policy, POOL, now).unwrap();
        let other = ensure_self_signed(&ExistingMaterial::default(), &policy, POOL, now).unwrap();
        let mut mixed = stored(&first);
        mixed.client_cert_pem = Some(other.client.cert_pem.clone());
        mixed.client_ca_cert_pem = Some(other.ca.cert_pem.clone());

        let result = ensure_self_signed(&mixed, &policy, POOL, now).unwrap();

        assert!(!result.ca_renewed);
        assert!(result.client_renewed);
    }

    #[test]
    fn garbage_material_is_regenerated() {
        let existing = ExistingMaterial {
            ca_cert_pem: Some("not a certificate".into()),
            ca_key_pem: Some("not a key".into()),
            ..ExistingMaterial::default()
        };

        let material =
            ensure_self_signed(&existing, &policy(3600, 1200, 36000), POOL, 1_800_000_000).unwrap();

        assert!(material.ca_renewed);
        assert!(
            material
                .ca
                .cert_pem
                .starts_with("-----BEGIN CERTIFICATE-----")
        );
    }
}
