//! The built `cascor-operator` binary against the stand-in API server through a kubeconfig:
//! readiness while the CRD is missing, leader election, reconciling a pool, metrics, and a
//! clean stop on SIGTERM that releases the leader Lease. Also kubectl against the same
//! stand-in.

mod operator_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use operator_support::{NAMESPACE, WAIT_LIMIT, eventually, install_crd};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use cascor_system_tests::apiserver::ApiServer;

/// Newest modification time of the operator's sources.
fn newest_source_time(dir: &Path) -> std::time::SystemTime {
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("reading {} failed: {error}", dir.display()))
    {
        let path = entry.expect("directory entry").path();
        let time = if path.is_dir() {
            newest_source_time(&path)
        } else {
            path.metadata()
                .and_then(|metadata| metadata.modified())
                .unwrap_or(newest)
        };
        newest = newest.max(time);
    }
    newest
}

/// Returns the operator binary next to this test's executable, building it first when it is
/// missing or older than the operator's sources.
fn operator_binary() -> PathBuf {
    // Test executables live in <target>/<profile>/deps; binaries in <target>/<profile>.
    let test_exe = std::env::current_exe().expect("the test executable has a path");
    let profile_dir = test_exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable is in <target>/<profile>/deps");
    let binary = profile_dir.join("cascor-operator");

    let operator_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../operator");
    let manifest_time = operator_dir
        .join("Cargo.toml")
        .metadata()
        .and_then(|metadata| metadata.modified())
        .expect("operator/Cargo.toml exists");
    let sources = newest_source_time(&operator_dir.join("src")).max(manifest_time);
    let built = binary
        .metadata()
        .and_then(|metadata| metadata.modified())
        .ok();
    if built.is_none_or(|built| built < sources) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(&cargo)
            .args(["build", "-p", "cascor-operator", "--bin", "cascor-operator"])
            .status()
            .unwrap_or_else(|error| {
                panic!("running `{cargo} build -p cascor-operator` failed: {error}")
            });
        assert!(
            status.success(),
            "`cargo build -p cascor-operator` failed: {status}"
        );
    }
    assert!(
        binary.exists(),
        "{} is missing after the build",
        binary.display()
    );
    binary
}

fn free_port() -> u16 {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").expect("binding an ephemeral port succeeds");
    listener.local_addr().expect("a bound address").port()
}

/// A minimal HTTP/1.1 GET; returns the status code and body.
async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Some((code, body))
}

struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        // Only if a failed assertion left the process running.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

const POOL: &str = r#"
apiVersion: cascor.juniper.dev/v1alpha1
kind: CascorWorkerPool
metadata:
  name: from-binary
  namespace: ml
