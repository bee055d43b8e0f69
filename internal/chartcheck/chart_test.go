package chartcheck

import (
	"cmp"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// Paths and names the chart promises (README, NOTES.txt, the Dockerfile's CMD).
const (
	gatewayContainer = "obo-gateway"
	configDir        = "/etc/obo-gateway"
	configFile       = configDir + "/config.yaml"
	secretFile       = "/var/run/secrets/obo-gateway/client-secret"
	certDir          = "/var/run/secrets/obo-gateway/cert"
	tokenFile        = "/var/run/secrets/azure/tokens/azure-identity-token"
	nonRootUID       = 65532
	wiUseLabel       = "azure.workload.identity/use"
	wiClientIDAnno   = "azure.workload.identity/client-id"
	wiSkipAnno       = "azure.workload.identity/skip-containers"
	checksumAnno     = "checksum/config"
	monitoringAPI    = "monitoring.coreos.com/v1"
)

// chartCase is one way to render the chart.
type chartCase struct {
	name   string
	values []string // values files, relative to the chart
	sets   []string // --set values
	// credential is the expected gateway.credential.type.
	credential string
	// native is whether the gateway is expected as a native sidecar.
	native bool
	// secretName is the Secret the credential is expected to come from.
	secretName string
	// kube is the --kube-version; "" for kubeVersion.
	kube string
}

// kubeVersion returns the --kube-version of the case.
func (tc chartCase) kubeVersion() string {
	if tc.kube == "" {
		return kubeVersion
	}
	return tc.kube
}

var chartCases = []chartCase{
	{name: "default values", credential: "secret", native: true, secretName: "release-obo-gateway-credential"},
	{name: "examples/secret.yaml", values: []string{"examples/secret.yaml"}, credential: "secret", native: true, secretName: "api-a-obo-credential"},
	{name: "examples/certificate.yaml", values: []string{"examples/certificate.yaml"}, credential: "certificate", native: true, secretName: "api-a-obo-certificate"},
	{name: "examples/workload-identity.yaml", values: []string{"examples/workload-identity.yaml"}, credential: "workloadIdentity", native: true},
	// gateway.nativeSidecar: auto picks by the Kubernetes version, true and false force it.
	{name: "default values, Kubernetes 1.20: classic sidecar", kube: "1.20.0", credential: "secret", native: false, secretName: "release-obo-gateway-credential"},
	{name: "secret, Kubernetes 1.28: classic sidecar", kube: "1.28.0", values: []string{"examples/secret.yaml"},
		credential: "secret", native: false, secretName: "api-a-obo-credential"},
	{name: "secret, Kubernetes 1.29: native sidecar", kube: "1.29.0", values: []string{"examples/secret.yaml"},
		credential: "secret", native: true, secretName: "api-a-obo-credential"},
	{name: "secret, Kubernetes 1.30 of a cloud: native sidecar", kube: "v1.30.4-gke.1348000", values: []string{"examples/secret.yaml"},
		credential: "secret", native: true, secretName: "api-a-obo-credential"},
	{name: "workload identity, Kubernetes 1.20: classic sidecar", kube: "1.20.0", values: []string{"examples/workload-identity.yaml"},
		credential: "workloadIdentity", native: false},
	{name: "secret, native sidecar forced", values: []string{"examples/secret.yaml"}, sets: []string{"gateway.nativeSidecar=true"},
		credential: "secret", native: true, secretName: "api-a-obo-credential"},
	{name: "secret, classic sidecar forced", values: []string{"examples/secret.yaml"}, sets: []string{"gateway.nativeSidecar=false"},
		credential: "secret", native: false, secretName: "api-a-obo-credential"},
	{name: "certificate, classic sidecar forced on Kubernetes 1.20", kube: "1.20.0", values: []string{"examples/certificate.yaml"},
		sets: []string{"gateway.nativeSidecar=false"}, credential: "certificate", native: false, secretName: "api-a-obo-certificate"},
	{name: "secret, reload off", values: []string{"examples/secret.yaml"}, sets: []string{"gateway.reload=false"},
		credential: "secret", native: true, secretName: "api-a-obo-credential"},
	{name: "workload identity, token mounted by the webhook", values: []string{"examples/workload-identity.yaml"},
		sets: []string{"gateway.credential.workloadIdentity.projectToken=false"}, credential: "workloadIdentity", native: true},
	{name: "secret, gateway on the IPv6 loopback", values: []string{"examples/secret.yaml"}, sets: []string{"gateway.config.listen=[::1]:8080"},
		credential: "secret", native: true, secretName: "api-a-obo-credential"},
	{name: "secret, gateway on localhost", values: []string{"examples/secret.yaml"}, sets: []string{"gateway.config.listen=localhost:8080"},
		credential: "secret", native: true, secretName: "api-a-obo-credential"},
}

// gatewayConfig is what the tests read of the rendered config.yaml.
type gatewayConfig struct {
	Listen          string `json:"listen"`
	AdminListen     string `json:"admin_listen"`
	ShutdownTimeout string `json:"shutdown_timeout"`
	ShutdownDelay   string `json:"shutdown_delay"`
	Client          struct {
		ID          string `json:"id"`
		Secret      string `json:"secret"`
		SecretFile  string `json:"secret_file"`
		Certificate *struct {
			File    string `json:"file"`
			KeyFile string `json:"key_file"`
			SendX5c *bool  `json:"send_x5c"`
		} `json:"certificate"`
		AssertionFile string `json:"assertion_file"`
	} `json:"client"`
	Routes []struct {
		Name       string `json:"name"`
		PathPrefix string `json:"path_prefix"`
	} `json:"routes"`
}

// workload is a rendered chart, decoded.
type workload struct {
	deploy     appsv1.Deployment
	pod        corev1.PodSpec
	gateway    corev1.Container
	app        corev1.Container
	native     bool
	configMap  corev1.ConfigMap
	configText string
	config     gatewayConfig
	services   []corev1.Service
	sa         *corev1.ServiceAccount
	pdb        *policyv1.PodDisruptionBudget
	monitoring map[string]map[string]any // kind -> object, for the monitoring.coreos.com kinds
}

// decodeWorkload decodes every manifest strictly into its API type and
// picks out the pieces the tests look at.
func decodeWorkload(t *testing.T, ms manifests) *workload {
	t.Helper()
	w := &workload{monitoring: map[string]map[string]any{}}
	var configMaps []corev1.ConfigMap
	for _, m := range ms {
		switch m.Kind {
		case "Deployment":
			if m.APIVersion != "apps/v1" {
				t.Errorf("%s: apiVersion %s", m.Source, m.APIVersion)
			}
			decodeStrict(t, m, &w.deploy)
		case "Service":
			var s corev1.Service
			decodeStrict(t, m, &s)
			w.services = append(w.services, s)
		case "ServiceAccount":
			w.sa = &corev1.ServiceAccount{}
			decodeStrict(t, m, w.sa)
		case "ConfigMap":
			var cm corev1.ConfigMap
			decodeStrict(t, m, &cm)
			configMaps = append(configMaps, cm)
		case "PodDisruptionBudget":
			if m.APIVersion != "policy/v1" {
				t.Errorf("%s: apiVersion %s", m.Source, m.APIVersion)
			}
			w.pdb = &policyv1.PodDisruptionBudget{}
			decodeStrict(t, m, w.pdb)
		case "ServiceMonitor", "PodMonitor", "PrometheusRule":
			if m.APIVersion != monitoringAPI {
				t.Errorf("%s: %s has apiVersion %s, want %s", m.Source, m.Kind, m.APIVersion, monitoringAPI)
			}
			var obj map[string]any
			if err := yaml.Unmarshal(m.JSON, &obj); err != nil {
				t.Fatal(err)
			}
			if _, ok := obj["spec"].(map[string]any); !ok {
				t.Errorf("%s: %s without spec", m.Source, m.Kind)
			}
			w.monitoring[m.Kind] = obj
		default:
			t.Errorf("%s: unexpected kind %s %s", m.Source, m.APIVersion, m.Kind)
		}
	}
	if w.deploy.Name == "" {
		t.Fatal("no Deployment rendered")
	}
	w.pod = w.deploy.Spec.Template.Spec

	var found int
	for _, c := range w.pod.InitContainers {
		if c.Name == gatewayContainer {
			w.gateway, w.native = c, true
			found++
		}
	}
	for _, c := range w.pod.Containers {
		if c.Name == gatewayContainer {
			w.gateway = c
			found++
		} else {
			w.app = c
		}
	}
	if found != 1 {
		t.Fatalf("found the %s container %d times, want once", gatewayContainer, found)
	}

	// The ConfigMap the gateway's config volume refers to.
	cmName := ""
	for _, v := range w.pod.Volumes {
		if v.ConfigMap != nil && mountOf(w.gateway, v.Name) != nil && mountOf(w.gateway, v.Name).MountPath == configDir {
			cmName = v.ConfigMap.Name
		}
	}
	if cmName == "" {
		t.Fatalf("no ConfigMap volume mounted at %s in the gateway container", configDir)
	}
	for _, cm := range configMaps {
		if cm.Name == cmName {
			w.configMap = cm
		}
	}
	if w.configMap.Name == "" {
		t.Fatalf("the gateway's ConfigMap %s is not rendered", cmName)
	}
	w.configText = w.configMap.Data["config.yaml"]
	if w.configText == "" {
		t.Fatalf("ConfigMap %s has no config.yaml", cmName)
	}
	if err := yaml.Unmarshal([]byte(w.configText), &w.config); err != nil {
		t.Fatalf("config.yaml: %v\n%s", err, w.configText)
	}
	return w
}

func mountOf(c corev1.Container, volume string) *corev1.VolumeMount {
	for i := range c.VolumeMounts {
		if c.VolumeMounts[i].Name == volume {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func (w *workload) volume(name string) *corev1.Volume {
	for i := range w.pod.Volumes {
		if w.pod.Volumes[i].Name == name {
			return &w.pod.Volumes[i]
		}
	}
	return nil
}

// providedFile finds the volume that puts a file at p in the gateway
// container: a mount at the file's directory whose volume holds the file's
// name. It returns nil when no volume does.
func (w *workload) providedFile(p string) *corev1.Volume {
	dir, name := path.Dir(p), path.Base(p)
	for _, m := range w.gateway.VolumeMounts {
		if m.MountPath != dir {
			continue
		}
		v := w.volume(m.Name)
		if v == nil {
			continue
		}
		switch {
		case v.Secret != nil:
			for _, it := range v.Secret.Items {
				if it.Path == name {
					return v
				}
			}
		case v.Projected != nil:
			for _, src := range v.Projected.Sources {
				if src.ServiceAccountToken != nil && src.ServiceAccountToken.Path == name {
					return v
				}
			}
		}
	}
	return nil
}

func port(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func splitAddr(t *testing.T, key, addr string) (string, int32) {
	t.Helper()
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("config %s %q: %v", key, addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("config %s %q: %v", key, addr, err)
	}
	return host, int32(n)
}

func TestChartRenders(t *testing.T) {
	helm(t)
	appVersion := chartAppVersion(t)
	for _, tc := range chartCases {
		t.Run(tc.name, func(t *testing.T) {
			w := decodeWorkload(t, renderAt(t, tc.kubeVersion(), tc.values, tc.sets...))
			checkSidecar(t, w, tc, appVersion)
			checkCredential(t, w, tc)
			checkPodAndServices(t, w, tc)
		})
	}
}

// checkSidecar checks the gateway container: image, arguments, ports and
// the listen addresses of its configuration, probes, security context.
func checkSidecar(t *testing.T, w *workload, tc chartCase, appVersion string) {
	g := w.gateway
	if want := "ghcr.io/obo-gateway/obo-gateway:" + appVersion; g.Image != want {
		t.Errorf("gateway image %q, want %q (the chart's appVersion)", g.Image, want)
	}
	if want := []string{"serve", "--config", configFile}; !slices.Equal(g.Args, want) || len(g.Command) != 0 {
		t.Errorf("gateway command %q args %q, want the image's entrypoint with args %q", g.Command, g.Args, want)
	}
	if w.native != tc.native {
		t.Errorf("gateway is a native sidecar: %v, want %v", w.native, tc.native)
	}
	if w.native {
		if g.RestartPolicy == nil || *g.RestartPolicy != corev1.ContainerRestartPolicyAlways {
			t.Errorf("native sidecar without restartPolicy: Always")
		}
	} else if g.RestartPolicy != nil {
		t.Errorf("ordinary sidecar container with restartPolicy %v", *g.RestartPolicy)
	}

	// Ports: the gateway on the loopback address only, the admin port on
	// every address (the kubelet's probes and Prometheus come from outside).
	gwPort, adminPort := port(g, "gateway"), port(g, "gateway-admin")
	if gwPort != 8080 || adminPort != 9090 || len(g.Ports) != 2 {
		t.Errorf("gateway ports %+v, want gateway 8080 and gateway-admin 9090", g.Ports)
	}
	host, p := splitAddr(t, "listen", w.config.Listen)
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		t.Errorf("config listen %q is not on the loopback address", w.config.Listen)
	}
	if p != gwPort {
		t.Errorf("config listen %q does not match container port %d", w.config.Listen, gwPort)
	}
	host, p = splitAddr(t, "admin_listen", w.config.AdminListen)
	if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
		t.Errorf("config admin_listen %q is on the loopback address: the kubelet's probes cannot reach it", w.config.AdminListen)
	}
	if p != adminPort {
		t.Errorf("config admin_listen %q does not match container port %d", w.config.AdminListen, adminPort)
	}

	for _, probe := range []struct {
		name string
		p    *corev1.Probe
		path string
	}{
		{"startupProbe", g.StartupProbe, "/healthz"},
		{"livenessProbe", g.LivenessProbe, "/healthz"},
		{"readinessProbe", g.ReadinessProbe, "/readyz"},
	} {
		if probe.p == nil || probe.p.HTTPGet == nil {
			t.Errorf("gateway %s: not an HTTP probe", probe.name)
			continue
		}
		got := probe.p.HTTPGet
		if got.Path != probe.path || resolvePort(g, got.Port) != adminPort {
			t.Errorf("gateway %s: GET %s on port %s, want %s on the admin port %d", probe.name, got.Path, got.Port.String(), probe.path, adminPort)
		}
	}

	sc := g.SecurityContext
	if sc == nil {
		t.Fatal("gateway container without securityContext")
	}
	if !isTrue(sc.RunAsNonRoot) || sc.RunAsUser == nil || *sc.RunAsUser != nonRootUID ||
		!isTrue(sc.ReadOnlyRootFilesystem) || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) != 0 ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("gateway securityContext %s, want runAsNonRoot, runAsUser %d, readOnlyRootFilesystem, "+
			"no privilege escalation, all capabilities dropped, seccomp RuntimeDefault", sc.String(), nonRootUID)
	}

	if m := mountOf(g, "obo-gateway-config"); m == nil || m.MountPath != configDir || !m.ReadOnly {
		t.Errorf("config volume mount %+v, want %s read-only", m, configDir)
	}
	for _, m := range g.VolumeMounts {
		if !m.ReadOnly {
			t.Errorf("gateway volume mount %s at %s is writable", m.Name, m.MountPath)
		}
	}

	// GOMEMLIMIT is nine tenths of the container's memory limit, so that
	// the collector works harder before the OOM killer acts.
	if limit, ok := g.Resources.Limits[corev1.ResourceMemory]; ok {
		want := strconv.FormatInt(limit.Value()*9/10, 10)
		if got := envValue("GOMEMLIMIT", g); got != want {
			t.Errorf("gateway has a memory limit of %s and GOMEMLIMIT %q, want %s", limit.String(), got, want)
		}
	}

	// The application finds the gateway in OBO_GATEWAY_URL, on the host
	// the gateway listens on.
	listenHost, _, _ := net.SplitHostPort(w.config.Listen)
	if listenHost == "localhost" { // bound on its IPv4 address
		listenHost = "127.0.0.1"
	}
	want := "http://" + net.JoinHostPort(listenHost, strconv.Itoa(int(gwPort)))
	if url := envValue("OBO_GATEWAY_URL", w.app); url != want {
		t.Errorf("app container OBO_GATEWAY_URL %q, want %q", url, want)
	}
}

func resolvePort(c corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	return port(c, p.StrVal)
}

func isTrue(b *bool) bool { return b != nil && *b }

// checkCredential checks that the configuration's credential keys match
// gateway.credential.type and that every file they name is mounted.
func checkCredential(t *testing.T, w *workload, tc chartCase) {
	cl := w.config.Client
	if cl.ID == "" && !strings.HasPrefix(tc.name, "default values") {
		t.Error("config client.id is empty")
	}
	if cl.Secret != "" {
		t.Error("config client.secret is set: the chart must never put a secret into the ConfigMap")
	}
	annotations := w.deploy.Spec.Template.Annotations
	labels := w.deploy.Spec.Template.Labels

	switch tc.credential {
	case "secret":
		if cl.SecretFile != secretFile || cl.Certificate != nil || cl.AssertionFile != "" {
			t.Errorf("client %+v, want only secret_file %s", cl, secretFile)
		}
		v := w.providedFile(secretFile)
		if v == nil || v.Secret == nil {
			t.Fatalf("nothing mounts %s", secretFile)
		}
		if v.Secret.SecretName != tc.secretName {
			t.Errorf("client secret from Secret %q, want %q", v.Secret.SecretName, tc.secretName)
		}
	case "certificate":
		c := cl.Certificate
		if c == nil || cl.SecretFile != "" || cl.AssertionFile != "" {
			t.Fatalf("client %+v, want only certificate", cl)
		}
		if c.File != certDir+"/tls.crt" || c.KeyFile != certDir+"/tls.key" || c.SendX5c == nil || !*c.SendX5c {
			t.Errorf("client.certificate %+v, want file %s/tls.crt, key_file %s/tls.key, send_x5c true", *c, certDir, certDir)
		}
		for _, f := range []string{c.File, c.KeyFile} {
			v := w.providedFile(f)
			if v == nil || v.Secret == nil {
				t.Fatalf("nothing mounts %s", f)
			}
			if v.Secret.SecretName != tc.secretName {
				t.Errorf("%s from Secret %q, want %q", f, v.Secret.SecretName, tc.secretName)
			}
		}
	case "workloadIdentity":
		if cl.AssertionFile != tokenFile || cl.SecretFile != "" || cl.Certificate != nil {
			t.Errorf("client %+v, want only assertion_file %s", cl, tokenFile)
		}
		// The webhook serves every container of a labelled pod: only a
		// pod that needs it for the gateway's token gets the label.
		projected := !slices.Contains(tc.sets, "gateway.credential.workloadIdentity.projectToken=false")
		if _, labelled := labels[wiUseLabel]; labelled == projected || (!projected && labels[wiUseLabel] != "true") {
			t.Errorf("pod label %s = %q with projectToken=%v, want it only without projection", wiUseLabel, labels[wiUseLabel], projected)
		}
		if w.sa == nil {
			t.Fatal("no ServiceAccount rendered")
		}
		if got := w.sa.Annotations[wiClientIDAnno]; got == "" || got != cl.ID {
			t.Errorf("ServiceAccount annotation %s = %q, want the client id %q", wiClientIDAnno, got, cl.ID)
		}
		v := w.providedFile(tokenFile)
		if projected {
			if v == nil || v.Projected == nil {
				t.Fatalf("nothing mounts %s", tokenFile)
			}
			sat := v.Projected.Sources[0].ServiceAccountToken
			if sat.Audience != "api://AzureADTokenExchange" || sat.ExpirationSeconds == nil || *sat.ExpirationSeconds < 3600 {
				t.Errorf("projected token %+v, want audience api://AzureADTokenExchange, expiry of at least an hour", sat)
			}
			if annotations[wiSkipAnno] != gatewayContainer {
				t.Errorf("annotation %s = %q, want %q: the webhook must not mount a second token at the same path",
					wiSkipAnno, annotations[wiSkipAnno], gatewayContainer)
			}
		} else {
			// The workload identity webhook mounts the token.
			if v != nil {
				t.Errorf("projectToken=false, but the chart mounts %s itself", tokenFile)
			}
			if _, ok := annotations[wiSkipAnno]; ok {
				t.Errorf("projectToken=false, but the webhook is told to skip the gateway")
			}
		}
	default:
		t.Fatalf("unknown credential %q", tc.credential)
	}
	if tc.credential != "workloadIdentity" {
		if _, ok := labels[wiUseLabel]; ok {
			t.Errorf("pod label %s without workload identity", wiUseLabel)
		}
		if w.sa != nil {
			if _, ok := w.sa.Annotations[wiClientIDAnno]; ok {
				t.Errorf("ServiceAccount annotation %s without workload identity", wiClientIDAnno)
			}
		}
	}
}

// checkPodAndServices checks the pod template and the objects around it.
func checkPodAndServices(t *testing.T, w *workload, tc chartCase) {
	tmpl := w.deploy.Spec.Template
	// With gateway.reload (the default) the gateway applies a changed
	// ConfigMap itself; without it, the checksum rolls the pods.
	if sum, ok := tmpl.Annotations[checksumAnno]; slices.Contains(tc.sets, "gateway.reload=false") {
		if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(sum) {
			t.Errorf("pod annotation %s = %q, want a SHA-256", checksumAnno, sum)
		}
	} else if ok {
		t.Errorf("pod annotation %s = %q with gateway.reload", checksumAnno, sum)
	}
	for k, v := range w.deploy.Spec.Selector.MatchLabels {
		if tmpl.Labels[k] != v {
			t.Errorf("pod labels %v do not match the Deployment's selector %v", tmpl.Labels, w.deploy.Spec.Selector.MatchLabels)
		}
	}

	shutdown := 15 * time.Second // the gateway's default
	if w.config.ShutdownTimeout != "" {
		d, err := time.ParseDuration(w.config.ShutdownTimeout)
		if err != nil {
			t.Fatalf("shutdown_timeout %q: %v", w.config.ShutdownTimeout, err)
		}
		shutdown = d
	}
	// An ordinary sidecar gets SIGTERM with the application, and keeps
	// serving for shutdown_delay while it finishes; a native one stops
	// after the application, and needs no delay.
	// (TestGracePeriod checks the values rendered.)
	var delay time.Duration
	if w.config.ShutdownDelay != "" {
		d, err := time.ParseDuration(w.config.ShutdownDelay)
		if err != nil {
			t.Fatalf("shutdown_delay %q: %v", w.config.ShutdownDelay, err)
		}
		delay = d
	}
	if !tc.native && delay <= 0 {
		t.Errorf("ordinary sidecar with shutdown_delay %q, want a delay", w.config.ShutdownDelay)
	}
	grace := w.pod.TerminationGracePeriodSeconds
	if grace == nil || time.Duration(*grace)*time.Second <= shutdown+delay {
		t.Errorf("terminationGracePeriodSeconds %v, want more than shutdown_delay %s plus shutdown_timeout %s", grace, delay, shutdown)
	}

	if w.sa != nil && w.pod.ServiceAccountName != w.sa.Name {
		t.Errorf("pod service account %q, rendered ServiceAccount %q", w.pod.ServiceAccountName, w.sa.Name)
	}

	for _, s := range w.services {
		for k, v := range s.Spec.Selector {
			if tmpl.Labels[k] != v {
				t.Errorf("Service %s selects %v, pod labels %v", s.Name, s.Spec.Selector, tmpl.Labels)
			}
		}
		for _, p := range s.Spec.Ports {
			if p.TargetPort.Type == intstr.String && resolvePort(w.app, p.TargetPort) == 0 && resolvePort(w.gateway, p.TargetPort) == 0 {
				t.Errorf("Service %s port %s targets %q, which no container names", s.Name, p.Name, p.TargetPort.StrVal)
			}
		}
		if s.Labels["app.kubernetes.io/component"] == "gateway-metrics" {
			if len(s.Spec.Ports) != 1 || s.Spec.Ports[0].TargetPort.IntValue() != int(port(w.gateway, "gateway-admin")) {
				t.Errorf("metrics Service %s ports %+v, want the gateway's admin port", s.Name, s.Spec.Ports)
			}
		}
	}

	if w.pdb != nil {
		for k, v := range w.pdb.Spec.Selector.MatchLabels {
			if tmpl.Labels[k] != v {
				t.Errorf("PodDisruptionBudget selects %v, pod labels %v", w.pdb.Spec.Selector.MatchLabels, tmpl.Labels)
			}
		}
		if (w.pdb.Spec.MinAvailable == nil) == (w.pdb.Spec.MaxUnavailable == nil) {
			t.Errorf("PodDisruptionBudget needs exactly one of minAvailable and maxUnavailable: %+v", w.pdb.Spec)
		}
	}

	if sm, ok := w.monitoring["ServiceMonitor"]; ok {
		endpoints, _ := dig(sm, "spec", "endpoints").([]any)
		var metricsService *corev1.Service
		for i := range w.services {
			if w.services[i].Labels["app.kubernetes.io/component"] == "gateway-metrics" {
				metricsService = &w.services[i]
			}
		}
		if metricsService == nil || len(endpoints) != 1 {
			t.Fatalf("ServiceMonitor without its metrics Service or with %d endpoints", len(endpoints))
		}
		if p := dig(endpoints[0], "port"); p != metricsService.Spec.Ports[0].Name || dig(endpoints[0], "path") != "/metrics" {
			t.Errorf("ServiceMonitor endpoint %v does not scrape /metrics on the metrics Service's port %q", endpoints[0], metricsService.Spec.Ports[0].Name)
		}
		selector, _ := dig(sm, "spec", "selector", "matchLabels").(map[string]any)
		for k, v := range selector {
			if metricsService.Labels[k] != v {
				t.Errorf("ServiceMonitor selects %v, metrics Service labels %v", selector, metricsService.Labels)
			}
		}
	}
	if pm, ok := w.monitoring["PodMonitor"]; ok {
		endpoints, _ := dig(pm, "spec", "podMetricsEndpoints").([]any)
		if len(endpoints) != 1 || dig(endpoints[0], "port") != "gateway-admin" || dig(endpoints[0], "path") != "/metrics" {
			t.Errorf("PodMonitor endpoints %v, want /metrics on port gateway-admin", endpoints)
		}
		selector, _ := dig(pm, "spec", "selector", "matchLabels").(map[string]any)
		for k, v := range selector {
			if tmpl.Labels[k] != v {
				t.Errorf("PodMonitor selects %v, pod labels %v", selector, tmpl.Labels)
			}
		}
	}
}

// dig returns the value at the keys of nested maps, or nil.
func dig(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func chartAppVersion(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir(t), "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &c); err != nil || c.AppVersion == "" {
		t.Fatalf("Chart.yaml appVersion: %v", err)
	}
	return c.AppVersion
}

// TestRenderedConfigPassesCheck runs "obo-gateway check" on the gateway
// configuration the chart renders.
//
// The rendered client.secret_file, /var/run/secrets/obo-gateway/client-secret,
// exists only in the pod, and check reads it (it must exist and not be
// empty), so the test rewrites that one path to a temporary file holding a
// dummy secret before running check. Nothing else is changed.
//
// Pending until issue 3 is in: the certificate and workload identity
// examples render client.certificate and client.assertion_file. Check must
// pass for them once the gateway's configuration has those keys (found by
// reflection on config.Config, see requires); before that the test asserts
// only the rendered structure (TestChartRenders, checkCredential) and
// reports check's answer in the test log. The secret example must always
// pass.
func TestRenderedConfigPassesCheck(t *testing.T) {
	helm(t)
	tests := []struct {
		name     string
		values   []string
		sets     []string
		mustPass bool
		// requires is the configuration key the case needs; without it in
		// config.Config the case is pending and only logged.
		requires string
		// wantProblems are expected in the output when check must fail.
		wantProblems []string
	}{
		{name: "examples/secret.yaml", values: []string{"examples/secret.yaml"}, mustPass: true},
		{name: "examples/secret.yaml, ordinary sidecar", values: []string{"examples/secret.yaml"}, sets: []string{"gateway.nativeSidecar=false"}, mustPass: true},
		{name: "examples/secret.yaml, cache.max_bytes as a number", values: []string{"examples/secret.yaml", maxBytesNumber(t)}, mustPass: true},
		{
			// The defaults render, but name no authority, client, audience or
			// route: the gateway must refuse them with every problem listed.
			name: "default values",
			wantProblems: []string{
				"authority.url: must be set",
				"client.id: must be set",
				"inbound.audiences: must not be empty",
				"routes: at least one route must be configured",
			},
		},
		// Issue 3 (see above): asserted once the gateway has the key.
		{name: "examples/certificate.yaml", values: []string{"examples/certificate.yaml"}, mustPass: true, requires: "client.certificate"},
		{name: "examples/workload-identity.yaml", values: []string{"examples/workload-identity.yaml"}, mustPass: true, requires: "client.assertion_file"},
		{name: "examples/secret.yaml with Redis", values: []string{"examples/secret.yaml"}, sets: redisSets, mustPass: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.requires != "" && !gatewayConfigHas(tc.requires) {
				tc.mustPass = false // pending: logged below
			}
			w := decodeWorkload(t, render(t, tc.values, tc.sets...))
			config := withLocalCredentialFiles(t, w.configText)
			code, out := runCheck(t, config)
			switch {
			case tc.mustPass:
				if code != 0 || !strings.Contains(out, "configuration is valid") {
					t.Fatalf("obo-gateway check exit %d:\n%s\nconfiguration:\n%s", code, out, config)
				}
				for _, r := range w.config.Routes {
					if !strings.Contains(out, r.Name) || !strings.Contains(out, r.PathPrefix) {
						t.Errorf("check output lacks route %s %s:\n%s", r.Name, r.PathPrefix, out)
					}
				}
			case len(tc.wantProblems) > 0:
				if code != 2 {
					t.Fatalf("obo-gateway check exit %d, want 2:\n%s", code, out)
				}
				for _, p := range tc.wantProblems {
					if !strings.Contains(out, p) {
						t.Errorf("check output lacks %q:\n%s", p, out)
					}
				}
			default:
				t.Logf("pending: the gateway's configuration has no %s yet; obo-gateway check exit %d:\n%s", tc.requires, code, out)
			}
		})
	}
}

