{{/*
Chart name, truncated to 63 characters because some Kubernetes name fields are limited
to that length by the DNS label rules.
*/}}
{{- define "cascor-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified name of the release's objects. A release whose name already contains the
chart name uses the release name alone.
*/}}
{{- define "cascor-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "cascor-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels on every object of the release.
*/}}
{{- define "cascor-operator.labels" -}}
helm.sh/chart: {{ include "cascor-operator.chart" . }}
{{ include "cascor-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: juniper-cascor
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the operator pods. They must not change between upgrades, because a
Deployment's selector is immutable.
*/}}
{{- define "cascor-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cascor-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cascor-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cascor-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cascor-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
RBAC rules. They grant exactly the API calls listed in the operator's source
(operator/src/permissions.rs), and a test of the chart compares the two.
Rules on namespaced objects of CascorWorkerPools and their children:
*/}}
{{- define "cascor-operator.poolRules" -}}
- apiGroups: ["cascor.juniper.dev"]
  resources: ["cascorworkerpools"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["cascor.juniper.dev"]
  resources: ["cascorworkerpools/status"]
  verbs: ["get", "patch"]
- apiGroups: [""]
  resources: ["serviceaccounts", "secrets", "configmaps", "services"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["cert-manager.io"]
  resources: ["certificates"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: ["monitoring.coreos.com"]
  resources: ["servicemonitors"]
  verbs: ["get", "list", "create", "patch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/*
Rules on cluster-scoped objects: the operator checks that its CRD, cert-manager's and the
Prometheus Operator's are installed.
*/}}
{{- define "cascor-operator.clusterRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["get"]
{{- end }}

{{/*
Rules for leader election, on the Lease in the release namespace.
*/}}
{{- define "cascor-operator.leaseRules" -}}
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
{{- end }}
