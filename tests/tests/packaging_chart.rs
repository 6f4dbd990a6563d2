//! The Helm chart charts/cascor-operator: `helm lint`, `helm template` with each values
//! scenario in ci/, the type of every rendered object, the CRDs, the RBAC rules against the
//! operator's table of API calls, the pod security settings and the operator's flags.

mod packaging_support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use cascor_operator::permissions::PERMISSIONS;
use packaging_support::types::assert_typed;
use packaging_support::{
    chart_dir, crd_path, helm, helm_template, object_id, objects_of_kind, run, run_failing,
    workspace_root, yaml_files,
};
use serde_json::Value;

const RELEASE_NAMESPACE: &str = "cascor-system";

/// The values files under ci/, one per scenario.
fn scenarios() -> Vec<PathBuf> {
    let folder = chart_dir().join("ci");
    let files = yaml_files(&folder);
    assert!(
        files.len() >= 4,
        "expected at least four scenarios in {}",
        folder.display()
    );
    files
}

fn scenario(name: &str) -> PathBuf {
    chart_dir().join("ci").join(format!("{name}-values.yaml"))
}

fn render(name: &str) -> Vec<Value> {
    helm_template(&[scenario(name)], &[])
}

fn single_object<'a>(objects: &'a [Value], kind: &str) -> &'a Value {
    let found = objects_of_kind(objects, kind);
    assert_eq!(found.len(), 1, "expected one {kind}, found {}", found.len());
    found[0]
}

fn deployment_args(objects: &[Value]) -> Vec<String> {
    let deployment = single_object(objects, "Deployment");
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .expect("the operator container has args")
        .iter()
        .map(|arg| arg.as_str().expect("string argument").to_string())
        .collect()
}

/// Every (API group, resource, verb) that the rendered Roles and ClusterRoles grant.
fn granted(objects: &[Value]) -> BTreeSet<(String, String, String)> {
    let mut triples = BTreeSet::new();
    for role in objects
        .iter()
        .filter(|object| object["kind"] == "Role" || object["kind"] == "ClusterRole")
    {
        for rule in role["rules"].as_array().expect("a role has rules") {
            let strings = |field: &str| -> Vec<String> {
                rule[field]
                    .as_array()
                    .unwrap_or_else(|| panic!("{}: a rule without {field}", object_id(role)))
                    .iter()
                    .map(|item| item.as_str().expect("string").to_string())
                    .collect()
            };
            for group in strings("apiGroups") {
                for resource in strings("resources") {
                    for verb in strings("verbs") {
                        triples.insert((group.clone(), resource.clone(), verb));
                    }
                }
            }
        }
    }
    triples
}

/// Every (API group, resource, verb) in the operator's table of API calls.
fn required(include_leases: bool) -> BTreeSet<(String, String, String)> {
    PERMISSIONS
        .iter()
        .filter(|permission| include_leases || permission.resource != "leases")
        .flat_map(|permission| {
            permission.verbs.iter().map(|verb| {
                (
                    permission.group.to_string(),
                    permission.resource.to_string(),
                    verb.to_string(),
                )
            })
        })
        .collect()
}

fn assert_grants_match(objects: &[Value], include_leases: bool, scenario: &str) {
    let granted = granted(objects);
    let required = required(include_leases);
    let missing: Vec<_> = required.difference(&granted).collect();
    let extra: Vec<_> = granted.difference(&required).collect();
    assert!(
        missing.is_empty(),
        "{scenario}: the chart does not grant {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "{scenario}: the chart grants calls the operator never makes: {extra:?}"
    );
}

#[test]
fn chart_lints_for_every_scenario() {
    let helm = helm();
    run(Command::new(&helm)
        .args(["lint", "--strict"])
        .arg(chart_dir()));
    for values in scenarios() {
        let output = run(Command::new(&helm)
            .args(["lint", "--strict", "--namespace", RELEASE_NAMESPACE])
            .arg(chart_dir())
            .arg("--values")
            .arg(&values));
        assert!(
            output.contains("0 chart(s) failed"),
            "{}: {output}",
            values.display()
        );
    }
}

#[test]
fn rendered_objects_parse_as_their_types() {
    for values in scenarios() {
        let objects = helm_template(std::slice::from_ref(&values), &[]);
        assert!(
            !objects.is_empty(),
            "{}: nothing rendered",
            values.display()
        );
        for object in &objects {
            assert_typed(object, &values.display().to_string());
        }
    }
}