// redisDir is where the chart mounts the Redis Secret.
const redisDir = "/var/run/secrets/obo-gateway/redis"

// redisSets turn the Redis second level on.
var redisSets = []string{
	"gateway.redis.enabled=true",
	"gateway.redis.url=rediss://api-a.redis.cache.windows.net:6380",
	"gateway.redis.existingSecret=api-a-obo-redis",
	"gateway.redis.passwordKey=password",
}

// TestRedisValues checks the Redis settings: the configuration's
// cache.redis, the Secret volume with the encryption keys and the password,
// and its read-only mount in the sidecar.
func TestRedisValues(t *testing.T) {
	helm(t)
	w := decodeWorkload(t, render(t, []string{"examples/secret.yaml"}, redisSets...))
	for _, want := range []string{
		"url: rediss://api-a.redis.cache.windows.net:6380",
		"encryption_key_file: " + redisDir + "/encryption-keys",
		"password_file: " + redisDir + "/password",
	} {
		if !strings.Contains(w.configText, want) {
			t.Errorf("configuration lacks %q:\n%s", want, w.configText)
		}
	}
	var vol *corev1.Volume
	for i := range w.deploy.Spec.Template.Spec.Volumes {
		if v := &w.deploy.Spec.Template.Spec.Volumes[i]; v.Secret != nil && v.Secret.SecretName == "api-a-obo-redis" {
			vol = v
		}
	}
	if vol == nil || len(vol.Secret.Items) != 2 {
		t.Fatalf("no Secret volume with the encryption keys and the password: %+v", vol)
	}
	mounted := false
	spec := w.deploy.Spec.Template.Spec
	for _, c := range append(spec.InitContainers, spec.Containers...) {
		for _, m := range c.VolumeMounts {
			if m.Name == vol.Name && m.MountPath == redisDir && m.ReadOnly {
				mounted = c.Name == "obo-gateway"
			}
		}
	}
	if !mounted {
		t.Error("the Redis Secret is not mounted read-only in the sidecar")
	}
	// Off by default: no cache.redis, no volume.
	plain := decodeWorkload(t, render(t, []string{"examples/secret.yaml"}))
	if strings.Contains(plain.configText, "redis") {
		t.Error("cache.redis rendered although gateway.redis is off")
	}
}

