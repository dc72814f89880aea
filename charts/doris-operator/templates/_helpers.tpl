{{/*
The app name: the chart's, or nameOverride. The pods' app.kubernetes.io/name
label, which the Deployment and the metrics Service select on.
*/}}
{{- define "doris-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
The name of the release's objects: fullnameOverride; else the release name
when it contains the app name (`helm install doris-operator` gives the names
deploy/ uses); else <release>-<name>.
*/}}
{{- define "doris-operator.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "doris-operator.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The labels every object of the release carries, as deploy/'s do. */}}
{{- define "doris-operator.labels" -}}
app.kubernetes.io/name: {{ include "doris-operator.name" . }}
{{- end -}}

{{- define "doris-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "doris-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The rules of the operator's ClusterRole (or Role, with watchNamespace): the
verbs it uses, as deploy/10-rbac.yaml lists them, then rbac.extraRules.
*/}}
{{- define "doris-operator.rules" -}}
# The clusters it runs, and their status.
- apiGroups: [doris.selectdb.com]
  resources: [dorisclusters]
  verbs: [get, list, watch, patch]
- apiGroups: [doris.selectdb.com]
  resources: [dorisclusters/status]
  verbs: [patch]
- apiGroups: [disaggregated.cluster.doris.com]
  resources: [dorisdisaggregatedclusters]
  verbs: [get, list, watch, patch]
- apiGroups: [disaggregated.cluster.doris.com]
  resources: [dorisdisaggregatedclusters/status]
  verbs: [patch]
# What it makes (server-side apply), and removes when a part goes.
- apiGroups: [apps]
  resources: [statefulsets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services, configmaps]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors]
  verbs: [get, list, watch, create, patch, delete]
# Data volumes grow and, when a cluster asks, go with it.
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, list, patch, delete]
# Status comes from the pods; rollouts mark a pod draining, then restart it.
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, patch, delete]
# The FE's management password and TLS certificates.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
# What it tells users, and the StatefulSet controller's FailedCreate Events.
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [list, watch]
# The Pod Security level of a cluster's namespace decides how hosts are tuned.
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
{{- with .Values.rbac.extraRules }}
{{ toYaml . }}
{{- end }}
{{- end -}}
