package chartcheck

import (
	"bufio"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	line int
	cmd  string // upper case: FROM, RUN, ...
	args string
}

// stage is the instructions of one FROM.
type stage struct {
	from         string // the image reference
	name         string // AS name
	platform     string // the --platform flag's value, "" without one
	instructions []instruction
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.instructions {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func parseDockerfile(t *testing.T, path string) []stage {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		stages  []stage
		pending strings.Builder
		start   int
	)
	sc := bufio.NewScanner(f)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if pending.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if pending.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // comment inside a continued instruction
		}
		if pending.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(trimmed, `\`) {
			pending.WriteString(strings.TrimSuffix(trimmed, `\`) + " ")
			continue
		}
		pending.WriteString(trimmed)
		text := pending.String()
		pending.Reset()
		cmd, args, _ := strings.Cut(text, " ")
		in := instruction{line: start, cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)}
		if in.cmd == "FROM" {
			fields := strings.Fields(in.args)
			var s stage
			for i := 0; i < len(fields); i++ {
				switch {
				case strings.HasPrefix(fields[i], "--platform="):
					s.platform = strings.TrimPrefix(fields[i], "--platform=")
				case strings.HasPrefix(fields[i], "--"):
				case strings.EqualFold(fields[i], "AS") && i+1 < len(fields):
					s.name = fields[i+1]
					i++
				default:
					s.from = fields[i]
				}
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile:%d: %s before FROM", in.line, in.cmd)
			}
			continue
		}
		stages[len(stages)-1].instructions = append(stages[len(stages)-1].instructions, in)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return stages
}

// buildScript is the release build command, which the Dockerfile and CI
// both run.
const buildScript = "hack/go-build.sh"

// buildScriptRun returns the build stage's RUN of buildScript.
func buildScriptRun(t *testing.T, build stage) instruction {
	t.Helper()
	var runs []instruction
	for _, in := range build.all("RUN") {
		if slices.Contains(strings.Fields(in.args), buildScript) {
			runs = append(runs, in)
		}
	}
	if len(runs) != 1 {
		t.Fatalf("the build stage runs %s %d times, want once", buildScript, len(runs))
	}
	return runs[0]
}

// scriptBuild reads buildScript: its go build command, continuation lines
// joined, and whether it exports CGO_ENABLED=0.
func scriptBuild(t *testing.T) (cmdline string, cgoDisabled bool) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(moduleRoot(t), buildScript))
	if err != nil {
		t.Fatal(err)
	}
	var joined []string
	var pending strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			pending.WriteString(strings.TrimSuffix(line, `\`) + " ")
			continue
		}
		pending.WriteString(line)
		joined = append(joined, pending.String())
		pending.Reset()
	}
	for _, line := range joined {
		switch {
		case line == "export CGO_ENABLED=0":
			cgoDisabled = true
		case strings.HasPrefix(line, "go build "):
			if cmdline != "" {
				t.Fatalf("%s has two go build commands", buildScript)
			}
			cmdline = line
		}
	}
	if cmdline == "" {
		t.Fatalf("%s has no go build command", buildScript)
	}
	return cmdline, cgoDisabled
}

// testBuildFlags reads the go build command of cmd/obo-gateway/main_test.go,
// which builds the binary the way the Dockerfile does: the literal
// arguments of exec.Command("go", "build", ...) and whether the file sets
// CGO_ENABLED=0.
func testBuildFlags(t *testing.T) (args []string, cgoDisabled bool) {
	t.Helper()
	path := filepath.Join(moduleRoot(t), "cmd", "obo-gateway", "main_test.go")
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	ast.Inspect(file, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			if s, err := strconv.Unquote(n.Value); err == nil && s == "CGO_ENABLED=0" {
				cgoDisabled = true
			}
		case *ast.CallExpr:
			sel, ok := n.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "Command" || len(n.Args) < 2 {
				return true
			}
			var lits []string
			for _, a := range n.Args {
				if lit, ok := a.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					lits = append(lits, s)
				} else {
					lits = append(lits, "<expr>")
				}
			}
			if lits[0] == "go" && lits[1] == "build" {
				args = lits[2:]
			}
		}
		return true
	})
	if args == nil {
		t.Fatalf("%s: no exec.Command(\"go\", \"build\", ...) found", path)
	}
	return args, cgoDisabled
}

// buildTags returns the value of the -tags flag of a go build command
// line, or "" when it has none.
func buildTags(cmdline string) string {
	if m := regexp.MustCompile(`(?:^|\s)-tags[ =]"?([^\s"]+)`).FindStringSubmatch(cmdline); m != nil {
		return m[1]
	}
	return ""
}

// flagValue returns the argument after flag name in args, or "".
func flagValue(args []string, name string) string {
	if i := slices.Index(args, name); i >= 0 && i+1 < len(args) {
		return args[i+1]
	}
	return ""
}

// ldflagsSummary reduces -ldflags to its flags and the names set with -X:
// "-s -w -X main.version=... -X main.commit=..." -> [-s -w -X main.commit -X main.version].
func ldflagsSummary(ldflags string) []string {
	var out []string
	fields := strings.Fields(ldflags)
	for i := 0; i < len(fields); i++ {
		if fields[i] == "-X" && i+1 < len(fields) {
			name, _, _ := strings.Cut(fields[i+1], "=")
			out = append(out, "-X "+name)
			i++
			continue
		}
		out = append(out, fields[i])
	}
	slices.Sort(out)
	return out
}

func TestDockerfile(t *testing.T) {
	root := moduleRoot(t)
	stages := parseDockerfile(t, filepath.Join(root, "Dockerfile"))
	if len(stages) != 2 {
		t.Fatalf("Dockerfile has %d stages, want 2 (build and final)", len(stages))
	}
	build, final := stages[0], stages[1]

	t.Run("build stage", func(t *testing.T) {
		m := regexp.MustCompile(`^golang:(1\.\d+)\.\d+-bookworm$`).FindStringSubmatch(build.from)
		if m == nil {
			t.Fatalf("build stage FROM %q, want golang:<exact version>-bookworm", build.from)
		}
		gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
		if err != nil {
			t.Fatal(err)
		}
		gv := regexp.MustCompile(`(?m)^go (1\.\d+)`).FindSubmatch(gomod)
		if gv == nil || string(gv[1]) != m[1] {
			t.Errorf("build image Go %s, go.mod says go %s", m[1], gv[1])
		}
		if build.name == "" {
			t.Error("build stage has no name (FROM ... AS build)")
		}

		// go mod download in a layer of its own, before the sources.
		download, copyAll := -1, -1
		for i, in := range build.instructions {
			switch {
			case in.cmd == "COPY" && strings.Fields(in.args)[0] == "go.mod":
				if !strings.Contains(in.args, "go.sum") {
					t.Errorf("Dockerfile:%d: COPY go.mod without go.sum", in.line)
				}
			case in.cmd == "RUN" && strings.Contains(in.args, "go mod download") && download < 0:
				download = i
			case in.cmd == "COPY" && strings.HasPrefix(in.args, ". "):
				copyAll = i
			}
		}
		if download < 0 || copyAll < 0 || download > copyAll {
			t.Errorf("go mod download (instruction %d) must come before COPY . (instruction %d)", download, copyAll)
		}

		// Cross-compiled: the stage runs on the builder's platform and
		// builds for the target's, through the build script CI runs too.
		if build.platform != "$BUILDPLATFORM" && build.platform != "${BUILDPLATFORM}" {
			t.Errorf("build stage FROM --platform=%q, want --platform=$BUILDPLATFORM (no emulation of the target)", build.platform)
		}
		if final.platform != "" {
			t.Errorf("final stage FROM --platform=%q: it must be the target platform's image", final.platform)
		}
		run := buildScriptRun(t, build)
		for _, arg := range []string{"TARGETOS", "TARGETARCH"} {
			declared := slices.ContainsFunc(build.instructions, func(in instruction) bool {
				return in.cmd == "ARG" && in.args == arg && in.line < run.line
			})
			if !declared {
				t.Errorf("build stage lacks ARG %s before Dockerfile:%d (without it the RUN sees no value)", arg, run.line)
			}
		}
		for _, env := range []string{"GOOS=${TARGETOS}", "GOARCH=${TARGETARCH}", "VERSION=${VERSION}", "COMMIT=${COMMIT}"} {
			if !slices.Contains(strings.Fields(run.args), env) {
				t.Errorf("Dockerfile:%d: %s does not set %s", run.line, run.args, env)
			}
		}
		for _, in := range build.all("RUN") {
			if strings.Contains(in.args, "go build") {
				t.Errorf("Dockerfile:%d: go build of its own; build with %s, as CI does", in.line, buildScript)
			}
		}

		// The build command (the script's) matches cmd/obo-gateway/main_test.go.
		goBuild, cgo := scriptBuild(t)
		if !cgo {
			t.Errorf("%s does not export CGO_ENABLED=0", buildScript)
		}
		lm := regexp.MustCompile(`-ldflags\s+"([^"]*)"`).FindStringSubmatch(goBuild)
		if lm == nil {
			t.Fatalf("go build without -ldflags \"...\": %s", goBuild)
		}
		dockerLdflags := ldflagsSummary(lm[1])
		for _, want := range []string{"-X main.version=${VERSION:-dev}", "-X main.commit=${COMMIT:-unknown}"} {
			if !strings.Contains(lm[1], want) {
				t.Errorf("-ldflags %q lacks %q", lm[1], want)
			}
		}
		for _, arg := range []string{"VERSION", "COMMIT"} {
			if !slices.ContainsFunc(build.all("ARG"), func(in instruction) bool { return strings.HasPrefix(in.args, arg) }) {
				t.Errorf("build stage lacks ARG %s", arg)
			}
		}

		testArgs, testCGO := testBuildFlags(t)
		if !testCGO {
			t.Error("cmd/obo-gateway/main_test.go no longer builds with CGO_ENABLED=0; keep it and the Dockerfile in step")
		}
		for i := 0; i < len(testArgs); i++ {
			switch flag := testArgs[i]; {
			case flag == "-ldflags" || flag == "-o":
				i++ // compared below, or irrelevant
			case flag == "-tags" && i+1 < len(testArgs):
				i++ // compared below
			case strings.HasPrefix(flag, "-") && !strings.Contains(goBuild, flag):
				t.Errorf("main_test.go builds with %s, %s does not", flag, buildScript)
			}
		}
		if !strings.Contains(goBuild, "-trimpath") || !slices.Contains(testArgs, "-trimpath") {
			t.Errorf("both builds must use -trimpath: %s %q, main_test.go %q", buildScript, goBuild, testArgs)
		}
		i := slices.Index(testArgs, "-ldflags")
		if i < 0 || i+1 >= len(testArgs) {
			t.Fatalf("main_test.go builds without -ldflags: %q", testArgs)
		}
		if testLdflags := ldflagsSummary(testArgs[i+1]); !slices.Equal(testLdflags, dockerLdflags) {
			t.Errorf("-ldflags differ: %s %q, main_test.go %q", buildScript, dockerLdflags, testLdflags)
		}
		if dockerTags, testTags := buildTags(goBuild), flagValue(testArgs, "-tags"); dockerTags != testTags {
			t.Errorf("-tags differ: %s %q, main_test.go %q", buildScript, dockerTags, testTags)
		}

		// The -X targets exist in package main.
		mainGo, err := os.ReadFile(filepath.Join(root, "cmd", "obo-gateway", "main.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{"version", "commit"} {
			if !regexp.MustCompile(`(?m)^\s*` + v + `\s+=\s+"`).Match(mainGo) {
				t.Errorf("cmd/obo-gateway/main.go has no string variable %s for -X main.%s", v, v)
			}
		}
	})

	t.Run("final stage", func(t *testing.T) {
		if !regexp.MustCompile(`^gcr\.io/distroless/static-debian12:nonroot(@sha256:[0-9a-f]{64})?$`).MatchString(final.from) {
			t.Errorf("final stage FROM %q, want gcr.io/distroless/static-debian12:nonroot", final.from)
		}
		var binary string
		for _, in := range final.all("COPY") {
			f := strings.Fields(in.args)
			if len(f) == 3 && f[0] == "--from="+build.name {
				binary = f[2]
			}
		}
		if binary == "" {
			t.Fatal("no COPY --from=<build stage> of the binary")
		}
		users := final.all("USER")
		if len(users) != 1 || users[0].args != "65532:65532" {
			t.Errorf("USER %v, want 65532:65532", users)
		}
		exposed := map[string]bool{}
		for _, in := range final.all("EXPOSE") {
			for _, p := range strings.Fields(in.args) {
				exposed[p] = true
			}
		}
		if !exposed["8080"] || !exposed["9090"] {
			t.Errorf("EXPOSE %v, want 8080 and 9090", exposed)
		}
		entry := execForm(t, final, "ENTRYPOINT")
		if len(entry) != 1 || (entry[0] != binary && !(entry[0] == filepath.Base(binary) && onDefaultPath(filepath.Dir(binary)))) {
			t.Errorf("ENTRYPOINT %q does not run the copied binary %s", entry, binary)
		}
		if cmd := execForm(t, final, "CMD"); !slices.Equal(cmd, []string{"serve", "--config", configFile}) {
			t.Errorf("CMD %q, want [serve --config %s] (the chart mounts the configuration there)", cmd, configFile)
		}
		labels := map[string]string{}
		for _, in := range final.all("LABEL") {
			for _, m := range regexp.MustCompile(`([a-z.]+)="([^"]*)"`).FindAllStringSubmatch(in.args, -1) {
				labels[m[1]] = m[2]
			}
		}
		for _, key := range []string{"title", "description", "source", "licenses", "version", "revision"} {
			if labels["org.opencontainers.image."+key] == "" {
				t.Errorf("no LABEL org.opencontainers.image.%s", key)
			}
		}
		if labels["org.opencontainers.image.version"] != "${VERSION}" || labels["org.opencontainers.image.revision"] != "${COMMIT}" {
			t.Errorf("image version/revision labels %q, %q, want ${VERSION}, ${COMMIT}",
				labels["org.opencontainers.image.version"], labels["org.opencontainers.image.revision"])
		}
		for _, in := range final.instructions {
			if in.cmd == "RUN" {
				t.Errorf("Dockerfile:%d: RUN in the distroless stage (it has no shell)", in.line)
			}
		}
	})
}

