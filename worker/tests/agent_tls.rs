//! wss:// with rustls: an extra CA added to the system roots, mTLS with a required client
//! certificate, certificate rotation between reconnects, and start-up checks of the files.

#[path = "support/server.rs"]
mod server;

use std::path::PathBuf;
use std::time::Duration;

use juniper_cascor_worker::agent::AgentError;
use juniper_cascor_worker::agent::settings::TlsSettings;
use juniper_cascor_worker::tls::{TlsError, validate_tls_files};
use server::{Pki, RunningAgent, StandIn, certificate_mentions, settings};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wss_with_extra_ca_registers() {
    let server_pki = Pki::new("server");
    let standin = StandIn::tls(server_pki.server_config(None)).await;
    let mut agent_settings = settings(&standin.url());
    agent_settings.tls.ca_file = Some(server_pki.ca_file());
    let agent = RunningAgent::start(agent_settings);

    let mut connection = standin.accept().await;
    let register = connection.register("worker-7a0000000001").await;

    assert_eq!(register["type"], "register");
    assert!(connection.client_chain.is_empty());
    assert_eq!(connection.headers.get("x-api-key").unwrap(), "test-token");
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_server_ca_is_retried() {
    let server_pki = Pki::new("server");
    let standin = StandIn::tls(server_pki.server_config(None)).await;
    // Trusts another CA only (plus the system roots), so verification fails.
    let other = Pki::new("other");
    let mut agent_settings = settings(&standin.url());
    agent_settings.tls.ca_file = Some(other.ca_file());
    let agent = RunningAgent::start(agent_settings);

    assert!(standin.accept_failed_tls().await);
    assert!(standin.accept_failed_tls().await);

    let recorded = agent
        .observer
        .snapshot(|recorded| (recorded.registered.len(), recorded.reconnects));
    assert_eq!(recorded.0, 0);
    assert!(recorded.1 >= 1, "{recorded:?}");
    agent.stop().await.unwrap();
}

/// Writes the client certificate `common_name`, issued by `client_pki`, to the files
/// the agent reads.
fn write_client_certificate(client_pki: &Pki, common_name: &str) -> (PathBuf, PathBuf) {
    let issued = client_pki.issue(&["worker.test"], common_name);
    (
        client_pki.write("client.pem", &issued.cert_pem),
        client_pki.write("client-key.pem", &issued.key_pem),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_presents_client_certificate() {
    let server_pki = Pki::new("server");
    let client_pki = Pki::new("client");
    let standin = StandIn::tls(server_pki.server_config(Some(&client_pki))).await;
    let (cert, key) = write_client_certificate(&client_pki, "worker-alpha");
    let mut agent_settings = settings(&standin.url());
    agent_settings.tls = TlsSettings {
        ca_file: Some(server_pki.ca_file()),
        cert_file: Some(cert),
        key_file: Some(key),
    };
    let agent = RunningAgent::start(agent_settings);

    let mut connection = standin.accept().await;
    connection.register("worker-7a0000000002").await;

    assert_eq!(connection.client_chain.len(), 1);
    assert!(certificate_mentions(
        &connection.client_chain[0],
        "worker-alpha"
    ));
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mtls_without_client_certificate_fails() {
    let server_pki = Pki::new("server");
    let client_pki = Pki::new("client");
    let standin = StandIn::tls(server_pki.server_config(Some(&client_pki))).await;
    let mut agent_settings = settings(&standin.url());
    agent_settings.tls.ca_file = Some(server_pki.ca_file());
    let agent = RunningAgent::start(agent_settings);

    // TLS 1.3 reports a missing client certificate after the client finished its side,
    // so the failure shows on the server or as a dropped upgrade; either way no
    // registration happens.
    let _ = standin.accept_failed_tls().await;
    let _ = standin.accept_failed_tls().await;

    assert_eq!(
        agent
            .observer
            .snapshot(|recorded| recorded.registered.len()),
        0
    );
    agent.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_certificate_used_after_reconnect() {
    let server_pki = Pki::new("server");
    let client_pki = Pki::new("client");
    let standin = StandIn::tls(server_pki.server_config(Some(&client_pki))).await;
    let (cert, key) = write_client_certificate(&client_pki, "worker-before-rotation");
    let mut agent_settings = settings(&standin.url());
    agent_settings.tls = TlsSettings {
        ca_file: Some(server_pki.ca_file()),
        cert_file: Some(cert),
        key_file: Some(key),
    };
    let agent = RunningAgent::start(agent_settings);
    let mut connection = standin.accept().await;
    connection.register("worker-7a0000000003").await;
    assert!(certificate_mentions(
        &connection.client_chain[0],
        "worker-before-rotation"
    ));

    // The Secret is rotated, then the connection drops.
    write_client_certificate(&client_pki, "worker-after-rotation");
    connection.close().await;
    let mut connection = standin.accept().await;
    connection.register("worker-7a0000000004").await;

    assert!(certificate_mentions(
        &connection.client_chain[0],
        "worker-after-rotation"
    ));
    assert!(!certificate_mentions(
        &connection.client_chain[0],
        "worker-before-rotation"
    ));
    agent.stop().await.unwrap();
}

#[test]
fn validation_names_missing_file() {
    let missing = PathBuf::from("/nonexistent/ca.pem");
    let settings = TlsSettings {
        ca_file: Some(missing.clone()),
        ..TlsSettings::default()
    };

    let error = validate_tls_files(&settings).unwrap_err();

    assert!(
        matches!(&error, TlsError::Read { path, .. } if path == &missing),
        "{error:?}"
    );
    assert!(error.to_string().contains("/nonexistent/ca.pem"), "{error}");
}

#[test]
fn validation_names_unparsable_files() {
    let pki = Pki::new("files");
    let garbage = pki.write("garbage.pem", "this is not PEM\n");
    let issued = pki.issue(&["worker.test"], "worker");
    let cert = pki.write("cert.pem", &issued.cert_pem);
    let key = pki.write("key.pem", &issued.key_pem);

    let cases = [
        (Some(garbage.clone()), None, None, garbage.clone()),
        (
            None,
            Some(garbage.clone()),
            Some(key.clone()),
            garbage.clone(),
        ),
        (
            None,
            Some(cert.clone()),
            Some(garbage.clone()),
            garbage.clone(),
        ),
        (None, Some(cert.clone()), Some(cert.clone()), cert.clone()),
    ];
    for (ca_file, cert_file, key_file, named) in cases {
        let settings = TlsSettings {
            ca_file,
            cert_file,
            key_file,
        };

        let error = validate_tls_files(&settings).unwrap_err();

        assert!(
            error.to_string().contains(named.to_str().unwrap()),
            "{settings:?}: {error}"
        );
    }
}

#[test]
fn validation_requires_cert_and_key_together() {
    let pki = Pki::new("pair");
    let issued = pki.issue(&["worker.test"], "worker");
    let cert = pki.write("cert.pem", &issued.cert_pem);

    let error = validate_tls_files(&TlsSettings {
        cert_file: Some(cert),
        ..TlsSettings::default()
    })
    .unwrap_err();

    assert!(
        matches!(
            error,
            TlsError::IncompleteClientCertificate {
                given: "certificate"
            }
        ),
        "{error:?}"
    );
}

#[test]
fn validation_accepts_good_files() {
    let pki = Pki::new("good");
    let issued = pki.issue(&["worker.test"], "worker");
    let settings = TlsSettings {
        ca_file: Some(pki.ca_file()),
        cert_file: Some(pki.write("cert.pem", &issued.cert_pem)),
        key_file: Some(pki.write("key.pem", &issued.key_pem)),
    };

    validate_tls_files(&settings).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_rejects_bad_tls_files_at_start() {
    let mut agent_settings = settings("wss://127.0.0.1:9/ws/v1/workers");
    agent_settings.tls.ca_file = Some(PathBuf::from("/nonexistent/extra-ca.pem"));
    let agent = RunningAgent::start(agent_settings);

    let outcome = tokio::time::timeout(Duration::from_secs(60), agent.join())
        .await
        .unwrap();

    assert!(
        matches!(outcome, Err(AgentError::Tls(TlsError::Read { .. }))),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_rejects_non_websocket_url() {
    let agent = RunningAgent::start(settings("http://127.0.0.1:9/ws/v1/workers"));

    let outcome = agent.join().await;

    assert!(
        matches!(outcome, Err(AgentError::InvalidServerUrl { .. })),
        "{outcome:?}"
    );
}
