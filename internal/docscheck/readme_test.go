package docscheck

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// The two commands the README gives first: the local demo and the tests.
var readmeCommands = []string{"go run ./cmd/obo-gateway dev", "go test -race ./..."}

const (
	readmeMaxLines     = 300
	readmeCommandsLine = 30 // the commands' block opens before this line
)

func TestREADMEIsShortAndStartsWithTheCommands(t *testing.T) {
	root := repoRoot(t)
	readme := readDoc(t, root, "README.md")
	lines := strings.Split(strings.TrimRight(readme, "\n"), "\n")
	if len(lines) > readmeMaxLines {
		t.Errorf("README.md has %d lines, at most %d: move the depth to docs/", len(lines), readmeMaxLines)
	}
	start := -1
	for i, l := range lines {
		if strings.TrimSpace(l) == "```sh" {
			start = i
			break
		}
	}
	if start < 0 || start+1 >= readmeCommandsLine {
		t.Fatalf("README.md: the first sh block opens on line %d, want one before line %d", start+1, readmeCommandsLine)
	}
	var commands []string
	for _, l := range lines[start+1:] {
		if strings.HasPrefix(l, "```") {
			break
		}
		cmd, _, _ := strings.Cut(l, "#")
		if cmd = strings.TrimSpace(cmd); cmd != "" {
			commands = append(commands, cmd)
		}
	}
	if strings.Join(commands, "\n") != strings.Join(readmeCommands, "\n") {
		t.Errorf("README.md's first commands are %q, want %q", commands, readmeCommands)
	}
	// The demo's command names the main package; CI's last command is the
	// README's test command.
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, "cmd", "obo-gateway", "main.go"), nil, parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	if f.Name.Name != "main" {
		t.Errorf("cmd/obo-gateway/main.go is package %s, not main", f.Name.Name)
	}
	ci := strings.Split(strings.TrimSpace(readDoc(t, root, ".ci/run")), "\n")
	if last := strings.TrimSpace(ci[len(ci)-1]); last != readmeCommands[1] {
		t.Errorf(".ci/run ends with %q, want the README's test command %q", last, readmeCommands[1])
	}
}
