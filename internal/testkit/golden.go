package testkit

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// Golden compares got with the file at path (conventionally
// testdata/<name>.golden.json) and fails the test, showing got, when they
// differ. With update set (each package's -update flag, Prometheus style) it
// writes got to path instead, creating its folder.
func Golden(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
			t.Fatalf("updating %s: %v", path, err)
		}
		if err := os.WriteFile(path, got, 0o600); err != nil {
			t.Fatalf("updating %s: %v", path, err)
		}
		return
	}
	want, err := os.ReadFile(path) //nolint:gosec // G304: the path is the calling test's own golden file
	if err != nil {
		t.Fatalf("reading the golden file: %v (run the test with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what the code produces (run the test with -update after a deliberate change, and review the diff):\n%s", path, got)
	}
}
