//! The generated CRD: crds/ is up to date, and the schema carries what users rely on.

use std::path::Path;

use cascor_operator::crd_yaml;

const CRD_FILE: &str = "crds/cascorworkerpools.cascor.juniper.dev.yaml";

fn generated() -> serde_json::Value {
    serde_yaml::from_str(&crd_yaml().expect("the CRD renders")).expect("the CRD is valid YAML")
}

#[test]
fn crds_folder_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(CRD_FILE);
    let checked_in = std::fs::read_to_string(&path).unwrap_or_else(|error| {
        panic!(
            "reading {} failed: {error}; generate it with `make crds`",
            path.display()
        )
    });

    assert!(
        checked_in == crd_yaml().unwrap(),
        "{CRD_FILE} is stale: it differs from the CRD the Rust types generate. Regenerate it with `make crds`."
    );
}

#[test]
fn crd_names_scope_and_subresources() {
    let crd = generated();
    let spec = &crd["spec"];
    let version = &spec["versions"][0];

    assert_eq!(spec["group"], "cascor.juniper.dev");
    assert_eq!(spec["scope"], "Namespaced");
    assert_eq!(spec["names"]["kind"], "CascorWorkerPool");
    assert_eq!(spec["names"]["shortNames"][0], "cwp");
    assert_eq!(version["name"], "v1alpha1");
    assert!(version["subresources"]["status"].is_object());
    assert_eq!(
        version["subresources"]["scale"]["specReplicasPath"],
        ".spec.replicas"
    );
    assert_eq!(
        version["subresources"]["scale"]["labelSelectorPath"],
        ".status.selector"
    );
    let columns: Vec<&str> = version["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|column| column["name"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["Desired", "Ready", "Status", "Age"]);
}

#[test]
fn schema_has_docs_and_cel_rules() {
    let crd = generated();
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"];
    let server = &spec["properties"]["server"];

    assert!(
        server["properties"]["url"]["description"]
            .as_str()
            .unwrap()
            .contains("WebSocket URL")
    );
    let rules: Vec<&str> = server["x-kubernetes-validations"]
        .as_array()
        .expect("server has CEL rules")
        .iter()
        .map(|rule| rule["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules
            .iter()
            .any(|rule| rule.contains("startsWith('wss://')")),
        "{rules:?}"
    );
    let tls_rules = server["properties"]["tls"]["x-kubernetes-validations"]
        .as_array()
        .expect("tls has CEL rules");
    assert!(tls_rules.len() >= 2);
    assert_eq!(
        spec["properties"]["replicas"]["minimum"].as_f64(),
        Some(0.0)
    );
}
