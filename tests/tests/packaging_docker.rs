//! The container builds in deploy/docker. No container engine runs on the test machines, so
//! these tests read the Dockerfiles: the stages, base images, users and library paths that
//! the images depend on.

mod packaging_support;

use packaging_support::workspace_root;

/// One instruction, with continuation lines joined.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    arguments: String,
}

/// A build stage: its `FROM` line and its instructions.
#[derive(Debug)]
struct Stage {
    from: String,
    name: Option<String>,
    instructions: Vec<Instruction>,
}

impl Stage {
    fn arguments(&self, keyword: &str) -> Vec<&str> {
        self.instructions
            .iter()
            .filter(|instruction| instruction.keyword == keyword)
            .map(|instruction| instruction.arguments.as_str())
            .collect()
    }
}

/// The global `ARG`s before the first `FROM`, and the stages.
fn parse_dockerfile(name: &str) -> (Vec<String>, Vec<Stage>) {
    let path = workspace_root().join("deploy/docker").join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("failed to read {}: {error}", path.display()));

    let mut logical_lines = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        if let Some(continued) = trimmed.strip_suffix('\\') {
            current.push_str(continued);
            current.push(' ');
        } else {
            current.push_str(trimmed);
            logical_lines.push(std::mem::take(&mut current));
        }
    }

    let mut global_args = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for line in logical_lines {
        let (keyword, arguments) = line.split_once(' ').unwrap_or((&line, ""));
        let keyword = keyword.to_uppercase();
        let arguments = arguments.trim().to_string();
        if keyword == "FROM" {
            let parts: Vec<&str> = arguments.split_whitespace().collect();
            let name = match parts.as_slice() {
                [_, as_keyword, name] if as_keyword.eq_ignore_ascii_case("as") => {
                    Some(name.to_string())
                }
                [_] => None,
                _ => panic!("{name}: unexpected FROM line {arguments:?}"),
            };
            stages.push(Stage {
                from: parts[0].to_string(),
                name,
                instructions: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.instructions.push(Instruction { keyword, arguments });
        } else {
            assert_eq!(
                keyword, "ARG",
                "{name}: only ARG may come before the first FROM"
            );
            global_args.push(arguments);
        }
    }
    (global_args, stages)
}

fn stage<'a>(stages: &'a [Stage], name: &str) -> &'a Stage {
    stages
        .iter()
        .find(|stage| stage.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no stage named {name}"))
}

/// The torch version that python/requirements.txt pins for the development environment.
fn pinned_torch_version() -> String {
    let requirements =
        std::fs::read_to_string(workspace_root().join("python/requirements.txt")).unwrap();
    requirements
        .lines()
        .find_map(|line| line.trim().strip_prefix("torch=="))
        .expect("python/requirements.txt pins torch==<version>")
        .to_string()
}

#[test]
fn worker_image_variants_and_bases() {
    let (global_args, stages) = parse_dockerfile("worker.Dockerfile");
    assert!(
        global_args.contains(&format!("TORCH_VERSION={}", pinned_torch_version())),
        "{global_args:?}"
    );
    assert!(
        global_args.contains(&"DEBIAN_RELEASE=bookworm".to_string()),
        "{global_args:?}"
    );

    let runtime = stage(&stages, "runtime-base");
    assert_eq!(runtime.from, "debian:${DEBIAN_RELEASE}-slim");
    assert_eq!(stage(&stages, "cpu").from, "runtime-base");
    assert_eq!(stage(&stages, "cuda").from, "runtime-base");
    assert_eq!(
        stages.last().and_then(|stage| stage.name.as_deref()),
        Some("cpu"),
        "a build without --target must produce the CPU image"
    );

    let cpu_wheel = stage(&stages, "torch-cpu").arguments("RUN").join(" ");
    assert!(
        cpu_wheel.contains("--index-url https://download.pytorch.org/whl/cpu"),
        "{cpu_wheel}"
    );
    assert!(
        cpu_wheel.contains("\"torch==${TORCH_VERSION}\""),
        "{cpu_wheel}"
    );
    let cuda_wheel = stage(&stages, "torch-cuda").arguments("RUN").join(" ");
    assert!(
        !cuda_wheel.contains("--index-url"),
        "the CUDA wheel comes from PyPI: {cuda_wheel}"
    );
}

