// Package config loads, expands, strictly decodes, defaults and validates the
// YAML configuration file of obo-gateway.
//
// The file is read as a YAML node tree first. References of the form
// ${NAME} in string values are then replaced by the value of the environment
// variable NAME ($$ stands for a literal $). Expansion happens after YAML
// parsing and only inside string values, so a variable whose value contains
// ": " or a newline can never add keys or change the structure of the file.
//
// Inside a flow list or mapping ([...] or {...}) a reference must be quoted,
// as in audiences: ["${AUDIENCE}"], because YAML reserves the braces there.
//
// Decoding is strict: an unknown key, a duplicate key, a value of the wrong
// shape or a reference to an unset variable is reported, with the key path
// (for example routes[0].upstream) and the line it was found on. Defaults are
// applied to whatever the file leaves out, and the result is validated.
// Every problem is collected, not only the first, and returned together as
// [Problems], so that an operator can fix the whole file in one pass.
//
// The typical use is:
//
//	cfg, err := config.Load("/etc/obo-gateway/config.yaml")
//	if err != nil {
//		// err is a config.Problems value listing every problem, one per
//		// line, or an error reading the file.
//	}
//	slog.Info("configuration loaded", "config", cfg.Redacted())
package config
