package main

import (
	"bytes"
	"os"
	"testing"
)

// TestGeneratedIsCurrent regenerates the schemas from the franz-go version
// go.mod requires: after a franz-go upgrade it fails until `go generate
// ./internal/wirecheck` is run.
func TestGeneratedIsCurrent(t *testing.T) {
	dir, err := DefinitionsDir()
	if err != nil {
		t.Fatal(err)
	}
	want, err := Generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../schema_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("internal/wirecheck/schema_gen.go is stale: run go generate ./internal/wirecheck")
	}
}