#[test]
fn worker_image_finds_libtorch() {
    let (_, stages) = parse_dockerfile("worker.Dockerfile");

    // The build links against the wheel in /opt/pytorch, whose torch/lib becomes the RPATH.
    let build_env = stage(&stages, "build-base").arguments("ENV").join(" ");
    assert!(build_env.contains("PYTHONPATH=/opt/pytorch"), "{build_env}");
    assert!(build_env.contains("LIBTORCH_USE_PYTORCH=1"), "{build_env}");
    for torch_stage in ["torch-cpu", "torch-cuda"] {
        let install = stage(&stages, torch_stage).arguments("RUN").join(" ");
        assert!(
            install.contains("--target /opt/pytorch"),
            "{torch_stage}: {install}"
        );
    }

    // The runtime has the libraries at the same path, and LD_LIBRARY_PATH names it too.
    for build_stage in ["build-cpu", "build-cuda"] {
        let commands = stage(&stages, build_stage).arguments("RUN").join(" ");
        assert!(
            commands.contains("cp -a /opt/pytorch/torch/lib /rootfs/opt/pytorch/torch/lib"),
            "{build_stage}: {commands}"
        );
        assert!(
            commands.contains("cargo build --release --locked -p juniper-cascor-worker"),
            "{build_stage}: {commands}"
        );
    }
    let cuda_copy = stage(&stages, "build-cuda").arguments("RUN").join(" ");
    assert!(
        cuda_copy.contains("cp -a /opt/pytorch/nvidia /rootfs/opt/pytorch/nvidia"),
        "{cuda_copy}"
    );

    let runtime_env = stage(&stages, "runtime-base").arguments("ENV").join(" ");
    assert!(
        runtime_env.contains("LD_LIBRARY_PATH=/opt/pytorch/torch/lib"),
        "{runtime_env}"
    );
    assert!(
        runtime_env.contains("JUNIPER_CASCOR_WORKER_HEALTH_BIND=0.0.0.0"),
        "{runtime_env}"
    );
    assert_eq!(
        stage(&stages, "cpu").arguments("COPY"),
        vec!["--from=build-cpu /rootfs/ /"]
    );
    assert_eq!(
        stage(&stages, "cuda").arguments("COPY"),
        vec!["--from=build-cuda /rootfs/ /"]
    );
}

#[test]
fn images_run_as_non_root() {
    let (_, worker) = parse_dockerfile("worker.Dockerfile");
    let runtime = stage(&worker, "runtime-base");
    assert_eq!(runtime.arguments("USER"), vec!["1000:1000"]);
    assert_eq!(
        runtime.arguments("ENTRYPOINT"),
        vec!["[\"/usr/local/bin/juniper-cascor-worker\"]"]
    );
    assert_eq!(runtime.arguments("EXPOSE"), vec!["8210"]);

    let (_, operator) = parse_dockerfile("operator.Dockerfile");
    let final_stage = operator.last().expect("stages");
    assert!(
        final_stage
            .from
            .starts_with("gcr.io/distroless/cc-debian12:nonroot"),
        "{}",
        final_stage.from
    );
    assert_eq!(final_stage.arguments("USER"), vec!["65532:65532"]);
    assert_eq!(
        final_stage.arguments("ENTRYPOINT"),
        vec!["[\"/usr/local/bin/cascor-operator\"]"]
    );
    let build = operator[0].arguments("RUN").join(" ");
    assert!(
        build.contains("cargo build --release --locked -p cascor-operator"),
        "{build}"
    );
}

#[test]
fn image_names_match_chart_and_crd() {
    let values =
        std::fs::read_to_string(workspace_root().join("charts/cascor-operator/values.yaml"))
            .unwrap();
    assert!(values.contains("repository: ghcr.io/juniper-platform/cascor-operator"));
    let crd_source = std::fs::read_to_string(workspace_root().join("operator/src/crd.rs")).unwrap();
    assert!(
        crd_source.contains("ghcr.io/juniper-platform/juniper-cascor-worker"),
        "the pool's default worker image moved"
    );

    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    for command in [
        "docker build -f deploy/docker/worker.Dockerfile --target cpu -t ghcr.io/juniper-platform/juniper-cascor-worker:",
        "docker build -f deploy/docker/worker.Dockerfile --target cuda -t ghcr.io/juniper-platform/juniper-cascor-worker:",
        "docker build -f deploy/docker/operator.Dockerfile -t ghcr.io/juniper-platform/cascor-operator:",
    ] {
        assert!(
            readme.contains(command),
            "README.md does not document `{command}...`"
        );
    }
}