// withLocalCredentialFiles rewrites the credential paths of a rendered
// configuration, which exist only in the pod, to temporary files with dummy
// content.
func withLocalCredentialFiles(t *testing.T, config string) string {
	t.Helper()
	dir := t.TempDir()
	certPEM, keyPEM := testCertificate(t)
	for _, f := range []struct{ path, content string }{
		{secretFile, "dummy-client-secret\n"},
		{certDir + "/tls.crt", certPEM},
		{certDir + "/tls.key", keyPEM},
		{tokenFile, "dummy.federated.token\n"},
		{redisDir + "/encryption-keys", base64.StdEncoding.EncodeToString(make([]byte, 32)) + "\n"},
		{redisDir + "/password", "dummy-redis-password\n"},
	} {
		if !strings.Contains(config, f.path) {
			continue
		}
		local := filepath.Join(dir, path.Base(f.path))
		if err := os.WriteFile(local, []byte(f.content), 0o600); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(config, f.path); n != 1 {
			t.Fatalf("%s appears %d times in the configuration", f.path, n)
		}
		config = strings.Replace(config, f.path, local, 1)
	}
	return config
}

// TestChecksumFollowsConfig checks that, with gateway.reload false, the pod
// template's checksum/config annotation is stable and changes with the
// gateway configuration, so that a configuration change rolls the pods.
func TestChecksumFollowsConfig(t *testing.T) {
	helm(t)
	values := []string{"examples/secret.yaml"}
	checksum := func(sets ...string) string {
		w := decodeWorkload(t, render(t, values, append([]string{"gateway.reload=false"}, sets...)...))
		return w.deploy.Spec.Template.Annotations[checksumAnno]
	}
	base := checksum()
	if again := checksum(); again != base {
		t.Errorf("checksum differs between two renders of the same values: %s, %s", base, again)
	}
	for _, set := range []string{
		"gateway.config.routes[0].path_prefix=/msgraph",
		"gateway.config.routes[0].name=msgraph",
		"gateway.config.log.level=debug",
		"gateway.credential.type=certificate",
	} {
		if got := checksum(set); got == base {
			t.Errorf("--set %s does not change %s", set, checksumAnno)
		}
	}
	// Values outside the gateway configuration do not roll the pods through it.
	if got := checksum("replicaCount=5"); got != base {
		t.Errorf("replicaCount changed %s", checksumAnno)
	}
}

