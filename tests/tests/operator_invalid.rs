//! An invalid pool gets a condition and an Event that name the field, and nothing else is
//! written.

mod operator_support;

use k8s_openapi::api::events::v1::Event;
use kube::api::ListParams;
use operator_support::{Harness, eventually};

const POOL: &str = r#"
apiVersion: cascor.juniper.dev/v1alpha1
kind: CascorWorkerPool
metadata:
  name: broken
  namespace: ml
spec:
  server:
    url: http://x
"#;

const MESSAGE: &str = r#"spec.server.url: must start with ws:// or wss://, got "http://x""#;

#[tokio::test]
async fn invalid_spec_reports_field_and_writes_nothing_else() {
    let harness = Harness::start().await;
    harness.create_pool(POOL).await;

    let status = eventually("the invalid-spec status", || async {
        let status = harness.pools().get("broken").await.ok()?.status?;
        (status.state.as_deref() == Some("Invalid")).then_some(status)
    })
    .await;
    let event = eventually("the InvalidSpec event", || async {
        let events = harness
            .api::<Event>()
            .list(&ListParams::default())
            .await
            .ok()?;
        events
            .items
            .into_iter()
            .find(|event| event.reason.as_deref() == Some("InvalidSpec"))
    })
    .await;

    let degraded = status
        .conditions
        .unwrap()
        .into_iter()
        .find(|condition| condition.type_ == "Degraded")
        .expect("a Degraded condition");
    assert_eq!(degraded.status, "True");
    assert_eq!(degraded.reason, "InvalidSpec");
    assert_eq!(degraded.message, MESSAGE);
    assert_eq!(event.note.as_deref(), Some(MESSAGE));
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    let writes: Vec<String> = harness
        .server
        .operator_writes()
        .iter()
        .map(|write| format!("{} {}", write.verb, write.resource))
        .collect();
    assert_eq!(writes, ["patch cascorworkerpools/status", "create events"]);

    harness.stop().await;
}