#[test]
fn chart_crds_equal_repository_crds() {
    let repository_crd = std::fs::read(crd_path())
        .unwrap_or_else(|error| panic!("failed to read {}: {error}", crd_path().display()));
    let file_name = crd_path().file_name().unwrap().to_owned();
    let chart_crd_path = chart_dir().join("crds").join(&file_name);
    let chart_crd = std::fs::read(&chart_crd_path)
        .unwrap_or_else(|error| panic!("failed to read {}: {error}", chart_crd_path.display()));
    assert!(
        chart_crd == repository_crd,
        "{} differs from {}; copy it with: cp {} {}",
        chart_crd_path.display(),
        crd_path().display(),
        crd_path().display(),
        chart_crd_path.display()
    );

    let chart_crds: Vec<_> = std::fs::read_dir(chart_dir().join("crds"))
        .expect("the chart has a crds folder")
        .map(|entry| entry.expect("readable directory entry").file_name())
        .collect();
    assert_eq!(
        chart_crds,
        vec![file_name],
        "the chart's crds folder has extra files"
    );
}

#[test]
fn schema_rejects_unknown_values() {
    let helm = helm();
    for (setting, expected) in [
        ("imageTag=1.0", "imageTag"),
        ("image.tagg=1.0", "tagg"),
        ("leaderElection.leaseDuration=soon", "leaseDuration"),
        ("watchNamespaces[0]=Bad_Namespace", "watchNamespaces"),
        ("image.pullPolicy=Sometimes", "pullPolicy"),
    ] {
        let stderr = run_failing(
            Command::new(&helm)
                .args(["template", "cascor"])
                .arg(chart_dir())
                .args(["--set", setting]),
        );
        assert!(
            stderr.contains("values don't meet the specifications of the schema")
                && stderr.contains(expected),
            "--set {setting}: expected a schema error naming {expected:?}, got:\n{stderr}"
        );
    }
}

#[test]
fn default_release_is_cluster_wide() {
    let objects = render("default");
    let kinds: BTreeSet<&str> = objects
        .iter()
        .filter_map(|object| object["kind"].as_str())
        .collect();
    for kind in [
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Deployment",
        "Service",
        "Pod",
    ] {
        assert!(
            kinds.contains(kind),
            "the default release has no {kind}: {kinds:?}"
        );
    }
    for kind in ["ServiceMonitor", "NetworkPolicy", "ConfigMap"] {
        assert!(
            !kinds.contains(kind),
            "the default release has an optional {kind}"
        );
    }

    let args = deployment_args(&objects);
    assert!(
        args.contains(&"--leader-election=true".to_string()),
        "{args:?}"
    );
    assert!(
        !args.iter().any(|arg| arg.starts_with("--namespaces")),
        "{args:?}"
    );
    assert_eq!(single_object(&objects, "Deployment")["spec"]["replicas"], 1);

    let cluster_role = single_object(&objects, "ClusterRole");
    assert!(
        cluster_role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|rule| rule["resources"][0] == "cascorworkerpools"),
        "the ClusterRole of a cluster-wide release grants no access to pools"
    );
    assert_grants_match(&objects, true, "default");
}

#[test]
fn namespaced_release_uses_roles() {
    let objects = render("namespaced");
    let args = deployment_args(&objects);
    assert!(
        args.contains(&"--namespaces=team-a,team-b".to_string()),
        "{args:?}"
    );
    assert_eq!(single_object(&objects, "Deployment")["spec"]["replicas"], 2);

    // Only cluster-scoped resources stay in the ClusterRole.
    let cluster_role = single_object(&objects, "ClusterRole");
    let cluster_resources: Vec<&Value> = cluster_role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|rule| rule["resources"].as_array().unwrap())
        .collect();
    assert_eq!(cluster_resources, vec!["customresourcedefinitions"]);

    let roles = objects_of_kind(&objects, "Role");
    let role_namespaces: BTreeSet<&str> = roles
        .iter()
        .map(|role| role["metadata"]["namespace"].as_str().unwrap())
        .collect();
    assert_eq!(
        role_namespaces,
        BTreeSet::from(["team-a", "team-b", RELEASE_NAMESPACE])
    );

    for role in &roles {
        let namespace = role["metadata"]["namespace"].as_str().unwrap();
        let grants_leases = role["rules"].to_string().contains("\"leases\"");
        assert_eq!(
            grants_leases,
            namespace == RELEASE_NAMESPACE,
            "{}: leases must be granted in the release namespace only",
            object_id(role)
        );
    }
    assert_grants_match(&objects, true, "namespaced");
}

