//! Exit statuses and messages of the built binary for help, syntax errors, configuration
//! errors, the unsupported legacy mode and a health port that is already in use.

#[path = "support/cli_standin.rs"]
mod standin;

use std::process::Output;

use standin::worker_command;

/// Runs the binary to completion with a clean worker environment plus `env`.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = worker_command();
    command.args(args);
    command.envs(env.iter().copied());
    command.output().expect("run the worker binary")
}

/// Flags, environment and the expected message of one configuration error case.
type ConfigCase<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

fn stderr_of(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn help_exits_zero() {
    let output = run(&["--help"], &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);

    assert_eq!(output.status.code(), Some(0));
    for flag in [
        "--server-url",
        "--auth-token",
        "--api-key",
        "--heartbeat-interval",
        "--idle-heartbeat-interval",
        "--task-timeout",
        "--tls-ca",
        "--device",
        "--threads",
        "--health-bind",
        "--health-port",
        "--log-level",
        "--log-format",
        "--legacy",
    ] {
        assert!(stdout.contains(flag), "help lacks {flag}:\n{stdout}");
    }
}

#[test]
fn syntax_errors_exit_two() {
    let cases: &[&[&str]] = &[
        &["--auth", "x"],
        &["--no-such-flag"],
        &["--heartbeat-interval", "soon"],
        &["--log-level", "info"],
        &["--mp-context", "thread"],
    ];

    for args in cases {
        let output = run(args, &[]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "arguments {args:?}: {}",
            stderr_of(&output)
        );
    }
}

#[test]
fn legacy_mode_exits_two_with_reason() {
    let output = run(&["--legacy", "--authkey", "k"], &[]);
    let stderr = stderr_of(&output);

    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--legacy is not supported"), "{stderr}");
    assert!(stderr.contains("pickled Python objects"), "{stderr}");
    assert!(stderr.contains("juniper-cascor source tree"), "{stderr}");
}

#[test]
fn configuration_errors_exit_one() {
    let cases: &[ConfigCase] = &[
        (
            &[],
            &[],
            "server_url is required — set JUNIPER_CASCOR_WORKER_SERVER_URL or pass --server-url",
        ),
        (
            &["--server-url", "http://127.0.0.1:8200/ws/v1/workers"],
            &[],
            "server_url must start with ws:// or wss://, got: http://127.0.0.1:8200/ws/v1/workers",
        ),
        // A unique prefix selects --server-url.
        (
            &["--server", "tcp://127.0.0.1:1"],
            &[],
            "server_url must start with ws:// or wss://, got: tcp://127.0.0.1:1",
        ),
        (
            &[
                "--server-url",
                "ws://127.0.0.1:1/ws/v1/workers",
                "--heartbeat-interval",
                "nan",
            ],
            &[],
            "heartbeat_interval must be a finite number, got nan",
        ),
        (
            &[
                "--server-url",
                "ws://127.0.0.1:1/ws/v1/workers",
                "--heartbeat-interval",
                "-2",
            ],
            &[],
            "heartbeat_interval must be > 0, got -2.0",
        ),
        (
            &["--server-url", "ws://127.0.0.1:1/ws/v1/workers"],
            &[("JUNIPER_CASCOR_WORKER_TASK_TIMEOUT", "soon")],
            "invalid value \"soon\" in environment variable JUNIPER_CASCOR_WORKER_TASK_TIMEOUT",
        ),
        (
            &[
                "--server-url",
                "ws://127.0.0.1:1/ws/v1/workers",
                "--health-port",
                "0",
            ],
            &[],
            "health_port must be 1-65535, got 0",
        ),
    ];

    for (args, env, message) in cases {
        let output = run(args, env);
        let stderr = stderr_of(&output);
        assert_eq!(
            output.status.code(),
            Some(1),
            "arguments {args:?}: {stderr}"
        );
        assert!(
            stderr.contains(message),
            "arguments {args:?}: expected {message:?} in:\n{stderr}"
        );
    }
}

#[test]
fn health_port_in_use_fails_start_up() {
    let occupied = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let port = occupied.local_addr().expect("local address").port();

    let output = run(
        &["--health-port", &port.to_string(), "--device", "cpu"],
        &[
            ("CASCOR_SERVER_URL", "ws://127.0.0.1:1/ws/v1/workers"),
            ("CASCOR_AUTH_TOKEN", ""),
            ("CASCOR_API_KEY", "token-from-old-name"),
        ],
    );
    let stderr = stderr_of(&output);

    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "failed to bind the health server to 127.0.0.1:{port}"
        )),
        "{stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("address already in use"),
        "{stderr}"
    );
    for name in ["CASCOR_SERVER_URL", "CASCOR_AUTH_TOKEN", "CASCOR_API_KEY"] {
        let warning = format!("{name} is deprecated");
        let count = stderr
            .lines()
            .filter(|line| line.contains(&warning))
            .count();
        assert_eq!(count, 1, "warnings for {name} in:\n{stderr}");
    }
    assert!(!stderr.contains("token-from-old-name"), "{stderr}");
}
