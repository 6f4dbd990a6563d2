//! Operator to worker, end to end. kubectl applies the CPU example pool to the stand-in API
//! server, and the real `cascor-operator` binary turns it into a Deployment. The worker
//! binary then runs as that Deployment's pod would, against the real juniper-cascor 0.12.0
//! server training two spirals.
//!
//! What replaces the cluster, and the only substitutions made:
//! * The applied copy of `deploy/examples/cpu-pool.yaml` differs from the file in two
//!   fields: `spec.server.url` points at the real server on 127.0.0.1 instead of the
//!   cluster DNS name, and `spec.worker.healthPort` is a free port instead of the default
//!   8210, because the process shares the host's network namespace instead of having its own.
//! * The kubelet's part is `cascor_system_tests::podspec`: command, args and environment
//!   come from the Deployment's pod template, Secret values and the downward API are
//!   resolved, and each volume mount lives under one temporary mount root (the only path
//!   rewrite). The image's `juniper-cascor-worker` maps to the built binary.
//! * No other environment reaches the worker: it starts with the container's variables only.
//!
//! Not reproduced: resource limits, security contexts, the image's own environment, and
//! Deployment rollout (one pod is started for the whole pool, and nothing writes the
//! Deployment's status).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use cascor_operator::children::WORKER_CONTAINER;
use cascor_system_tests::apiserver::ApiServer;
use cascor_system_tests::peer::{CascorPeer, RunWatch, free_port, tail, wait_for};
use cascor_system_tests::podspec::{
    HostMapping, PodIdentity, generate_pod_name, http_probe, referenced_secrets, resolve_container,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use serde_json::json;

/// Worker token, also the server's only API key.
const TOKEN: &str = "e2e-operator-worker-token";
/// The example pool, relative to the workspace root.
const EXAMPLE: &str = "deploy/examples/cpu-pool.yaml";
/// Name of the example pool, of its Deployment and of the token Secret it references.
const POOL: &str = "cpu";
const TOKEN_SECRET: &str = "cascor-worker-token";
/// The kubeconfig's namespace, where the example (which names none) lands.
const NAMESPACE: &str = "default";
/// The worker binary as the image names it (on the image's PATH, and its absolute path).
const IMAGE_BINARIES: [&str; 2] = [
    "juniper-cascor-worker",
    "/usr/local/bin/juniper-cascor-worker",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate is inside the workspace")
        .to_path_buf()
}

/// Builds the operator and worker binaries of this build profile (a no-op when current)
/// and returns their paths. Tests run from `<target>/<profile>/deps`, binaries live in
/// `<target>/<profile>`.
fn build_binaries() -> (PathBuf, PathBuf) {
    let test_exe = std::env::current_exe().expect("the test executable has a path");
    let profile_dir = test_exe
        .parent()
        .and_then(Path::parent)
        .expect("the test executable is in <target>/<profile>/deps");
    let target_dir = profile_dir
        .parent()
        .expect("the profile folder is inside the target folder");

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(&cargo);
    // Cargo gives a test the variables of its own package (CARGO_PKG_NAME and the like).
    // Build scripts such as ring's rerun when those change, so the nested build starts
    // without them, as the outer build did.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if is_package_variable(&name) {
            command.env_remove(name.as_ref());
        }
    }
    let status = command
        // The same targets as `cargo test --workspace`, hence the same features: under
        // `make test` this is a no-op, where a narrower build would relink both binaries
        // with other features.
        .args(["build", "--workspace", "--bins", "--tests"])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(workspace_root())
        .status()
        .unwrap_or_else(|error| panic!("running {cargo} to build the binaries failed: {error}"));
    assert!(
        status.success(),
        "building cascor-operator and juniper-cascor-worker failed: {status}"
    );

    let operator = profile_dir.join("cascor-operator");
    let worker = profile_dir.join("juniper-cascor-worker");
    for binary in [&operator, &worker] {
        assert!(
            binary.is_file(),
            "{} is missing after the build",
            binary.display()
        );
    }
    (operator, worker)
}

/// Returns whether Cargo sets `name` for the package under test, as opposed to a setting
/// of Cargo itself (CARGO_HOME, CARGO_PROFILE_*, CARGO_BUILD_* and the like).
fn is_package_variable(name: &str) -> bool {
    const PREFIXES: [&str; 3] = ["CARGO_PKG_", "CARGO_BIN_EXE_", "CARGO_MANIFEST_"];
    const NAMES: [&str; 5] = [
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_TARGET_TMPDIR",
        "CARGO_RUSTC_CURRENT_DIR",
    ];
    PREFIXES.iter().any(|prefix| name.starts_with(prefix)) || NAMES.contains(&name)
}