#[test]
fn bindings_name_rendered_roles() {
    for values in scenarios() {
        let objects = helm_template(std::slice::from_ref(&values), &[]);
        let service_account = objects_of_kind(&objects, "Deployment")[0]["spec"]["template"]["spec"]["serviceAccountName"].clone();
        for binding in objects.iter().filter(|object| {
            object["kind"] == "RoleBinding" || object["kind"] == "ClusterRoleBinding"
        }) {
            let role_kind = binding["roleRef"]["kind"].as_str().unwrap();
            let role_name = &binding["roleRef"]["name"];
            let namespace = &binding["metadata"]["namespace"];
            let role_exists = objects.iter().any(|object| {
                object["kind"] == role_kind
                    && &object["metadata"]["name"] == role_name
                    && &object["metadata"]["namespace"] == namespace
            });
            assert!(
                role_exists,
                "{}: {} refers to a missing {role_kind} {role_name}",
                values.display(),
                object_id(binding)
            );
            assert_eq!(
                binding["subjects"][0]["name"],
                service_account,
                "{}: {}",
                values.display(),
                object_id(binding)
            );
            assert_eq!(
                binding["subjects"][0]["namespace"],
                RELEASE_NAMESPACE,
                "{}: {}",
                values.display(),
                object_id(binding)
            );
        }
    }
}

#[test]
fn full_release_renders_optional_objects() {
    let objects = render("full");

    let monitor = single_object(&objects, "ServiceMonitor");
    assert_eq!(monitor["metadata"]["labels"]["release"], "prometheus");
    assert_eq!(monitor["spec"]["endpoints"][0]["port"], "http");
    assert_eq!(monitor["spec"]["endpoints"][0]["interval"], "15s");

    let service = single_object(&objects, "Service");
    assert_eq!(service["spec"]["ports"][0]["port"], 9090);
    let deployment = single_object(&objects, "Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["ports"][0]["containerPort"], 9090);
    assert_eq!(
        container["image"],
        "registry.example.com/ml/cascor-operator@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    );
    assert!(deployment_args(&objects).contains(&"--http-bind=0.0.0.0".to_string()));

    let policy = single_object(&objects, "NetworkPolicy");
    assert_eq!(
        policy["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    assert_eq!(
        policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "monitoring"
    );
    assert_eq!(policy["spec"]["egress"].as_array().map(Vec::len), Some(2));

    let dashboard = single_object(&objects, "ConfigMap");
    assert_eq!(dashboard["metadata"]["namespace"], "monitoring");
    assert_eq!(dashboard["metadata"]["labels"]["grafana_dashboard"], "1");
    let shipped: Value = serde_json::from_str(
        dashboard["data"]["cascor.json"]
            .as_str()
            .expect("dashboard data"),
    )
    .expect("the dashboard ConfigMap holds valid JSON");
    let source_path = chart_dir().join("dashboards/cascor.json");
    let source: Value =
        serde_json::from_str(&std::fs::read_to_string(&source_path).unwrap()).unwrap();
    assert_eq!(
        shipped,
        source,
        "the ConfigMap's dashboard differs from {}",
        source_path.display()
    );
}

#[test]
fn minimal_release_has_no_optional_objects() {
    let objects = render("minimal");
    let kinds: BTreeSet<&str> = objects
        .iter()
        .filter_map(|object| object["kind"].as_str())
        .collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["CustomResourceDefinition", "Deployment"])
    );

    let deployment = single_object(&objects, "Deployment");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["serviceAccountName"],
        "cascor-operator"
    );
    assert!(deployment_args(&objects).contains(&"--leader-election=false".to_string()));
}

#[test]
fn leader_election_off_drops_lease_role() {
    let objects = helm_template(&[], &["--set", "leaderElection.enabled=false"]);
    assert!(
        !deployment_args(&objects)
            .iter()
            .any(|arg| arg.starts_with("--lease-duration"))
    );
    assert_grants_match(&objects, false, "leaderElection.enabled=false");
}