// TestCIBuildsArm64WithTheImageBuild: CI builds the linux/arm64 binary with
// the build script the Dockerfile runs, not with flags of its own, and checks
// what it built.
func TestCIBuildsArm64WithTheImageBuild(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(moduleRoot(t), ".ci", "run"))
	if err != nil {
		t.Fatal(err)
	}
	var arm64 []string
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if slices.Contains(fields, "go") && slices.Contains(fields, "build") {
			t.Errorf(".ci/run: %q builds with flags of its own; run %s", strings.TrimSpace(line), buildScript)
		}
		if slices.Contains(fields, buildScript) && slices.Contains(fields, "GOOS=linux") && slices.Contains(fields, "GOARCH=arm64") {
			arm64 = append(arm64, line)
		}
	}
	if len(arm64) != 1 {
		t.Fatalf(".ci/run runs GOOS=linux GOARCH=arm64 bash %s %d times, want once", buildScript, len(arm64))
	}
	// It checks the binary's build information: the platform, and no cgo.
	for _, want := range []string{"go version -m", `build\tGOARCH=arm64`, `build\tCGO_ENABLED=0`} {
		if !strings.Contains(string(data), want) {
			t.Errorf(".ci/run does not check %q of the arm64 binary", want)
		}
	}
}

// onDefaultPath reports whether dir is on the PATH of the distroless image.
func onDefaultPath(dir string) bool {
	return slices.Contains([]string{"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"}, dir)
}