/// Runs kubectl against the stand-in, with its discovery cache next to the kubeconfig;
/// returns stdout, failing with stderr.
fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let cache_dir = kubeconfig.with_file_name("kube-cache");
    let output = Command::new("kubectl")
        .arg(format!("--kubeconfig={}", kubeconfig.display()))
        .arg(format!("--cache-dir={}", cache_dir.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|error| {
            panic!("running kubectl failed ({error}); install kubectl 1.32 or later on PATH")
        });
    assert!(
        output.status.success(),
        "kubectl {args:?} failed with {}: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Returns the example pool with the two test substitutions: the server URL and the
/// worker's health port.
fn patched_example(server_url: &str, health_port: u16) -> String {
    let path = workspace_root().join(EXAMPLE);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {} failed: {error}", path.display()));
    let mut pool: serde_yaml::Value = serde_yaml::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not valid YAML: {error}", path.display()));

    assert_eq!(pool["metadata"]["name"].as_str(), Some(POOL), "{EXAMPLE}");
    assert_eq!(
        pool["spec"]["server"]["tokenSecretRef"]["name"].as_str(),
        Some(TOKEN_SECRET),
        "{EXAMPLE}"
    );
    let original_url = pool["spec"]["server"]["url"].as_str().unwrap_or_default();
    assert!(
        original_url.starts_with("ws://") && !original_url.contains("127.0.0.1"),
        "{EXAMPLE} no longer names a cluster server URL: {original_url:?}"
    );

    pool["spec"]["server"]["url"] = serde_yaml::Value::from(server_url);
    pool["spec"]["worker"]["healthPort"] = serde_yaml::Value::from(health_port);
    serde_yaml::to_string(&pool).expect("the patched pool serializes")
}

/// A process this test started, with its output in a log file. Stopped by its id.
struct Process {
    role: &'static str,
    child: Child,
    log: PathBuf,
}

impl Process {
    fn spawn(role: &'static str, command: &mut Command, log: PathBuf) -> Self {
        let file = File::create(&log).expect("create the process log");
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone the log handle"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|error| panic!("starting the {role} failed: {error}"));
        Self { role, child, log }
    }

    fn output(&self) -> String {
        read_log(&self.log)
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!(
                "the {} exited early with {status}:\n{}",
                self.role,
                tail(&self.output(), 4000)
            );
        }
    }

    /// Sends SIGTERM, as the kubelet does, and waits for the exit.
    fn terminate(&mut self) -> ExitStatus {
        let pid = libc::pid_t::try_from(self.child.id()).expect("a pid fits in pid_t");
        // SAFETY: kill(2) only sends a signal, to a child process this test started and
        // has not reaped yet, so the id cannot have been reused.
        let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(sent, 0, "sending SIGTERM to the {} failed", self.role);
        let log = self.log.clone();
        wait_for(
            &format!("the {} to exit after SIGTERM", self.role),
            || tail(&read_log(&log), 3000),
            || self.child.try_wait().ok().flatten(),
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Only reached with the process running when an assertion failed first.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Sends `GET path` to 127.0.0.1:`port`; returns the status code.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn example_pool_worker_trains_with_real_server() {
    let (operator_binary, worker_binary) = build_binaries();
    let peer = CascorPeer::start(TOKEN, &[("CASCOR_NUM_PROCESSES", "1")]);
    let workdir = tempfile::Builder::new()
        .prefix("e2e-operator-worker-")
        .tempdir()
        .expect("create a temporary folder");

    // The stand-in API server runs on this runtime's threads while the test blocks.
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    let apiserver = runtime
        .block_on(ApiServer::start())
        .expect("the stand-in API server starts");
    let client = {
        let _guard = runtime.enter();
        apiserver.test_client()
    };
    let kubeconfig = workdir.path().join("kubeconfig");
    apiserver
        .write_kubeconfig(&kubeconfig)
        .expect("writing the kubeconfig succeeds");

    // Step 1: the operator binary against the stand-in.
    let operator_port = free_port();
    let mut operator = Process::spawn(
        "operator",
        Command::new(&operator_binary)
            .arg(format!("--kubeconfig={}", kubeconfig.display()))
            .args([
                "--http-bind=127.0.0.1",
                &format!("--http-port={operator_port}"),
            ])
            .arg("--leader-election=false"),
        workdir.path().join("operator.log"),
    );

    // Step 2: the CRD, the token Secret and the example pool, through kubectl.
    // NOTE: kubectl validates against the server's OpenAPI documents by default, and the
    // stand-in serves none (kubectl fails with "failed to download openapi"), so every
    // apply turns that validation off. The stand-in validates no schema either.
    let crd = workspace_root().join("crds/cascorworkerpools.cascor.juniper.dev.yaml");
    kubectl(
        &kubeconfig,
        &[
            "apply",
            "--server-side",
            "--validate=false",
            "-f",
            &crd.display().to_string(),
        ],
    );
    // NOTE: `kubectl create` sends built-in kinds as protobuf, which the stand-in cannot
    // parse, so kubectl writes the Secret's manifest and `kubectl apply` sends it as JSON.
    let secret_manifest = kubectl(
        &kubeconfig,
        &[
            "create",
            "secret",
            "generic",
            TOKEN_SECRET,
            &format!("--from-literal=token={TOKEN}"),
            "--dry-run=client",
            "--output=yaml",
        ],
    );
    let secret_file = workdir.path().join("token-secret.yaml");
    std::fs::write(&secret_file, secret_manifest).expect("writing the Secret manifest succeeds");
    let created = kubectl(
        &kubeconfig,
        &[
            "apply",
            "--validate=false",
            "-f",
            &secret_file.display().to_string(),
        ],
    );
    assert!(
        created.contains(&format!("secret/{TOKEN_SECRET}")),
        "{created}"
    );

    let health_port = free_port();
    let pool_file = workdir.path().join("cpu-pool.yaml");
    std::fs::write(&pool_file, patched_example(&peer.worker_url(), health_port))
        .expect("writing the patched pool succeeds");
    let applied = kubectl(
        &kubeconfig,
        &[
            "apply",
            "--validate=false",
            "-f",
            &pool_file.display().to_string(),
        ],
    );
    assert!(
        applied.contains(&format!("cascorworkerpool.cascor.juniper.dev/{POOL}")),
        "{applied}"
    );

    // Step 3: the Deployment the operator writes, and the Secrets its pod reads.
    let operator_log = operator.log.clone();
    let context = || {
        format!(
            "operator log tail:\n{}\nserver log tail:\n{}",
            tail(&read_log(&operator_log), 3000),
            tail(&peer.log(), 3000)
        )
    };
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NAMESPACE);
    let deployment = wait_for("the operator to create the Deployment", context, || {
        runtime.block_on(deployments.get_opt(POOL)).ok().flatten()
    });
    let template = deployment.spec.template.clone();

    let secret_names = referenced_secrets(&template)
        .unwrap_or_else(|error| panic!("the pod template is not supported: {error}"));
    assert!(secret_names.contains(TOKEN_SECRET), "{secret_names:?}");
    let secrets_api: Api<Secret> = Api::namespaced(client.clone(), NAMESPACE);
    let secrets: BTreeMap<String, Secret> = secret_names
        .iter()
        .map(|name| {
            let secret = wait_for(&format!("Secret {name}"), context, || {
                runtime.block_on(secrets_api.get_opt(name)).ok().flatten()
            });
            (name.clone(), secret)
        })
        .collect();

    let pod = PodIdentity {
        name: generate_pod_name(POOL, &template),
        namespace: NAMESPACE.to_owned(),
    };
    let mount_root = workdir.path().join("pod-root");
    let mapping = HostMapping {
        mount_root: mount_root.clone(),
        binaries: IMAGE_BINARIES
            .iter()
            .map(|name| ((*name).to_owned(), worker_binary.clone()))
            .collect(),
    };
    let resolved = resolve_container(&template, WORKER_CONTAINER, &pod, &secrets, &mapping)
        .unwrap_or_else(|error| panic!("the worker pod cannot be reproduced: {error}"));
    resolved
        .materialize()
        .expect("writing the pod's volumes succeeds");

    assert!(
        resolved
            .args
            .contains(&format!("--server-url={}", peer.worker_url())),
        "{:?}",
        resolved.args
    );
    assert!(
        resolved
            .args
            .contains(&format!("--health-port={health_port}")),
        "{:?}",
        resolved.args
    );
    assert!(
        resolved.env.iter().all(|(_, value)| !value.contains(TOKEN)),
        "the token reaches the worker only as a file"
    );
    let token_files: Vec<_> = resolved
        .files
        .iter()
        .filter(|file| file.contents == TOKEN.as_bytes())
        .collect();
    assert_eq!(
        token_files.len(),
        1,
        "{:?}",
        resolved
            .files
            .iter()
            .map(|file| &file.path)
            .collect::<Vec<_>>()
    );
    assert!(token_files[0].path.starts_with(&mount_root));

    let container = template
        .spec
        .as_ref()
        .and_then(|spec| {
            spec.containers
                .iter()
                .find(|container| container.name == WORKER_CONTAINER)
        })
        .expect("the template has the worker container");
    let readiness = container
        .readiness_probe
        .as_ref()
        .map(|probe| http_probe(container, probe))
        .expect("the worker container has a readiness probe")
        .unwrap_or_else(|error| panic!("the readiness probe is not supported: {error}"));
    assert_eq!(readiness.port, health_port);

    let mut worker = Process::spawn(
        "worker",
        Command::new(&resolved.program)
            .args(&resolved.args)
            .env_clear()
            .envs(resolved.env.iter().map(|(name, value)| (name, value)))
            .current_dir(&mount_root),
        workdir.path().join("worker.log"),
    );
    let worker_log = worker.log.clone();
    let context = || {
        format!(
            "worker log tail:\n{}\noperator log tail:\n{}\nserver log tail:\n{}",
            tail(&read_log(&worker_log), 3000),
            tail(&read_log(&operator_log), 2000),
            tail(&peer.log(), 3000)
        )
    };

    // Step 4: registration with the pod's identity, then a two-spiral run.
    let registered = wait_for("the worker to register", context, || {
        let listing = peer.get("/v1/workers");
        let workers = listing["data"]["workers"].as_array()?.clone();
        (!workers.is_empty()).then_some(workers)
    });
    assert_eq!(registered.len(), 1, "{registered:#?}");
    let capabilities = &registered[0]["capabilities"];
    assert_eq!(
        capabilities["pod_name"],
        pod.name.as_str(),
        "{capabilities}"
    );
    assert_eq!(capabilities["pod_namespace"], NAMESPACE, "{capabilities}");
    assert_eq!(capabilities["implementation"], "rust", "{capabilities}");
    let server_id = registered[0]["worker_id"]
        .as_str()
        .expect("the server assigns a worker_id")
        .to_owned();
    wait_for("the readiness probe to pass", context, || {
        (http_status(readiness.port, &readiness.path) == Some(200)).then_some(())
    });

    peer.post(
        "/v1/training/start",
        &json!({
            "dataset": {"generator": "spiral", "params": {"n_points_per_spiral": 50, "seed": 42}},
            "start_fresh": true,
            "params": {"candidate_pool_size": 8, "max_hidden_units": 2, "output_epochs": 200,
                       "candidate_epochs": 100},
        }),
    );
    let mut run = RunWatch::default();
    let final_state = wait_for("the training to end", context, || {
        worker.assert_running();
        let status = peer.get("/v1/training/status");
        let state = status["data"]["state_machine"]["status"]
            .as_str()?
            .to_owned();
        run.ended(&state).then_some(state)
    });
    assert_ne!(final_state, "FAILED", "{}", context());

    let log = peer.log();
    assert!(
        log.contains(&format!("Worker registered with server ID {server_id}")),
        "no registration of {server_id} in the server log\n{}",
        context()
    );
    let accepted = log
        .lines()
        .filter(|line| {
            line.contains("Accepted result for task") && line.contains(server_id.as_str())
        })
        .count();
    assert!(
        accepted >= 1,
        "no accepted result from {server_id}\n{}",
        context()
    );
    let rejected: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("Result for") && line.contains("rejected"))
        .collect();
    assert!(rejected.is_empty(), "rejected results: {rejected:#?}");

    let stats = peer.get("/v1/workers/stats");
    assert_eq!(stats["data"]["total"], 1, "{stats}");
    assert_eq!(stats["data"]["total_tasks_failed"], 0, "{stats}");
    let completed = stats["data"]["total_tasks_completed"].as_u64().unwrap_or(0);
    assert!(completed >= 1, "{stats}");

    // Stop what this test started, by id: the worker and operator by SIGTERM, the server
    // when `peer` drops.
    let worker_status = worker.terminate();
    assert!(
        worker_status.success(),
        "the worker exited with {worker_status}\n{}",
        context()
    );
    let operator_status = operator.terminate();
    assert!(
        operator_status.success(),
        "the operator exited with {operator_status}"
    );
    runtime.block_on(apiserver.stop());
    drop(peer);
}

fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
