{{/*
Named templates that add the obo-gateway sidecar to a pod. This chart's Deployment uses them,
and another chart can use them too (with this chart as a dependency, templatesOnly: true).

Every template takes one argument, a dict:
  root     the top-level context (.) of the calling chart
  gateway  the gateway values, with the keys of this chart's .Values.gateway; from a parent
           chart: (index .Values "obo-gateway").gateway, which includes this chart's defaults
  name     optional base name of the ConfigMap and the default credential Secret;
           default: the full name of the calling release

In a parent chart's Deployment:

  {{- $gw := dict "root" . "gateway" (index .Values "obo-gateway").gateway }}
  template:
    metadata:
      labels:
        {{- include "obo-gateway.sidecarPodLabels" $gw | nindent 8 }}
      annotations:
        {{- include "obo-gateway.sidecarPodAnnotations" $gw | nindent 8 }}
    spec:
      {{- if include "obo-gateway.sidecarNative" $gw }}
      initContainers:
        {{- include "obo-gateway.sidecar" $gw | nindent 8 }}
      {{- end }}
      containers:
        - name: app
          ...
        {{- if not (include "obo-gateway.sidecarNative" $gw) }}
        {{- include "obo-gateway.sidecar" $gw | nindent 8 }}
        {{- end }}
      volumes:
        {{- include "obo-gateway.sidecarVolumes" $gw | nindent 8 }}

and in a template of its own: {{ include "obo-gateway.sidecarConfigMap" $gw }}. With workload
identity, the ServiceAccount needs {{ include "obo-gateway.sidecarServiceAccountAnnotations" $gw }}.
*/}}

{{/* The gateway version this chart is released with: Chart.yaml's appVersion (a test checks). */}}
{{- define "obo-gateway.appVersion" -}}
0.1.0
{{- end }}

{{/* Fixed paths inside the gateway container. */}}
{{- define "obo-gateway.configDir" -}}/etc/obo-gateway{{- end }}
{{- define "obo-gateway.secretDir" -}}/var/run/secrets/obo-gateway{{- end }}
{{- define "obo-gateway.certDir" -}}/var/run/secrets/obo-gateway/cert{{- end }}

{{- define "obo-gateway.sidecarBaseName" -}}
{{- .name | default (include "obo-gateway.fullname" .root) | trunc 52 | trimSuffix "-" }}
{{- end }}

{{- define "obo-gateway.sidecarConfigMapName" -}}
{{- printf "%s-config" (include "obo-gateway.sidecarBaseName" .) }}
{{- end }}

{{- define "obo-gateway.sidecarCredentialType" -}}
{{- $type := dig "credential" "type" "secret" .gateway -}}
{{- if not (has $type (list "secret" "certificate" "workloadIdentity")) -}}
{{- fail (printf "gateway.credential.type: %q is not one of secret, certificate, workloadIdentity" $type) -}}
{{- end -}}
{{- $type -}}
{{- end }}

{{- define "obo-gateway.sidecarSecretName" -}}
{{- $type := include "obo-gateway.sidecarCredentialType" . -}}
{{- dig "credential" $type "existingSecret" "" .gateway | default (printf "%s-credential" (include "obo-gateway.sidecarBaseName" .)) }}
{{- end }}

{{- define "obo-gateway.sidecarTokenPath" -}}
{{- dig "credential" "workloadIdentity" "tokenPath" "/var/run/secrets/azure/tokens/azure-identity-token" .gateway }}
{{- end }}

{{- define "obo-gateway.sidecarProjectsToken" -}}
{{- if and (eq (include "obo-gateway.sidecarCredentialType" .) "workloadIdentity") (dig "credential" "workloadIdentity" "projectToken" true .gateway) -}}
true
{{- end -}}
{{- end }}

{{- define "obo-gateway.sidecarContainerName" -}}
{{- .gateway.containerName | default "obo-gateway" }}
{{- end }}

