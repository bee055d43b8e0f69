// Package chartcheck holds the tests of the packaging: the Helm chart in
// charts/obo-gateway, its Grafana dashboard and Prometheus alerts, the
// Dockerfile and its build script, and the licence that LICENSE, the image
// label and the chart's metadata name. It has no code of its own;
// everything is in its _test.go files.
//
// The chart tests run helm (v3), found on PATH or in $(go env GOPATH)/bin.
// Without it they are skipped, except when the environment variable CI is
// set, where a missing helm fails them. Install it with
//
//	go install helm.sh/helm/v3/cmd/helm@v3.22.0
//
// They render the chart with its default values, with each file of
// charts/obo-gateway/examples and with variations of them, for several
// Kubernetes versions and without --kube-version (a native sidecar from
// 1.29, a classic one before), decode every
// manifest strictly into its Kubernetes API type (an unknown field is an
// error), check the gateway sidecar (ports, probes, security context,
// mounts, credential wiring, checksum annotation, grace period), and run
// "obo-gateway check" on the rendered gateway configuration. The
// configuration and the Dockerfile tests need the go command, to build the
// gateway and to find the module root.
package chartcheck
