package agentclients

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestMain installs the pinned npm packages when node is present and they
// are missing, so that the README's test command works on a fresh clone.
func TestMain(m *testing.M) {
	if err := installClients(); err != nil {
		fmt.Fprintln(os.Stderr, "agentclients:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// installClients runs npm ci from the committed package-lock.json unless
// node is missing (the tests then skip) or the packages are already there.
func installClients() error {
	if _, err := exec.LookPath("node"); err != nil {
		return nil
	}
	if _, err := os.Stat(filepath.Join("node_modules", "@microsoft", "agents-hosting", "package.json")); err == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--loglevel=error")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("npm ci (installs @microsoft/agents-hosting from package-lock.json): %w", err)
	}
	return nil
}
