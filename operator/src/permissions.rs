//! Every Kubernetes API call the operator makes, as (API group, resource, verbs).
//!
//! This table is the source for the operator's RBAC rules: the Helm chart's ClusterRole and
//! the kustomize base grant exactly these verbs, and a test compares them. A change to the
//! calls the controller makes must change this table in the same commit.

/// Verbs the operator uses on one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiPermission {
    /// API group; the empty string is the core group.
    pub group: &'static str,
    /// Resource, with `/subresource` for subresources.
    pub resource: &'static str,
    pub verbs: &'static [&'static str],
}

/// Verbs for children written with server-side apply. Apply is a `patch`, and an apply that
/// creates the object is also authorized as `create`. `list` and `watch` feed the
/// controller's watches and the prune step; `delete` removes children no longer built.
const CHILD_VERBS: &[&str] = &["get", "list", "watch", "create", "patch", "delete"];

/// The operator's API calls. See the module documentation.
pub const PERMISSIONS: &[ApiPermission] = &[
    ApiPermission {
        group: "cascor.juniper.dev",
        resource: "cascorworkerpools",
        verbs: &["get", "list", "watch"],
    },
    ApiPermission {
        group: "cascor.juniper.dev",
        resource: "cascorworkerpools/status",
        verbs: &["get", "patch"],
    },
    ApiPermission {
        group: "",
        resource: "serviceaccounts",
        verbs: CHILD_VERBS,
    },
    ApiPermission {
        group: "",
        resource: "secrets",
        verbs: CHILD_VERBS,
    },
    ApiPermission {
        group: "",
        resource: "configmaps",
        verbs: CHILD_VERBS,
    },
    ApiPermission {
        group: "",
        resource: "services",
        verbs: CHILD_VERBS,
    },
    ApiPermission {
        group: "apps",
        resource: "deployments",
        verbs: CHILD_VERBS,
    },
    ApiPermission {
        group: "policy",
        resource: "poddisruptionbudgets",
        verbs: CHILD_VERBS,
    },
    // Not watched: a change to them is picked up at the next periodic reconcile.
    ApiPermission {
        group: "cert-manager.io",
        resource: "certificates",
        verbs: &["get", "list", "create", "patch", "delete"],
    },
    ApiPermission {
        group: "monitoring.coreos.com",
        resource: "servicemonitors",
        verbs: &["get", "list", "create", "patch", "delete"],
    },
    // Checks that the pool CRD, cert-manager and the Prometheus Operator are installed.
    ApiPermission {
        group: "apiextensions.k8s.io",
        resource: "customresourcedefinitions",
        verbs: &["get"],
    },
    // The autoscaler lists a pool's worker pods and sets their deletion cost before a
    // scale-down.
    ApiPermission {
        group: "",
        resource: "pods",
        verbs: &["list", "patch"],
    },
    // kube-runtime's event recorder creates events and patches them into series.
    ApiPermission {
        group: "events.k8s.io",
        resource: "events",
        verbs: &["create", "patch"],
    },
    // Leader election.
    ApiPermission {
        group: "coordination.k8s.io",
        resource: "leases",
        verbs: &["get", "create", "update"],
    },
];

/// Whether the table grants `verb` on `group`/`resource`.
pub fn is_permitted(group: &str, resource: &str, verb: &str) -> bool {
    PERMISSIONS.iter().any(|entry| {
        entry.group == group && entry.resource == resource && entry.verbs.contains(&verb)
    })
}
