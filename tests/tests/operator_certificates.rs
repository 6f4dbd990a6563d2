//! Self-signed mTLS: the operator issues a CA and a client certificate, publishes the CA
//! bundle, and renews a short-lived certificate before it expires without restarting pods.

mod operator_support;

use cascor_operator::tls::certificate_not_after;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use k8s_openapi::api::events::v1::Event;
use kube::api::ListParams;
use operator_support::{Harness, eventually};

const POOL: &str = r#"
apiVersion: cascor.juniper.dev/v1alpha1
kind: CascorWorkerPool
metadata:
  name: secure
  namespace: ml
spec:
  replicas: 1
  server:
    url: wss://juniper-cascor.ml.svc:8200/ws/v1/workers
    tls:
      mode: selfSigned
      duration: 8s
      renewBefore: 4s
"#;

fn data(secret: &Secret, key: &str) -> String {
    let bytes = secret
        .data
        .as_ref()
        .and_then(|data| data.get(key))
        .unwrap_or_else(|| panic!("Secret has no {key}"));
    String::from_utf8(bytes.0.clone()).expect("PEM is UTF-8")
}

#[tokio::test]
async fn short_lived_certificate_is_renewed() {
    let harness = Harness::start().await;
    harness.create_pool(POOL).await;
    let secrets = harness.api::<Secret>();

    let first = eventually("the client TLS Secret", || async {
        secrets.get_opt("secure-tls").await.ok().flatten()
    })
    .await;
    let ca = secrets
        .get("secure-ca")
        .await
        .expect("the CA Secret exists");
    let bundle = harness
        .api::<ConfigMap>()
        .get("secure-ca-bundle")
        .await
        .expect("the CA bundle exists");
    let first_cert = data(&first, "tls.crt");
    let ca_cert = data(&ca, "ca.crt");
    assert_eq!(first.type_.as_deref(), Some("kubernetes.io/tls"));
    assert_eq!(
        data(&first, "ca.crt"),
        ca_cert,
        "the client Secret names its issuing CA"
    );
    assert!(
        bundle.data.unwrap()["ca.crt"].contains(&ca_cert),
        "the bundle publishes the CA"
    );
    let first_expiry = certificate_not_after(&first_cert).expect("the client certificate parses");
    let deployment_before = eventually("the Deployment", || async {
        harness
            .api::<Deployment>()
            .get_opt("secure")
            .await
            .ok()
            .flatten()
    })
    .await;

    let renewed = eventually("the client certificate to be renewed", || async {
        let secret = secrets.get_opt("secure-tls").await.ok().flatten()?;
        (data(&secret, "tls.crt") != first_cert).then_some(secret)
    })
    .await;

    let renewed_expiry =
        certificate_not_after(&data(&renewed, "tls.crt")).expect("the renewed certificate parses");
    assert!(
        renewed_expiry > first_expiry,
        "{renewed_expiry} > {first_expiry}"
    );
    assert_eq!(
        data(&renewed, "ca.crt"),
        ca_cert,
        "the CA outlives the client certificate"
    );
    let pool = eventually("the status to show the new expiry", || async {
        let pool = harness.pools().get("secure").await.ok()?;
        let expiry = pool.status.as_ref()?.certificate_expiry.clone()?;
        let expected = cascor_operator::status::rfc3339(renewed_expiry);
        (expiry >= expected).then_some(pool)
    })
    .await;
    let condition = pool
        .status
        .unwrap()
        .conditions
        .unwrap()
        .into_iter()
        .find(|c| c.type_ == "CertificateReady")
        .expect("a CertificateReady condition");
    assert_eq!(condition.status, "True");
    let events: Vec<String> = harness
        .api::<Event>()
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|event| event.reason)
        .collect();
    assert!(
        events.contains(&"CertificateRenewed".to_owned()),
        "{events:?}"
    );
    let deployment_after = harness.api::<Deployment>().get("secure").await.unwrap();
    assert_eq!(
        deployment_after.metadata.generation, deployment_before.metadata.generation,
        "renewal must not change the pod template (no restart)"
    );

    harness.stop().await;
}
