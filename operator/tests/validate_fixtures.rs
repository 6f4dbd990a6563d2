//! Validation of the pool fixtures: every valid fixture passes, every invalid fixture fails
//! with exactly the message in its `# expect:` line.

mod support;

use cascor_operator::validate::validate;

#[test]
fn valid_fixtures_pass() {
    let files = support::yaml_files(&support::fixtures_dir().join("valid"));
    assert!(
        files.len() >= 5,
        "expected the valid fixtures, found {}",
        files.len()
    );
    for path in files {
        let pool = support::load_pool(&path);
        if let Err(error) = validate(&pool) {
            panic!("{} should be valid, got: {error}", path.display());
        }
    }
}

#[test]
fn invalid_fixtures_name_the_field() {
    let files = support::yaml_files(&support::fixtures_dir().join("invalid"));
    assert!(
        files.len() >= 20,
        "expected the invalid fixtures, found {}",
        files.len()
    );
    for path in files {
        let text = std::fs::read_to_string(&path).expect("readable fixture");
        let expected = text
            .lines()
            .find_map(|line| line.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no `# expect:` line", path.display()));
        let pool = support::load_pool(&path);

        let error = validate(&pool).expect_err(&format!("{} should be invalid", path.display()));

        assert_eq!(error.to_string(), expected, "{}", path.display());
        assert_eq!(
            error.errors.len(),
            1,
            "{}: one invalid field",
            path.display()
        );
    }
}

#[test]
fn errors_are_collected_across_fields() {
    let pool = support::load_pool(&support::fixtures_dir().join("invalid/url-scheme.yaml"));
    let mut pool = pool;
    pool.spec.replicas = Some(-2);

    let error = validate(&pool).unwrap_err();

    let fields: Vec<&str> = error.errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["spec.replicas", "spec.server.url"]);
}

#[test]
fn defaults_are_applied() {
    let pool = support::load_pool(&support::fixtures_dir().join("valid/minimal.yaml"));

    let model = validate(&pool).unwrap();

    assert_eq!(model.replicas, 1);
    assert!(!model.paused);
    assert_eq!(model.worker.health_port, 8210);
    assert_eq!(model.worker.heartbeat_interval.as_secs(), 10);
    assert_eq!(model.worker.task_timeout.as_secs(), 3600);
    assert_eq!(
        model.worker.image,
        cascor_operator::validate::DEFAULT_WORKER_IMAGE
    );
    assert_eq!(model.pod.termination_grace_period_seconds, 300);
    assert!(model.pod_disruption_budget.is_some());
    assert!(model.service_monitor.is_none());
}