spec:
  replicas: 3
  server:
    url: ws://juniper-cascor.ml.svc:8200/ws/v1/workers
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_reconciles_and_stops_on_sigterm() {
    let binary = operator_binary();
    let server = ApiServer::start()
        .await
        .expect("the stand-in API server starts");
    let client = server.test_client();
    let workdir = tempfile::tempdir().expect("a temporary directory");
    let kubeconfig = workdir.path().join("kubeconfig");
    server
        .write_kubeconfig(&kubeconfig)
        .expect("writing the kubeconfig succeeds");
    let port = free_port();

    let mut operator = Operator(
        Command::new(&binary)
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args(["--http-bind=127.0.0.1", &format!("--http-port={port}")])
            .args(["--leader-election-namespace=default", "--lease-duration=3s"])
            .env("POD_NAME", "operator-under-test")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|error| panic!("starting {} failed: {error}", binary.display())),
    );

    let (code, body) = eventually("/readyz to report the missing CRD", || async {
        http_get(port, "/readyz")
            .await
            .filter(|(_, body)| body.contains("not installed"))
    })
    .await;
    assert_eq!(code, 503, "{body}");
    assert!(
        body.contains("cascorworkerpools.cascor.juniper.dev"),
        "{body}"
    );
    assert_eq!(
        http_get(port, "/healthz").await.map(|(code, _)| code),
        Some(200)
    );

    install_crd(&client).await;
    eventually("/readyz to pass", || async {
        http_get(port, "/readyz")
            .await
            .filter(|(code, _)| *code == 200)
    })
    .await;
    let pools = Api::<cascor_operator::CascorWorkerPool>::namespaced(client.clone(), NAMESPACE);
    let pool: cascor_operator::CascorWorkerPool = serde_yaml::from_str(POOL).unwrap();
    pools
        .create(&Default::default(), &pool)
        .await
        .expect("creating the pool succeeds");

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let deployment = eventually("the Deployment", || async {
        deployments.get_opt("from-binary").await.ok().flatten()
    })
    .await;
    assert_eq!(deployment.spec.replicas, Some(3));
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let lease = leases
        .get("cascor-operator-leader")
        .await
        .expect("the leader Lease exists");
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some("operator-under-test")
    );
    let metrics = eventually("/metrics to count the reconcile", || async {
        let (_, metrics) = http_get(port, "/metrics").await?;
        metrics
            .contains("cascor_operator_reconciliations_total{result=\"success\"}")
            .then_some(metrics)
    })
    .await;
    assert!(metrics.contains("cascor_operator_leader 1"), "{metrics}");

    let pid = i32::try_from(operator.0.id()).expect("a pid fits in i32");
    // SAFETY: kill(2) with a pid of a child process this test started.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0, "sending SIGTERM failed");
    let status = eventually("the operator to exit", || {
        let status = operator
            .0
            .try_wait()
            .expect("waiting on the operator succeeds");
        async move { status }
    })
    .await;
    assert!(status.success(), "the operator exited with {status}");
    let lease = leases.get("cascor-operator-leader").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity,
        None,
        "the Lease is released on shutdown"
    );

    server.stop().await;
}

/// Runs kubectl with the stand-in's kubeconfig; returns stdout, failing with stderr.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let output = Command::new("kubectl")
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!("running kubectl failed ({error}); install kubectl 1.32 or later")
        });
    assert!(
        output.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_applies_and_lists_pools() {
    let server = ApiServer::start()
        .await
        .expect("the stand-in API server starts");
    let workdir = tempfile::tempdir().expect("a temporary directory");
    let kubeconfig = workdir.path().join("kubeconfig");
    server.write_kubeconfig(&kubeconfig).unwrap();
    let crd_file = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crds/cascorworkerpools.cascor.juniper.dev.yaml");
    let pool_file = workdir.path().join("pool.yaml");
    std::fs::write(&pool_file, POOL).unwrap();

    let kubeconfig_path = kubeconfig.clone();
    let crd = crd_file.display().to_string();
    let pool = pool_file.display().to_string();
    let outputs = tokio::task::spawn_blocking(move || {
        // The stand-in serves no OpenAPI document, so kubectl's schema validation is off.
        let applied_crd = kubectl(
            &kubeconfig_path,
            &["apply", "--server-side", "--validate=false", "-f", &crd],
        );
        let applied_pool = kubectl(
            &kubeconfig_path,
            &["apply", "--server-side", "--validate=false", "-f", &pool],
        );
        let scaled = kubectl(
            &kubeconfig_path,
            &["scale", "-n", NAMESPACE, "cwp/from-binary", "--replicas=4"],
        );
        let listed = kubectl(&kubeconfig_path, &["get", "-n", NAMESPACE, "cwp"]);
        (applied_crd, applied_pool, scaled, listed)
    });
    let (applied_crd, applied_pool, scaled, listed) = tokio::time::timeout(WAIT_LIMIT, outputs)
        .await
        .expect("kubectl finishes")
        .expect("the kubectl task did not panic");

    assert!(applied_crd.contains("serverside-applied"), "{applied_crd}");
    assert!(
        applied_pool.contains("cascorworkerpool.cascor.juniper.dev/from-binary"),
        "{applied_pool}"
    );
    assert!(scaled.contains("scaled"), "{scaled}");
    let header = listed.lines().next().unwrap_or_default();
    for column in ["NAME", "DESIRED", "READY", "STATUS", "AGE"] {
        assert!(header.contains(column), "{listed}");
    }
    let row = listed.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with("from-binary") && row.contains('4'),
        "{listed}"
    );

    server.stop().await;
}