{{/*
GOMEMLIMIT for a container memory limit (a Kubernetes quantity such as 256Mi, 1G or 268435456):
nine tenths of it, in bytes.
*/}}
{{- define "obo-gateway.memLimit" -}}
{{- if or (kindIs "float64" .) (kindIs "int64" .) (kindIs "int" .) -}}
{{- /* a plain number of bytes, as a values file's YAML number arrives */ -}}
{{- mulf (float64 .) 0.9 | floor | int64 -}}
{{- else -}}
{{- $q := toString . -}}
{{- $m := regexFind "^[0-9]+(\\.[0-9]+)?" $q -}}
{{- $unit := trimPrefix $m $q -}}
{{- $units := dict "" 1.0 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 -}}
{{- if or (not $m) (not (hasKey $units $unit)) -}}
{{- fail (printf "gateway.resources.limits.memory: %q is not a quantity the chart reads (a number with k, M, G, T, Ki, Mi, Gi or Ti)" $q) -}}
{{- end -}}
{{- mulf (float64 $m) (get $units $unit) 0.9 | floor | int64 -}}
{{- end -}}
{{- end }}

{{/*
The port of a host:port address; fails unless it is a port from 1 to 65535.
*/}}
{{- define "obo-gateway.addrPort" -}}
{{- $port := regexFind "[0-9]+$" (toString .addr) | default "0" | atoi -}}
{{- if or (lt $port 1) (gt $port 65535) -}}
{{- fail (printf "gateway.config.%s: %q must be host:port with a port from 1 to 65535" .key (toString .addr)) -}}
{{- end -}}
{{- $port -}}
{{- end }}

{{/*
The host of a host:port address ("" for ":9090").
*/}}
{{- define "obo-gateway.addrHost" -}}
{{- regexReplaceAll ":[0-9]*$" (toString .) "" -}}
{{- end }}

{{/*
"true" when the host of a host:port address is a loopback name the gateway accepts.
*/}}
{{- define "obo-gateway.isLoopbackAddr" -}}
{{- if has (include "obo-gateway.addrHost" .) (list "127.0.0.1" "localhost" "[::1]") }}true{{ end -}}
{{- end }}

{{- define "obo-gateway.sidecarPort" -}}
{{- $listen := dig "config" "listen" "127.0.0.1:8080" .gateway | toString -}}
{{- if not (include "obo-gateway.isLoopbackAddr" $listen) -}}
{{- fail (printf "gateway.config.listen: %q must be on the loopback address (127.0.0.1, [::1] or localhost): only the application in the same pod may call the gateway" $listen) -}}
{{- end -}}
{{- include "obo-gateway.addrPort" (dict "addr" $listen "key" "listen") -}}
{{- end }}

{{- define "obo-gateway.sidecarAdminPort" -}}
{{- $admin := dig "config" "admin_listen" ":9090" .gateway | toString -}}
{{- if include "obo-gateway.isLoopbackAddr" $admin -}}
{{- fail (printf "gateway.config.admin_listen: %q is on the loopback address, where the kubelet's probes and Prometheus cannot reach it: use :9090 (all addresses)" $admin) -}}
{{- end -}}
{{- include "obo-gateway.addrPort" (dict "addr" $admin "key" "admin_listen") -}}
{{- end }}

{{/*
The URL the application calls the gateway on, without a trailing slash: the loopback address
gateway.config.listen names (127.0.0.1 for localhost), and its port.
*/}}
{{- define "obo-gateway.sidecarURL" -}}
{{- $port := include "obo-gateway.sidecarPort" . -}}
{{- $host := include "obo-gateway.addrHost" (dig "config" "listen" "127.0.0.1:8080" .gateway) -}}
{{- /* The gateway binds one address for localhost, the IPv4 one. */ -}}
{{- printf "http://%s:%s" (eq $host "localhost" | ternary "127.0.0.1" $host) $port }}
{{- end }}