#[test]
fn pods_meet_restricted_security() {
    for values in scenarios() {
        let objects = helm_template(std::slice::from_ref(&values), &[]);
        let pod_specs = objects
            .iter()
            .filter_map(|object| match object["kind"].as_str() {
                Some("Deployment") => {
                    Some((object_id(object), &object["spec"]["template"]["spec"]))
                }
                Some("Pod") => Some((object_id(object), &object["spec"])),
                _ => None,
            });
        for (id, spec) in pod_specs {
            let source = format!("{}: {id}", values.display());
            let pod_context = &spec["securityContext"];
            assert_eq!(pod_context["runAsNonRoot"], true, "{source}");
            assert_eq!(
                pod_context["seccompProfile"]["type"], "RuntimeDefault",
                "{source}"
            );
            assert!(
                pod_context["runAsUser"].as_i64().is_some_and(|uid| uid > 0),
                "{source}: runAsUser"
            );

            for container in spec["containers"].as_array().expect("containers") {
                let context = &container["securityContext"];
                assert_eq!(context["allowPrivilegeEscalation"], false, "{source}");
                assert_eq!(context["readOnlyRootFilesystem"], true, "{source}");
                assert_eq!(
                    context["capabilities"]["drop"],
                    serde_json::json!(["ALL"]),
                    "{source}"
                );
                assert!(
                    context["capabilities"]["add"].is_null(),
                    "{source}: adds capabilities"
                );
                assert!(
                    container["resources"]["limits"]["memory"].is_string(),
                    "{source}: no memory limit"
                );
            }
        }
    }
}

#[test]
fn test_hook_pod_checks_operator() {
    let objects = render("default");
    let pod = single_object(&objects, "Pod");
    assert_eq!(pod["metadata"]["annotations"]["helm.sh/hook"], "test");
    let script = pod["spec"]["containers"][0]["command"].to_string();
    let service = single_object(&objects, "Service");
    let service_name = service["metadata"]["name"].as_str().unwrap();
    assert!(
        script.contains(&format!("{service_name}.{RELEASE_NAMESPACE}.svc:8080")),
        "{script}"
    );
    assert!(
        script.contains("/readyz") && script.contains("/metrics"),
        "{script}"
    );
    assert!(script.contains("cascor_operator_"), "{script}");
}

/// Runs the operator binary's `--help`, which `cargo test --workspace` builds next to the
/// test executables.
fn operator_help() -> String {
    let test_executable = std::env::current_exe().expect("path of the test executable");
    let profile_dir = test_executable
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executables live in <target>/<profile>/deps");
    let binary = profile_dir.join("cascor-operator");
    assert!(
        binary.exists(),
        "{} is missing; build it first with `scripts/with-env.sh cargo build -p cascor-operator` \
         (cargo test --workspace builds it)",
        binary.display()
    );
    run(Command::new(binary).arg("--help"))
}

#[test]
fn operator_accepts_chart_flags() {
    let help = operator_help();
    for values in scenarios() {
        for arg in deployment_args(&helm_template(std::slice::from_ref(&values), &[])) {
            let flag = arg.split('=').next().unwrap();
            assert!(
                help.contains(&format!("{flag} "))
                    || help.contains(&format!("{flag}="))
                    || help.contains(&format!("{flag} <")),
                "{}: the operator's --help does not list {flag}:\n{help}",
                values.display()
            );
        }
    }
    assert!(
        help.contains("[possible values: text, json]"),
        "log formats changed:\n{help}"
    );
}

#[test]
fn chart_version_matches_workspace() {
    let chart: Value =
        serde_yaml::from_str(&std::fs::read_to_string(chart_dir().join("Chart.yaml")).unwrap())
            .unwrap();
    let manifest = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap();
    let workspace_version = manifest
        .lines()
        .skip_while(|line| line.trim() != "[workspace.package]")
        .find_map(|line| line.strip_prefix("version = "))
        .map(|version| version.trim_matches('"').to_string())
        .expect("[workspace.package] has a version");
    assert_eq!(
        chart["appVersion"],
        workspace_version.as_str(),
        "Chart.yaml appVersion"
    );
}