// TestGracePeriod checks terminationGracePeriodSeconds against the
// gateway's shutdown_timeout.
func TestGracePeriod(t *testing.T) {
	helm(t)
	tests := []struct {
		sets  []string
		kube  string // --kube-version; "" for kubeVersion
		grace int64
		delay string // the rendered shutdown_delay
		fails bool
	}{
		{sets: nil, grace: 30},
		{sets: []string{"gateway.config.shutdown_timeout=45s", "terminationGracePeriodSeconds=60"}, grace: 60},
		{sets: []string{"gateway.config.shutdown_timeout=1m30s"}, fails: true},
		{sets: []string{"gateway.config.shutdown_timeout=30s"}, fails: true},
		{sets: []string{"gateway.config.shutdown_timeout=29500ms"}, grace: 30},
		// An ordinary sidecar adds its shutdown_delay (5s unless set).
		{sets: []string{"gateway.nativeSidecar=false", "gateway.config.shutdown_timeout=25s"}, fails: true},
		{sets: []string{"gateway.nativeSidecar=false", "gateway.config.shutdown_timeout=24s"}, grace: 30, delay: "5s"},
		{sets: []string{"gateway.nativeSidecar=false", "gateway.config.shutdown_timeout=20s", "gateway.config.shutdown_delay=15s"}, fails: true},
		// A delay the user sets is kept, native sidecar or not.
		{sets: []string{"gateway.nativeSidecar=false", "gateway.config.shutdown_delay=12s"}, grace: 30, delay: "12s"},
		{sets: []string{"gateway.config.shutdown_delay=2s"}, grace: 30, delay: "2s"},
		// auto makes a classic sidecar before Kubernetes 1.29: it gets the
		// delay of a classic one, and the grace period must cover it.
		{kube: "1.28.0", grace: 30, delay: "5s"},
		{kube: "1.20.0", sets: []string{"gateway.config.shutdown_timeout=25s"}, fails: true},
		{kube: "1.29.0", sets: []string{"gateway.config.shutdown_timeout=25s"}, grace: 30},
	}
	for _, tc := range tests {
		kube := cmp.Or(tc.kube, kubeVersion)
		t.Run(kube+":"+strings.Join(tc.sets, ","), func(t *testing.T) {
			ms, err := renderChart(t, chartDir(t), kube, []string{"examples/secret.yaml"}, tc.sets)
			if tc.fails {
				if err == nil || !strings.Contains(err.Error(), "terminationGracePeriodSeconds") {
					t.Fatalf("rendered, want a failure about terminationGracePeriodSeconds; err %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w := decodeWorkload(t, ms)
			if g := w.pod.TerminationGracePeriodSeconds; g == nil || *g != tc.grace {
				t.Errorf("terminationGracePeriodSeconds %v, want %d", g, tc.grace)
			}
			if w.config.ShutdownDelay != tc.delay {
				t.Errorf("shutdown_delay %q, want %q", w.config.ShutdownDelay, tc.delay)
			}
		})
	}
}

// TestRenderRejects checks that invalid values fail at helm time, through
// values.schema.json or the templates, with a message naming the value.
func TestRenderRejects(t *testing.T) {
	helm(t)
	tests := []struct {
		name string
		sets []string
		want string
	}{
		{"unknown credential type", []string{"gateway.credential.type=password"}, "gateway/credential/type"},
		{"gateway listening beyond the pod", []string{"gateway.config.listen=0.0.0.0:8080"}, "gateway/config/listen"},
		{"secret in the values", []string{"gateway.config.client.secret=hunter2"}, "gateway/config/client/secret"},
		{"credential file in the values", []string{"gateway.config.client.assertion_file=/token"}, "gateway/config/client/assertion_file"},
		{"duration without unit", []string{"gateway.config.shutdown_timeout=15"}, "shutdown_timeout"},
		{"route name with capitals", []string{"gateway.config.routes[0].name=Graph"}, "name"},
		{"unknown top-level value", []string{"gatway.image.tag=1"}, "gatway"},
		{"admin port on loopback", []string{"gateway.config.admin_listen=127.0.0.1:9090"}, "gateway.config.admin_listen"},
		// Durations the prometheus-operator's CRDs would refuse at apply.
		{"scrape interval with a fraction", []string{"metrics.serviceMonitor.interval=1.5s"}, "interval"},
		{"alert duration in microseconds", []string{"prometheusRule.for=100us"}, "for"},
		{"alerts without a scrape job to select", []string{"prometheusRule.enabled=true", "metrics.serviceMonitor.enabled=false", "metrics.podMonitor.enabled=false"}, "prometheusRule.selector"},
		{"admin port on IPv6 loopback", []string{"gateway.config.admin_listen=[::1]:9090"}, "gateway.config.admin_listen"},
		{"sidecar mode not auto, true or false", []string{"gateway.nativeSidecar=maybe"}, "gateway/nativeSidecar"},
		{"sidecar mode as the string true", []string{"gateway.nativeSidecar=\"true\""}, "gateway/nativeSidecar"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := renderChart(t, chartDir(t), kubeVersion, []string{"examples/secret.yaml"}, tc.sets)
			if err == nil {
				t.Fatalf("--set %v rendered, want an error", tc.sets)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not mention %q: %v", tc.want, err)
			}
		})
	}

	// A native sidecar forced before Kubernetes 1.29, helm's offline
	// default of 1.20 included, fails with a message that says what to do;
	// auto and false render there (TestChartRenders decodes them).
	for _, kube := range []string{"1.28.0", "1.20.0", helmDefaultKube} {
		_, err := renderChart(t, chartDir(t), kube, nil, []string{"gateway.nativeSidecar=true"})
		if kube == helmDefaultKube && helmDefaultNative(t) {
			if err != nil {
				t.Errorf("native sidecar forced, helm's default Kubernetes %s: %v", helmKubeDefault(t), err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), "gateway.nativeSidecar=true needs Kubernetes 1.29 or later") ||
			!strings.Contains(err.Error(), "--kube-version") {
			t.Errorf("native sidecar forced on Kubernetes %s: err %v", kube, err)
		}
		for _, mode := range []string{"auto", "false"} {
			if _, err := renderChart(t, chartDir(t), kube, nil, []string{"gateway.nativeSidecar=" + mode}); err != nil {
				t.Errorf("gateway.nativeSidecar=%s on Kubernetes %s: %v", mode, kube, err)
			}
		}
	}
}

// helmKubeDefault returns the Kubernetes version helm template assumes
// without --kube-version (1.20 for a helm built with go install, the one
// it was released with otherwise), rendered by a chart of one template.
func helmKubeDefault(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Chart.yaml":             "apiVersion: v2\nname: kube\nversion: 1.0.0\n",
		"templates/version.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kube\ndata:\n  version: {{ .Capabilities.KubeVersion.Version | quote }}\n",
	})
	ms, err := renderChart(t, dir, helmDefaultKube, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	ms.one(t, "ConfigMap", &cm)
	m := regexp.MustCompile(`^v?([0-9]+\.[0-9]+)`).FindStringSubmatch(cm.Data["version"])
	if m == nil {
		t.Fatalf("helm's default Kubernetes version %q", cm.Data["version"])
	}
	return m[1]
}

// writeFiles writes files (path relative to dir: content), creating their
// directories.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// helmDefaultNative reports whether gateway.nativeSidecar auto makes a
// native sidecar at helmKubeDefault: from Kubernetes 1.29.
func helmDefaultNative(t *testing.T) bool {
	major, minor, _ := strings.Cut(helmKubeDefault(t), ".")
	m, _ := strconv.Atoi(minor)
	return major != "1" || m >= 29
}

// TestChartRendersWithHelmDefaults renders the chart as a newcomer does,
// helm template without --kube-version: the default values and every
// example render, with the sidecar mode auto picks for helm's default
// Kubernetes version (classic for 1.20), and pass the checks of
// TestChartRenders.
func TestChartRendersWithHelmDefaults(t *testing.T) {
	helm(t)
	t.Logf("helm template assumes Kubernetes %s", helmKubeDefault(t))
	native := helmDefaultNative(t)
	appVersion := chartAppVersion(t)
	for _, tc := range chartCases {
		if tc.kube != "" || tc.sets != nil {
			continue // the default values and the examples only
		}
		t.Run(tc.name, func(t *testing.T) {
			tc.native = native
			w := decodeWorkload(t, renderAt(t, helmDefaultKube, tc.values))
			checkSidecar(t, w, tc, appVersion)
			checkCredential(t, w, tc)
			checkPodAndServices(t, w, tc)
		})
	}
}

// TestSidecarTemplatesInParentChart uses the named templates the way another
// chart does: this chart as a dependency with templatesOnly, the parent's
// Deployment including obo-gateway.sidecar and obo-gateway.sidecarVolumes.
func TestSidecarTemplatesInParentChart(t *testing.T) {
	helm(t)
	parent := t.TempDir()
	if err := os.CopyFS(filepath.Join(parent, "charts", "obo-gateway"), os.DirFS(chartDir(t))); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"Chart.yaml": "apiVersion: v2\nname: api-b\nversion: 1.0.0\n",
		"values.yaml": `
obo-gateway:
  templatesOnly: true
  gateway:
    credential:
      type: workloadIdentity
    config:
      authority:
        url: https://login.microsoftonline.com/11111111-2222-3333-4444-555555555555/v2.0
      client:
        id: 0a1b2c3d-0000-4000-8000-000000000001
      inbound:
        audiences: [api://api-b]
      routes:
        - name: graph
          path_prefix: /graph
          upstream: https://graph.microsoft.com/v1.0
          scopes: [https://graph.microsoft.com/User.Read]
`,
		"templates/deployment.yaml": `
{{- $gw := dict "root" . "gateway" (index .Values "obo-gateway").gateway }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-api-b
spec:
  selector:
    matchLabels: {app: api-b}
  template:
    metadata:
      labels:
        app: api-b
        {{- include "obo-gateway.sidecarPodLabels" $gw | nindent 8 }}
      annotations:
        {{- include "obo-gateway.sidecarPodAnnotations" $gw | nindent 8 }}
    spec:
      serviceAccountName: api-b
      terminationGracePeriodSeconds: 30
      {{- if include "obo-gateway.sidecarNative" $gw }}
      initContainers:
        {{- include "obo-gateway.sidecar" $gw | nindent 8 }}
      {{- end }}
      containers:
        - name: api-b
          image: registry.example.com/api-b:1.0.0
          env:
            - name: OBO_GATEWAY_URL
              value: {{ include "obo-gateway.sidecarURL" $gw }}
        {{- if not (include "obo-gateway.sidecarNative" $gw) }}
        {{- include "obo-gateway.sidecar" $gw | nindent 8 }}
        {{- end }}
      volumes:
        {{- include "obo-gateway.sidecarVolumes" $gw | nindent 8 }}
`,
		"templates/gateway-config.yaml": `{{ include "obo-gateway.sidecarConfigMap" (dict "root" . "gateway" (index .Values "obo-gateway").gateway) }}`,
		"templates/serviceaccount.yaml": `
apiVersion: v1
kind: ServiceAccount
metadata:
  name: api-b
  annotations:
    {{- include "obo-gateway.sidecarServiceAccountAnnotations" (dict "root" . "gateway" (index .Values "obo-gateway").gateway) | nindent 4 }}
`,
	}
	writeFiles(t, parent, files)
	// The parent picks the sidecar's place with obo-gateway.sidecarNative,
	// and so follows gateway.nativeSidecar's auto default; with
	// gateway.reload (the default) no checksum rolls the pods.
	for _, tc := range []chartCase{
		{name: "Kubernetes 1.33", kube: "1.33.0", credential: "workloadIdentity", native: true},
		{name: "Kubernetes 1.20", kube: "1.20.0", credential: "workloadIdentity", native: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := renderChart(t, parent, tc.kube, nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range ms {
				if strings.HasPrefix(m.Source, "api-b/charts/obo-gateway/") {
					t.Errorf("templatesOnly, but the dependency rendered %s %s", m.Kind, m.Name)
				}
			}
			w := decodeWorkload(t, ms)
			checkSidecar(t, w, tc, chartAppVersion(t))
			checkCredential(t, w, tc)
			if sum, ok := w.deploy.Spec.Template.Annotations["checksum/obo-gateway-config"]; ok {
				t.Errorf("pod annotation checksum/obo-gateway-config = %q with gateway.reload", sum)
			}
			if delay := w.config.ShutdownDelay; (delay != "") == tc.native {
				t.Errorf("shutdown_delay %q for a native sidecar: %v", delay, tc.native)
			}
			ms, err = renderChart(t, parent, tc.kube, nil, []string{"obo-gateway.gateway.reload=false"})
			if err != nil {
				t.Fatal(err)
			}
			w = decodeWorkload(t, ms)
			if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(w.deploy.Spec.Template.Annotations["checksum/obo-gateway-config"]) {
				t.Errorf("pod annotations %v lack checksum/obo-gateway-config with gateway.reload false", w.deploy.Spec.Template.Annotations)
			}
		})
	}
}

func execOutput(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}

// testCertificate returns a self-signed RSA certificate and its key, PEM
// encoded, for the certificate credential.
func testCertificate(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "obo-gateway chartcheck"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
}

// TestMemLimit: GOMEMLIMIT is nine tenths of the gateway's memory limit,
// whatever the quantity's unit, and a limit the chart cannot read fails the
// render.
func TestMemLimit(t *testing.T) {
	helm(t)
	for _, q := range []string{"256Mi", "1Gi", "1.5Gi", "512M", "300000000", "64k"} {
		t.Run(q, func(t *testing.T) {
			ms := render(t, []string{"examples/secret.yaml"}, "gateway.resources.limits.memory="+q)
			w := decodeWorkload(t, ms)
			limit := resource.MustParse(q)
			want := strconv.FormatInt(limit.Value()*9/10, 10)
			if got := envValues("GOMEMLIMIT", append(w.pod.InitContainers, w.pod.Containers...)...); len(got) != 1 || got[0] != want {
				t.Errorf("GOMEMLIMIT %q, want once %s", got, want)
			}
		})
	}
	// A values file's plain number of bytes is a YAML number, not a string.
	plain := filepath.Join(t.TempDir(), "memory.yaml")
	if err := os.WriteFile(plain, []byte("gateway:\n  resources:\n    limits:\n      memory: 268435456\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := decodeWorkload(t, render(t, []string{"examples/secret.yaml", plain}))
	if got := envValue("GOMEMLIMIT", append(w.pod.InitContainers, w.pod.Containers...)...); got != "241591910" {
		t.Errorf("GOMEMLIMIT for a limit of 268435456 (a YAML number) = %q, want 241591910", got)
	}
	if _, err := renderChart(t, chartDir(t), kubeVersion, []string{"examples/secret.yaml"}, []string{"gateway.resources.limits.memory=1.5Gx"}); err == nil ||
		!strings.Contains(err.Error(), "gateway.resources.limits.memory") {
		t.Errorf("an unreadable memory limit rendered, or failed without naming it: %v", err)
	}
}

// maxBytesNumber writes a values file whose cache.max_bytes is a YAML
// number, as an operator may write it, and returns its path.
func maxBytesNumber(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "max-bytes.yaml")
	if err := os.WriteFile(p, []byte("gateway:\n  config:\n    cache:\n      max_bytes: 1048576\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// envValues returns the values the containers give the environment
// variable name, in order.
func envValues(name string, cs ...corev1.Container) []string {
	var vs []string
	for _, c := range cs {
		for _, e := range c.Env {
			if e.Name == name {
				vs = append(vs, e.Value)
			}
		}
	}
	return vs
}

// envValue returns the last value the containers give name (the one a
// container sees when it is set twice), or "".
func envValue(name string, cs ...corev1.Container) string {
	vs := envValues(name, cs...)
	if len(vs) == 0 {
		return ""
	}
	return vs[len(vs)-1]
}

// renderNotes renders the chart's NOTES.txt, which helm template leaves
// out: a copy of the chart renders it into a ConfigMap through tpl.
func renderNotes(t *testing.T, kube string, valuesFiles []string, sets ...string) string {
	t.Helper()
	chart := filepath.Join(t.TempDir(), "obo-gateway")
	if err := os.CopyFS(chart, os.DirFS(chartDir(t))); err != nil {
		t.Fatal(err)
	}
	notes, err := os.ReadFile(filepath.Join(chart, "templates", "NOTES.txt"))
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, chart, map[string]string{
		"notes.src":                  string(notes),
		"templates/notes-check.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ tpl (.Files.Get \"notes.src\") . | quote }}\n",
	})
	for i, f := range valuesFiles {
		valuesFiles[i] = filepath.Join(chartDir(t), f)
	}
	ms, err := renderChart(t, chart, kube, valuesFiles, sets)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms.ofKind("ConfigMap") {
		if m.Name == "notes" {
			var cm corev1.ConfigMap
			decodeStrict(t, m, &cm)
			return cm.Data["notes"]
		}
	}
	t.Fatal("the NOTES.txt ConfigMap was not rendered")
	return ""
}

// TestNotesTellTheSidecarMode: the notes after an install say which kind
// of sidecar runs and, for a classic one, that the application starts
// alongside the gateway and must retry its first calls.
func TestNotesTellTheSidecarMode(t *testing.T) {
	helm(t)
	tests := []struct {
		kube string
		sets []string
		want []string
	}{
		{kube: "1.33.0", want: []string{"Sidecar: native (an init container with restartPolicy: Always, Kubernetes v1.33.0)"}},
		{kube: "1.28.0", want: []string{"Sidecar: classic", "auto makes a native one from Kubernetes 1.29; this is v1.28.0", "retry them at start-up", "shutdown_delay (5s)"}},
		{kube: "1.33.0", sets: []string{"gateway.nativeSidecar=false"}, want: []string{"Sidecar: classic, a second container (gateway.nativeSidecar false)", "retry them at start-up"}},
	}
	for _, tc := range tests {
		t.Run(tc.kube+":"+strings.Join(tc.sets, ","), func(t *testing.T) {
			notes := renderNotes(t, tc.kube, []string{"examples/secret.yaml"}, tc.sets...)
			for _, want := range tc.want {
				if !strings.Contains(strings.Join(strings.Fields(notes), " "), want) {
					t.Errorf("notes lack %q:\n%s", want, notes)
				}
			}
		})
	}
}