{{/*
"true" when the gateway runs as a native sidecar (an init container with restartPolicy: Always),
"" when it runs as a classic second container. gateway.nativeSidecar: auto (the default, also when
unset) picks native on Kubernetes 1.29 and later, where native sidecars are on by default; true
forces it and fails the render on an older version (the gateway would be an init container that
never ends, and the application would never start); false forces the classic container.
*/}}
{{- define "obo-gateway.sidecarNative" -}}
{{- $mode := .gateway.nativeSidecar -}}
{{- if kindIs "invalid" $mode }}{{ $mode = "auto" }}{{ end -}}
{{- $kube := .root.Capabilities.KubeVersion.Version -}}
{{- $supported := semverCompare ">=1.29.0-0" $kube -}}
{{- if eq (toString $mode) "auto" -}}
{{- if $supported }}true{{ end -}}
{{- else if not (kindIs "bool" $mode) -}}
{{- fail (printf "gateway.nativeSidecar: %q is not one of auto, true, false" (toString $mode)) -}}
{{- else if $mode -}}
{{- if not $supported -}}
{{- fail (printf "gateway.nativeSidecar=true needs Kubernetes 1.29 or later, not %s: before 1.29 native sidecars are off by default, the gateway would be an init container that never ends and the application would never start. Use auto or false, or give helm template the cluster's version with --kube-version" $kube) -}}
{{- end -}}
true
{{- end -}}
{{- end }}

{{/*
The gateway's shutdown_delay: gateway.config.shutdown_delay when set, otherwise 5s for a classic
sidecar, which gets SIGTERM with the application and keeps serving while the application finishes
its requests, and nothing for a native one, which is stopped after the application has exited.
*/}}
{{- define "obo-gateway.sidecarShutdownDelay" -}}
{{- $cfg := .gateway.config | default dict -}}
{{- if hasKey $cfg "shutdown_delay" -}}
{{- $cfg.shutdown_delay -}}
{{- else if not (include "obo-gateway.sidecarNative" .) -}}
5s
{{- end -}}
{{- end }}

{{/*
The gateway's configuration file: gateway.config with the client credential keys of
gateway.credential.type.
*/}}
{{- define "obo-gateway.sidecarConfig" -}}
{{- $cfg := deepCopy (.gateway.config | default dict) -}}
{{- $client := $cfg.client | default dict -}}
{{- range $key := list "secret" "secret_file" "certificate" "assertion_file" -}}
{{- if hasKey $client $key -}}
{{- fail (printf "gateway.config.client.%s: the chart sets the credential from gateway.credential; remove it" $key) -}}
{{- end -}}
{{- end -}}
{{- $type := include "obo-gateway.sidecarCredentialType" . -}}
{{- if eq $type "secret" -}}
{{- $_ := set $client "secret_file" (printf "%s/client-secret" (include "obo-gateway.secretDir" .)) -}}
{{- else if eq $type "certificate" -}}
{{- $certDir := include "obo-gateway.certDir" . -}}
{{- $_ := set $client "certificate" (dict
      "file" (printf "%s/tls.crt" $certDir)
      "key_file" (printf "%s/tls.key" $certDir)
      "send_x5c" (dig "credential" "certificate" "sendX5c" true .gateway)) -}}
{{- else -}}
{{- $_ := set $client "assertion_file" (include "obo-gateway.sidecarTokenPath" .) -}}
{{- end -}}
{{- $_ := set $cfg "client" $client -}}
{{- if not (hasKey $cfg "shutdown_delay") -}}
{{- with include "obo-gateway.sidecarShutdownDelay" . -}}
{{- $_ := set $cfg "shutdown_delay" . -}}
{{- end -}}
{{- end -}}
{{- $redis := .gateway.redis | default dict -}}
{{- if $redis.enabled -}}
{{- $cache := $cfg.cache | default dict -}}
{{- if hasKey $cache "redis" -}}
{{- fail "gateway.config.cache.redis: the chart sets it from gateway.redis; remove it" -}}
{{- end -}}
{{- if not $redis.url -}}
{{- fail "gateway.redis.url: required when gateway.redis.enabled" -}}
{{- end -}}
{{- $dir := include "obo-gateway.redisDir" . -}}
{{- $r := dict "url" $redis.url "encryption_key_file" (printf "%s/encryption-keys" $dir) -}}
{{- if $redis.passwordKey -}}
{{- $_ := set $r "password_file" (printf "%s/password" $dir) -}}
{{- end -}}
{{- with $redis.username }}{{ $_ := set $r "username" . }}{{ end -}}
{{- if $redis.cluster }}{{ $_ := set $r "cluster" true }}{{ end -}}
{{- with $redis.keyPrefix }}{{ $_ := set $r "key_prefix" . }}{{ end -}}
{{- with $redis.timeout }}{{ $_ := set $r "timeout" . }}{{ end -}}
{{- $_ := set $cache "redis" $r -}}
{{- $_ := set $cfg "cache" $cache -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end }}