func execForm(t *testing.T, s stage, cmd string) []string {
	t.Helper()
	ins := s.all(cmd)
	if len(ins) != 1 {
		t.Fatalf("%d %s instructions in the final stage, want 1", len(ins), cmd)
	}
	var out []string
	if err := json.Unmarshal([]byte(ins[0].args), &out); err != nil {
		t.Fatalf("Dockerfile:%d: %s is not in exec form: %v", ins[0].line, cmd, err)
	}
	return out
}

// TestDockerignore checks that .dockerignore keeps what the build needs.
func TestDockerignore(t *testing.T) {
	root := moduleRoot(t)
	data, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			patterns = append(patterns, strings.TrimPrefix(line, "/"))
		}
	}
	// The last pattern that matches a path or one of its parent
	// directories decides; a "!" pattern keeps what it matches.
	ignored := func(p string) bool {
		out := false
		for _, pat := range patterns {
			keep := strings.HasPrefix(pat, "!")
			pat = strings.TrimPrefix(pat, "!")
			for q := p; q != "."; q = filepath.Dir(q) {
				re := "^" + regexp.QuoteMeta(pat) + "$"
				re = strings.ReplaceAll(re, `\*\*/`, `(.*/)?`)
				re = strings.ReplaceAll(re, `\*`, `[^/]*`)
				if regexp.MustCompile(re).MatchString(q) {
					out = !keep
					break
				}
			}
		}
		return out
	}
	for _, need := range []string{"go.mod", "go.sum", buildScript, "cmd/obo-gateway/main.go", "internal/config/config.go", "proxy", "obo", "cache", "metrics"} {
		if ignored(need) {
			t.Errorf(".dockerignore excludes %s, which the build needs", need)
		}
	}
	for _, drop := range []string{".git", "hack/chart-check.sh", "charts/obo-gateway/Chart.yaml", "cmd/obo-gateway/main_test.go", "cmd/obo-gateway/testdata/valid.yaml"} {
		if !ignored(drop) {
			t.Errorf(".dockerignore keeps %s in the build context", drop)
		}
	}
}
