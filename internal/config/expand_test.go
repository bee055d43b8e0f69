package config

import (
	"reflect"
	"testing"
)

func TestExpand(t *testing.T) {
	env := map[string]string{
		"A":         "alpha",
		"EMPTY":     "",
		"WITH_1":    "one",
		"INJECTION": "x\nlisten: 0.0.0.0:80",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	tests := []struct {
		name     string
		in       string
		want     string
		wantErrs []string
	}{
		{name: "no reference", in: "plain", want: "plain"},
		{name: "whole value", in: "${A}", want: "alpha"},
		{name: "embedded", in: "pre-${A}-${WITH_1}-post", want: "pre-alpha-one-post"},
		{name: "empty value", in: "x${EMPTY}y", want: "xy"},
		{name: "escaped dollar", in: "cost $$5", want: "cost $5"},
		{name: "escaped reference", in: "$${A}", want: "${A}"},
		{name: "lone dollar kept", in: "a$b $", want: "a$b $"},
		{name: "newline value kept verbatim", in: "${INJECTION}", want: "x\nlisten: 0.0.0.0:80"},
		{name: "unset", in: "${NOPE}", want: "${NOPE}", wantErrs: []string{"environment variable NOPE is not set"}},
		{name: "two unset", in: "${NOPE}/${NADA}/${A}", want: "${NOPE}/${NADA}/${A}", wantErrs: []string{
			"environment variable NOPE is not set", "environment variable NADA is not set"}},
		{name: "unterminated", in: "a${A", want: "a${A", wantErrs: []string{
			`unterminated variable reference "${A": close it with } (write $$ for a literal $)`}},
		{name: "default syntax unsupported", in: "${A:-x}", want: "${A:-x}", wantErrs: []string{
			`invalid variable reference "${A:-x}": only ${NAME} is supported, where NAME is made of letters, digits and underscores (write $$ for a literal $)`}},
		{name: "empty name", in: "${}", want: "${}", wantErrs: []string{
			`invalid variable reference "${}": only ${NAME} is supported, where NAME is made of letters, digits and underscores (write $$ for a literal $)`}},
		{name: "leading digit", in: "${1A}", want: "${1A}", wantErrs: []string{
			`invalid variable reference "${1A}": only ${NAME} is supported, where NAME is made of letters, digits and underscores (write $$ for a literal $)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := expand(tt.in, lookup)
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
			if !reflect.DeepEqual(errs, tt.wantErrs) {
				t.Errorf("errors = %q, want %q", errs, tt.wantErrs)
			}
		})
	}
}
