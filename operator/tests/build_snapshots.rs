//! The children built for each valid fixture, compared with checked-in YAML snapshots.
//!
//! Rewrite the snapshots after an intended change with
//! `UPDATE_SNAPSHOTS=1 cargo test -p cascor-operator --test build_snapshots`.

mod support;

use std::path::Path;

use cascor_operator::children::{
    BuildInputs, Child, ClusterCapabilities, HASH_ANNOTATION, build_children,
};
use cascor_operator::tls::{KeyedCertificate, SelfSignedMaterial};
use cascor_operator::validate::validate;

/// Stand-in certificate material, so that the snapshots do not change with random keys.
fn fixture_material() -> SelfSignedMaterial {
    let pem = |label: &str, body: &str| {
        format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n")
    };
    SelfSignedMaterial {
        ca: KeyedCertificate {
            cert_pem: pem("CERTIFICATE", "fixture-ca-certificate"),
            key_pem: pem("PRIVATE KEY", "fixture-ca-key"),
            not_after: 2_000_000_000,
        },
        previous_ca_cert_pem: Some(pem("CERTIFICATE", "fixture-previous-ca-certificate")),
        client: KeyedCertificate {
            cert_pem: pem("CERTIFICATE", "fixture-client-certificate"),
            key_pem: pem("PRIVATE KEY", "fixture-client-key"),
            not_after: 1_900_000_000,
        },
        renew_at: 1_899_971_200,
        ca_renewed: false,
        client_renewed: false,
    }
}

fn render(children: &[Child]) -> String {
    children
        .iter()
        .map(|child| {
            let value = child.to_json().expect("children serialize");
            serde_yaml::to_string(&value).expect("JSON values render as YAML")
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

fn build_fixture(path: &Path) -> Vec<Child> {
    let pool = support::load_pool(path);
    let model = validate(&pool).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    let inputs = BuildInputs {
        self_signed: Some(fixture_material()),
        capabilities: ClusterCapabilities {
            cert_manager: true,
            service_monitor: true,
        },
    };
    build_children(&model, &inputs)
}

#[test]
fn children_match_snapshots() {
    let snapshots = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots");
    for path in support::yaml_files(&support::fixtures_dir().join("valid")) {
        let children = build_fixture(&path);
        let name = path.file_name().expect("fixture file name");
        support::assert_snapshot(&snapshots.join(name), &render(&children));
    }
}

#[test]
fn build_is_deterministic() {
    let path = support::fixtures_dir().join("valid/self-signed.yaml");
    assert_eq!(build_fixture(&path), build_fixture(&path));
}

#[test]
fn every_child_is_owned_labelled_and_hashed() {
    for path in support::yaml_files(&support::fixtures_dir().join("valid")) {
        let pool = support::load_pool(&path);
        for child in build_fixture(&path) {
            let value = child.to_json().unwrap();
            let metadata = &value["metadata"];
            let label = format!("{} {} in {}", child.kind(), child.name(), path.display());

            let owner = &metadata["ownerReferences"][0];
            assert_eq!(owner["kind"], "CascorWorkerPool", "{label}");
            assert_eq!(
                owner["uid"].as_str(),
                pool.metadata.uid.as_deref(),
                "{label}"
            );
            assert_eq!(owner["controller"], true, "{label}");
            assert_eq!(
                metadata["labels"]["app.kubernetes.io/managed-by"], "cascor-operator",
                "{label}"
            );
            assert_eq!(
                metadata["labels"]["cascor.juniper.dev/pool"].as_str(),
                pool.metadata.name.as_deref(),
                "{label}"
            );
            assert!(
                metadata["annotations"][HASH_ANNOTATION].is_string(),
                "{label}"
            );
        }
    }
}

#[test]
fn deployment_is_hardened() {
    let children = build_fixture(&support::fixtures_dir().join("valid/minimal.yaml"));
    let deployment = children
        .iter()
        .find_map(|child| match child {
            Child::Deployment(deployment) => Some(deployment.as_ref().clone()),
            _ => None,
        })
        .expect("a Deployment is built");
    let pod = deployment.spec.template.spec.unwrap();
    let container = &pod.containers[0];
    let security = container.security_context.clone().unwrap();

    assert_eq!(security.run_as_non_root, Some(true));
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    assert_eq!(
        security.capabilities.unwrap().drop,
        Some(vec!["ALL".to_owned()])
    );
    assert_eq!(security.seccomp_profile.unwrap().type_, "RuntimeDefault");
    assert_eq!(pod.automount_service_account_token, Some(false));
    let args = container.args.clone().unwrap();
    assert!(
        args.contains(&"--health-bind=0.0.0.0".to_owned()),
        "{args:?}"
    );
    let liveness = container.liveness_probe.clone().unwrap().http_get.unwrap();
    let readiness = container.readiness_probe.clone().unwrap().http_get.unwrap();
    assert_eq!(liveness.path.as_deref(), Some("/v1/health/live"));
    assert_eq!(readiness.path.as_deref(), Some("/v1/health/ready"));
    let env: Vec<String> = container
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|var| var.name)
        .collect();
    assert!(
        env.contains(&"POD_NAME".to_owned()) && env.contains(&"POD_NAMESPACE".to_owned()),
        "{env:?}"
    );
}

#[test]
fn apply_order_puts_secrets_before_the_deployment() {
    let children = build_fixture(&support::fixtures_dir().join("valid/self-signed.yaml"));
    let kinds: Vec<&str> = children.iter().map(Child::kind).collect();
    let position = |kind: &str| {
        kinds
            .iter()
            .position(|k| *k == kind)
            .unwrap_or_else(|| panic!("{kind} missing in {kinds:?}"))
    };

    assert_eq!(kinds[0], "ServiceAccount");
    assert!(position("Secret") < position("Deployment"), "{kinds:?}");
    assert!(position("ConfigMap") < position("Deployment"), "{kinds:?}");
}

#[test]
fn optional_apis_are_skipped_when_missing() {
    let pool = support::load_pool(&support::fixtures_dir().join("valid/cert-manager.yaml"));
    let model = validate(&pool).unwrap();

    let children = build_children(&model, &BuildInputs::default());

    let kinds: Vec<&str> = children.iter().map(Child::kind).collect();
    assert!(!kinds.contains(&"Certificate"), "{kinds:?}");
    assert!(!kinds.contains(&"ServiceMonitor"), "{kinds:?}");
}