{{- define "obo-gateway.redisDir" -}}/var/run/secrets/obo-gateway/redis{{- end }}

{{- define "obo-gateway.sidecarConfigChecksum" -}}
{{- include "obo-gateway.sidecarConfig" . | sha256sum -}}
{{- end }}

{{/*
The ConfigMap holding config.yaml.
*/}}
{{- define "obo-gateway.sidecarConfigMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "obo-gateway.sidecarConfigMapName" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    app.kubernetes.io/name: obo-gateway
    app.kubernetes.io/instance: {{ .root.Release.Name }}
    app.kubernetes.io/component: gateway-config
    app.kubernetes.io/managed-by: {{ .root.Release.Service }}
data:
  config.yaml: |
    # obo-gateway configuration, rendered by the obo-gateway chart from gateway.config and
    # gateway.credential.
    {{- include "obo-gateway.sidecarConfig" . | nindent 4 }}
{{- end }}

{{/*
Pod labels the sidecar needs: the workload identity webhook's, only when the webhook mounts the
gateway's token (projectToken: false). The webhook serves every container of a labelled pod but
those it is told to skip, so with the token projected by the chart the pod is left unlabelled and
the application container does not receive API A's federated credential.
*/}}
{{- define "obo-gateway.sidecarPodLabels" -}}
{{- if and (eq (include "obo-gateway.sidecarCredentialType" .) "workloadIdentity") (not (include "obo-gateway.sidecarProjectsToken" .)) -}}
azure.workload.identity/use: "true"
{{- end -}}
{{- end }}

{{/*
Pod annotations the sidecar needs: with gateway.reload false, the checksum of its configuration,
so that a change rolls the pods (with reload, the gateway applies the changed ConfigMap itself);
and the workload identity webhook's skip list when the chart projects the token.
*/}}
{{- define "obo-gateway.sidecarPodAnnotations" -}}
{{- if not (include "obo-gateway.sidecarReload" .) }}
checksum/obo-gateway-config: {{ include "obo-gateway.sidecarConfigChecksum" . }}
{{- end }}
{{- with include "obo-gateway.sidecarWorkloadIdentityAnnotations" . }}
{{ . }}
{{- end }}
{{- end }}

{{/*
"true" when the gateway reloads its configuration (gateway.reload, default true).
*/}}
{{- define "obo-gateway.sidecarReload" -}}
{{- if or (not (hasKey .gateway "reload")) .gateway.reload }}true{{ end -}}
{{- end }}

{{- define "obo-gateway.sidecarWorkloadIdentityAnnotations" -}}
{{- if include "obo-gateway.sidecarProjectsToken" . -}}
azure.workload.identity/skip-containers: {{ include "obo-gateway.sidecarContainerName" . }}
{{- end -}}
{{- end }}

{{/*
ServiceAccount annotations the sidecar needs (workload identity).
*/}}
{{- define "obo-gateway.sidecarServiceAccountAnnotations" -}}
{{- if eq (include "obo-gateway.sidecarCredentialType" .) "workloadIdentity" -}}
{{- $wi := dig "credential" "workloadIdentity" dict .gateway -}}
azure.workload.identity/client-id: {{ $wi.clientId | default (dig "config" "client" "id" "" .gateway) | quote }}
{{- if $wi.tenantId }}
azure.workload.identity/tenant-id: {{ $wi.tenantId | quote }}
{{- end }}
{{- end -}}
{{- end }}

{{/*
The sidecar container, as one list item for initContainers: when obo-gateway.sidecarNative says
"true", for containers: otherwise.
*/}}
{{- define "obo-gateway.sidecar" -}}
{{- $g := .gateway -}}
{{- $name := include "obo-gateway.sidecarContainerName" . -}}
{{- $type := include "obo-gateway.sidecarCredentialType" . -}}
{{- $image := dict "image" $g.image "defaultTag" (include "obo-gateway.appVersion" .) -}}
{{- $probes := $g.probes | default dict -}}
- name: {{ $name }}
  image: {{ include "obo-gateway.image" $image | quote }}
  imagePullPolicy: {{ $g.image.pullPolicy | default "IfNotPresent" }}
  {{- if include "obo-gateway.sidecarNative" . }}
  restartPolicy: Always
  {{- end }}
  args:
    - serve
    - --config
    - {{ include "obo-gateway.configDir" . }}/config.yaml
  {{- $memLimit := dig "resources" "limits" "memory" "" $g }}
  {{- if or $memLimit $g.env }}
  env:
    {{- if $memLimit }}
    # The collector's soft limit, nine tenths of the container's: it works harder as the heap
    # nears the limit, before the kernel's OOM killer would act.
    - name: GOMEMLIMIT
      value: {{ include "obo-gateway.memLimit" $memLimit | quote }}
    {{- end }}
    {{- with $g.env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- end }}
  ports:
    - name: gateway
      containerPort: {{ include "obo-gateway.sidecarPort" . }}
      protocol: TCP
    - name: gateway-admin
      containerPort: {{ include "obo-gateway.sidecarAdminPort" . }}
      protocol: TCP
  startupProbe:
    httpGet:
      path: /healthz
      port: gateway-admin
    {{- with $probes.startup }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: gateway-admin
    {{- with $probes.liveness }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: gateway-admin
    {{- with $probes.readiness }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $g.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $g.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  volumeMounts:
    - name: obo-gateway-config
      mountPath: {{ include "obo-gateway.configDir" . }}
      readOnly: true
    {{- if eq $type "secret" }}
    - name: obo-gateway-credential
      mountPath: {{ include "obo-gateway.secretDir" . }}
      readOnly: true
    {{- else if eq $type "certificate" }}
    - name: obo-gateway-credential
      mountPath: {{ include "obo-gateway.certDir" . }}
      readOnly: true
    {{- else if include "obo-gateway.sidecarProjectsToken" . }}
    - name: obo-gateway-azure-identity-token
      mountPath: {{ include "obo-gateway.sidecarTokenPath" . | dir }}
      readOnly: true
    {{- end }}
    {{- if dig "redis" "enabled" false .gateway }}
    - name: obo-gateway-redis
      mountPath: {{ include "obo-gateway.redisDir" . }}
      readOnly: true
    {{- end }}
{{- end }}

{{/*
The sidecar's volumes, as list items for volumes:.
*/}}
{{- define "obo-gateway.sidecarVolumes" -}}
{{- $type := include "obo-gateway.sidecarCredentialType" . -}}
- name: obo-gateway-config
  configMap:
    name: {{ include "obo-gateway.sidecarConfigMapName" . }}
{{- if eq $type "secret" }}
- name: obo-gateway-credential
  secret:
    secretName: {{ include "obo-gateway.sidecarSecretName" . }}
    defaultMode: 0444
    items:
      - key: {{ dig "credential" "secret" "key" "client-secret" .gateway }}
        path: client-secret
{{- else if eq $type "certificate" }}
- name: obo-gateway-credential
  secret:
    secretName: {{ include "obo-gateway.sidecarSecretName" . }}
    defaultMode: 0444
    items:
      - key: {{ dig "credential" "certificate" "certKey" "tls.crt" .gateway }}
        path: tls.crt
      - key: {{ dig "credential" "certificate" "keyKey" "tls.key" .gateway }}
        path: tls.key
{{- else if include "obo-gateway.sidecarProjectsToken" . }}
- name: obo-gateway-azure-identity-token
  projected:
    defaultMode: 0444
    sources:
      - serviceAccountToken:
          audience: {{ dig "credential" "workloadIdentity" "audience" "api://AzureADTokenExchange" .gateway }}
          expirationSeconds: {{ dig "credential" "workloadIdentity" "expirationSeconds" 3600 .gateway | int }}
          path: {{ include "obo-gateway.sidecarTokenPath" . | base }}
{{- end }}
{{- $redis := .gateway.redis | default dict }}
{{- if $redis.enabled }}
- name: obo-gateway-redis
  secret:
    secretName: {{ required "gateway.redis.existingSecret: the Secret holding the Redis encryption keys is required" $redis.existingSecret }}
    defaultMode: 0444
    items:
      - key: {{ $redis.encryptionKeysKey | default "encryption-keys" }}
        path: encryption-keys
      {{- with $redis.passwordKey }}
      - key: {{ . }}
        path: password
      {{- end }}
{{- end }}
{{- end }}
