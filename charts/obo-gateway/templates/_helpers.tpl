{{/* Names and labels of this chart's own resources. */}}

{{- define "obo-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name: release name and chart name, at most 63 characters.
*/}}
{{- define "obo-gateway.fullname" -}}
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

{{- define "obo-gateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "obo-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "obo-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "obo-gateway.labels" -}}
helm.sh/chart: {{ include "obo-gateway.chart" . }}
{{ include "obo-gateway.selectorLabels" . }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "obo-gateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "obo-gateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "obo-gateway.image" -}}
{{- $img := .image -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else -}}
{{- printf "%s:%s" $img.repository (toString ($img.tag | default .defaultTag)) }}
{{- end }}
{{- end }}

{{/*
The seconds of a Go duration string ("15s", "1m30s", "500ms"), as a number.
*/}}
{{- define "obo-gateway.durationSeconds" -}}
{{- $total := 0.0 -}}
{{- range regexFindAll "[0-9.]+(ns|us|µs|ms|s|m|h)" (toString .) -1 -}}
{{- $n := regexFind "^[0-9.]+" . | float64 -}}
{{- $unit := regexReplaceAll "^[0-9.]+" . "" -}}
{{- if eq $unit "h" }}{{ $total = addf $total (mulf $n 3600) }}
{{- else if eq $unit "m" }}{{ $total = addf $total (mulf $n 60) }}
{{- else if eq $unit "s" }}{{ $total = addf $total $n }}
{{- else if eq $unit "ms" }}{{ $total = addf $total (divf $n 1000) }}
{{- else }}{{ $total = addf $total (divf $n 1000000) }}
{{- end -}}
{{- end -}}
{{- $total -}}
{{- end }}

{{/*
The PromQL matchers that select this release's gateway series.
*/}}
{{- define "obo-gateway.promSelector" -}}
{{- if .Values.prometheusRule.selector -}}
{{- .Values.prometheusRule.selector -}}
{{- else -}}
{{- $jobs := list -}}
{{- if .Values.metrics.serviceMonitor.enabled -}}
{{- $jobs = append $jobs (printf "%s-metrics" (include "obo-gateway.fullname" .)) -}}
{{- end -}}
{{- if .Values.metrics.podMonitor.enabled -}}
{{- $jobs = append $jobs (printf "%s/%s" .Release.Namespace (include "obo-gateway.fullname" .)) -}}
{{- end -}}
{{- if not $jobs -}}
{{- fail "prometheusRule: without metrics.serviceMonitor or metrics.podMonitor the alerts cannot tell this release's gateway from other targets in the namespace: enable one, or set prometheusRule.selector (PromQL label matchers such as job=\"my-scrape-job\")" -}}
{{- end -}}
{{- printf "namespace=%q, job=~%q" .Release.Namespace (join "|" $jobs) -}}
{{- end -}}
{{- end }}
