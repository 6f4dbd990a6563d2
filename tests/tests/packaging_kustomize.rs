//! The kustomize base in deploy/base: it is what deploy/render-base.sh makes from the Helm
//! chart, and `kubectl kustomize` builds it offline into objects of known types.

mod packaging_support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use packaging_support::types::assert_typed;
use packaging_support::{objects_of_kind, parse_documents, run, workspace_root};

fn files_below(root: &Path) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder)
            .unwrap_or_else(|error| panic!("failed to list {}: {error}", folder.display()))
        {
            let path = entry.expect("readable directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else {
                files.insert(
                    path.strip_prefix(root)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    files
}

#[test]
fn base_matches_rendered_chart() {
    let rendered = tempfile::tempdir().expect("temporary folder");
    run(Command::new("bash")
        .arg(workspace_root().join("deploy/render-base.sh"))
        .arg(rendered.path()));

    let base = workspace_root().join("deploy/base");
    let expected_files = files_below(rendered.path());
    assert_eq!(
        files_below(&base),
        expected_files,
        "deploy/base has other files than render-base.sh writes"
    );
    for file in &expected_files {
        let expected = std::fs::read_to_string(rendered.path().join(file)).unwrap();
        let actual = std::fs::read_to_string(base.join(file)).unwrap();
        assert!(
            expected == actual,
            "deploy/base/{file} is stale; regenerate it with deploy/render-base.sh"
        );
    }
}

#[test]
fn kustomize_builds_base_offline() {
    let kubectl = Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output();
    assert!(
        kubectl.is_ok_and(|output| output.status.success()),
        "kubectl is missing; install it (Debian package kubectl from the Kubernetes apt repository, \
         or the Google Cloud SDK's kubectl) to build the kustomize base"
    );

    let built = run(Command::new("kubectl")
        .arg("kustomize")
        .arg(workspace_root().join("deploy/base")));
    let objects = parse_documents(&built, "kubectl kustomize deploy/base");

    let kinds: BTreeSet<&str> = objects
        .iter()
        .filter_map(|object| object["kind"].as_str())
        .collect();
    for kind in [
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "Service",
    ] {
        assert!(kinds.contains(kind), "the base has no {kind}: {kinds:?}");
    }
    assert!(
        !kinds.contains("Pod"),
        "the base contains the helm test pod"
    );

    for object in &objects {
        assert_typed(object, "kubectl kustomize deploy/base");
        let labels = &object["metadata"]["labels"];
        assert!(
            labels.get("helm.sh/chart").is_none(),
            "{object}: helm label left in the base"
        );
        if let Some(manager) = labels.get("app.kubernetes.io/managed-by") {
            assert_eq!(manager, "kustomize");
        }
    }

    let deployment = objects_of_kind(&objects, "Deployment")[0];
    assert_eq!(deployment["metadata"]["namespace"], "cascor-system");
    let binding = objects_of_kind(&objects, "ClusterRoleBinding")[0];
    assert_eq!(binding["subjects"][0]["namespace"], "cascor-system");
}

#[test]
fn overlay_moves_base_namespace() {
    let overlay = tempfile::tempdir().expect("temporary folder");
    let base = workspace_root().join("deploy/base");
    // kustomize loads a base outside the overlay's folder only through a relative path.
    let relative_base = relative_path(overlay.path(), &base);
    std::fs::write(
        overlay.path().join("kustomization.yaml"),
        format!(
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: ml-operators\n\
             resources:\n  - {relative_base}\nimages:\n  - name: ghcr.io/juniper-platform/cascor-operator\n    newTag: 9.9.9\n"
        ),
    )
    .unwrap();

    let built = run(Command::new("kubectl").arg("kustomize").arg(overlay.path()));
    let objects = parse_documents(&built, "overlay");
    let deployment = objects_of_kind(&objects, "Deployment")[0];
    assert_eq!(deployment["metadata"]["namespace"], "ml-operators");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/juniper-platform/cascor-operator:9.9.9"
    );
    let binding = objects_of_kind(&objects, "ClusterRoleBinding")[0];
    assert_eq!(binding["subjects"][0]["namespace"], "ml-operators");
}

/// Relative path from `from` to `to`, both absolute.
fn relative_path(from: &Path, to: &Path) -> String {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = vec!["..".to_string(); from.len() - common];
    parts.extend(
        to[common..]
            .iter()
            .map(|part| part.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}
