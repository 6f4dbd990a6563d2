//! Leader election on a `coordination.k8s.io/v1` Lease, so that only one operator replica
//! writes at a time.
//!
//! The holder renews the Lease every `renew_interval`. Another replica takes it over once it
//! has seen the same holder and renew time for longer than `lease_duration`, measured on its
//! own monotonic clock, so clock skew between nodes does not shorten a lease. Updates use the
//! Lease's `resourceVersion`, so two replicas cannot both win the same round.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Lease settings.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    /// This replica's identity, written as `holderIdentity`; the pod name in a cluster.
    pub identity: String,
    pub lease_duration: Duration,
    pub renew_interval: Duration,
    pub retry_interval: Duration,
}

/// Why a replica stopped leading.
#[derive(Debug, thiserror::Error)]
pub enum LeadershipError {
    #[error("lost the leader lease {namespace}/{name}: {reason}")]
    Lost {
        namespace: String,
        name: String,
        reason: String,
    },
}

/// The last Lease record this replica saw, and when it first saw it.
struct Observation {
    holder: Option<String>,
    renew_time: Option<String>,
    seen_at: Instant,
}

/// Acquires, renews and releases the leader Lease.
pub struct LeaderElector {
    api: Api<Lease>,
    settings: LeaseSettings,
    observation: Mutex<Option<Observation>>,
}

impl LeaderElector {
    pub fn new(client: Client, settings: LeaseSettings) -> Self {
        Self {
            api: Api::namespaced(client, &settings.namespace),
            settings,
            observation: Mutex::new(None),
        }
    }

    pub fn settings(&self) -> &LeaseSettings {
        &self.settings
    }

    /// Waits until this replica holds the Lease. Returns false when `shutdown` fires first.
    pub async fn acquire(&self, shutdown: &CancellationToken) -> bool {
        let mut announced_standby = false;
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => {
                    info!(
                        lease = %self.settings.name,
                        identity = %self.settings.identity,
                        "acquired the leader lease"
                    );
                    return true;
                }
                Ok(false) => {
                    if !announced_standby {
                        info!(lease = %self.settings.name, "another replica leads; standing by");
                        announced_standby = true;
                    }
                }
                Err(error) => {
                    warn!(lease = %self.settings.name, %error, "leader election request failed; retrying")
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return false,
                () = tokio::time::sleep(self.settings.retry_interval) => {}
            }
        }
    }

    /// Renews the Lease until `shutdown` fires (returns `Ok`) or leadership is lost: another
    /// replica took the Lease, or no renewal succeeded within the lease duration.
    pub async fn hold(&self, shutdown: &CancellationToken) -> Result<(), LeadershipError> {
        let mut last_renewal = Instant::now();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                () = tokio::time::sleep(self.settings.renew_interval) => {}
            }
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renewal = Instant::now(),
                Ok(false) => return Err(self.lost("another replica holds the lease")),
                Err(error) => {
                    warn!(lease = %self.settings.name, %error, "renewing the leader lease failed");
                    if last_renewal.elapsed() >= self.settings.lease_duration {
                        return Err(self.lost("no renewal succeeded within the lease duration"));
                    }
                }
            }
        }
    }

    fn lost(&self, reason: &str) -> LeadershipError {
        LeadershipError::Lost {
            namespace: self.settings.namespace.clone(),
            name: self.settings.name.clone(),
            reason: reason.to_owned(),
        }
    }

    /// Gives the Lease up on shutdown so that a standby replica takes over at once.
    pub async fn release(&self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.settings.name).await else {
            return;
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.settings.identity.as_str()) {
            return;
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => info!(lease = %self.settings.name, "released the leader lease"),
            Err(error) => {
                warn!(lease = %self.settings.name, %error, "releasing the leader lease failed")
            }
        }
    }

    /// One election round. Returns whether this replica holds the Lease afterwards.
    async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = MicroTime(Timestamp::now());
        let duration_seconds =
            i32::try_from(self.settings.lease_duration.as_secs()).unwrap_or(i32::MAX);

        let Some(mut lease) = self.api.get_opt(&self.settings.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.settings.name.clone()),
                    namespace: Some(self.settings.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.settings.identity.clone()),
                    lease_duration_seconds: Some(duration_seconds),
                    acquire_time: Some(now.clone()),
                    renew_time: Some(now),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
                Err(error) => Err(error),
            };
        };

        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec
            .holder_identity
            .clone()
            .filter(|holder| !holder.is_empty());
        let held_by_us = holder.as_deref() == Some(self.settings.identity.as_str());
        if !held_by_us && holder.is_some() && !self.observed_expired(spec).await {
            return Ok(false);
        }

        if !held_by_us {
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        spec.holder_identity = Some(self.settings.identity.clone());
        spec.lease_duration_seconds = Some(duration_seconds);
        spec.renew_time = Some(now);
        match self
            .api
            .replace(&self.settings.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Whether the holder has not renewed for longer than its lease duration, by our clock.
    async fn observed_expired(&self, spec: &LeaseSpec) -> bool {
        let holder = spec.holder_identity.clone();
        let renew_time = spec.renew_time.as_ref().map(|time| time.0.to_string());
        let duration = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(15)).unwrap_or(15),
        );
        let mut observation = self.observation.lock().await;
        let changed = observation
            .as_ref()
            .is_none_or(|seen| seen.holder != holder || seen.renew_time != renew_time);
        if changed {
            *observation = Some(Observation {
                holder,
                renew_time,
                seen_at: Instant::now(),
            });
            return false;
        }
        observation
            .as_ref()
            .is_some_and(|seen| seen.seen_at.elapsed() > duration)
    }
}
