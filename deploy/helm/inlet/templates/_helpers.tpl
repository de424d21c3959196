{{/* Names, truncated to 63 characters (DNS labels). */}}
{{- define "inlet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "inlet.fullname" -}}
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

{{- define "inlet.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "inlet.labels" -}}
helm.sh/chart: {{ include "inlet.chart" . }}
{{ include "inlet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "inlet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "inlet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "inlet.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "inlet.secretName" -}}
{{- .Values.secret.existingSecret | default (include "inlet.fullname" .) }}
{{- end }}

{{/*
The settings file every process reads (INLET_CONFIG): the user's config, then what the chart owns on top
(profile, addresses, listeners). Secrets come from the environment, never from this file.
*/}}
{{- define "inlet.settings" -}}
{{- $v := .Values }}
{{- if not $v.kafka.brokers }}{{ fail "kafka.brokers is required (host:port of your Kafka brokers)" }}{{ end }}
{{- if not $v.clickhouse.addrs }}{{ fail "clickhouse.addrs is required (host:port of ClickHouse's native protocol)" }}{{ end }}
{{- $owned := dict
  "profile" "production"
  "kafka" (dict
    "brokers" $v.kafka.brokers
    "partitions" $v.kafka.partitions
    "replication_factor" $v.kafka.replicationFactor)
  "clickhouse" (dict
    "addrs" $v.clickhouse.addrs
    "database" $v.clickhouse.database
    "username" $v.clickhouse.username)
  "ingestor" (dict
    "listen_addr" (printf ":%v" $v.ingestor.port)
    "internal_addr" (printf ":%v" $v.ingestor.internalPort)
    "public_url" (required "publicURL is required (the edge's base URL as senders reach it)" $v.publicURL))
  "pipeline" (dict
    "internal_addr" (printf ":%v" $v.pipeline.internalPort)
    "group" $v.pipeline.group)
  "admin" (dict
    "listen_addr" (printf ":%v" $v.admin.port)
    "internal_addr" (printf ":%v" $v.admin.internalPort)
    "public_base_url" $v.publicURL) }}
{{- toYaml (mustMergeOverwrite (deepCopy $v.config) $owned) }}
{{- end }}

{{/* The settings ConfigMap; called with (dict "ctx" $ "name" NAME "hook" BOOL). */}}
{{- define "inlet.configMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .name }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "inlet.labels" .ctx | nindent 4 }}
  {{- if .hook }}
  annotations:
    {{- include "inlet.hookAnnotations" (dict "weight" "-10") | nindent 4 }}
  {{- end }}
data:
  inlet.yaml: |
    {{- include "inlet.settings" .ctx | nindent 4 }}
{{- end }}

{{/* The chart's Secret; called with (dict "ctx" $ "name" NAME "hook" BOOL). */}}
{{- define "inlet.secret" -}}
{{- $s := .ctx.Values.secret -}}
apiVersion: v1
kind: Secret
metadata:
  name: {{ .name }}
  namespace: {{ .ctx.Release.Namespace }}
  labels:
    {{- include "inlet.labels" .ctx | nindent 4 }}
  {{- if .hook }}
  annotations:
    {{- include "inlet.hookAnnotations" (dict "weight" "-10") | nindent 4 }}
  {{- end }}
type: Opaque
data:
  {{ $s.keys.masterKey }}: {{ required "secret.masterKey is required without secret.existingSecret (inlet keygen)" $s.masterKey | b64enc }}
  {{ $s.keys.postgresDSN }}: {{ required "secret.postgresDSN is required without secret.existingSecret" $s.postgresDSN | b64enc }}
  {{ $s.keys.clickhousePassword }}: {{ $s.clickhousePassword | b64enc | quote }}
  {{ $s.keys.previousMasterKeys }}: {{ $s.previousMasterKeys | b64enc | quote }}
{{- end }}

{{- define "inlet.hookAnnotations" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ .weight | quote }}
helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded
{{- end }}

{{/* Pod annotations that roll the pods when their settings or the chart's Secret change. */}}
{{- define "inlet.checksums" -}}
checksum/config: {{ include "inlet.settings" . | sha256sum }}
{{- if not .Values.secret.existingSecret }}
checksum/secret: {{ include "inlet.secret" (dict "ctx" . "name" "" "hook" false) | sha256sum }}
{{- end }}
{{- end }}

{{/* The environment of every Inlet container; called with (dict "ctx" $ "secret" NAME). */}}
{{- define "inlet.env" -}}
{{- $k := .ctx.Values.secret.keys -}}
- name: INLET_CONFIG
  value: /etc/inlet/inlet.yaml
- name: INLET_SECRETS_MASTER_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ $k.masterKey }}
- name: INLET_POSTGRES_DSN
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ $k.postgresDSN }}
- name: INLET_CLICKHOUSE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ $k.clickhousePassword }}
      optional: true
- name: INLET_SECRETS_PREVIOUS_MASTER_KEYS
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ $k.previousMasterKeys }}
      optional: true
{{- end }}

{{- define "inlet.volumeMounts" -}}
- name: config
  mountPath: /etc/inlet
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* Called with (dict "configMap" NAME). */}}
{{- define "inlet.volumes" -}}
- name: config
  configMap:
    name: {{ .configMap }}
- name: tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}

{{/* Liveness, readiness and start-up probes on the internal listener's named port. */}}
{{- define "inlet.probes" -}}
startupProbe:
  httpGet:
    path: /healthz
    port: internal
  periodSeconds: 2
  failureThreshold: 60
livenessProbe:
  httpGet:
    path: /healthz
    port: internal
  periodSeconds: 10
  timeoutSeconds: 2
  failureThreshold: 3
readinessProbe:
  httpGet:
    path: /readyz
    port: internal
  periodSeconds: 5
  timeoutSeconds: 2
  failureThreshold: 2
{{- end }}
