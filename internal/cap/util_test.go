package cap

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// malformedFixture is WMO's alert with undeclared cap: prefixes.
const malformedFixture = "cap2geojson_sc.xml"

// exampleFiles lists the well-formed CAP examples in testdata.
func exampleFiles(t testing.TB) []string {
	t.Helper()
	files, err := filepath.Glob("testdata/*.xml")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range files {
		if filepath.Base(f) != malformedFixture {
			out = append(out, f)
		}
	}
	if len(out) < 8 {
		t.Fatalf("found %d examples in testdata; want at least 8", len(out))
	}
	return out
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func parseOne(t testing.TB, doc []byte) Alert {
	t.Helper()
	alerts, err := Parse(bytes.NewReader(doc))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(alerts) != 1 {
		t.Fatalf("Parse gave %d alerts; want 1", len(alerts))
	}
	return alerts[0]
}

func parseFile(t testing.TB, name string) Alert {
	t.Helper()
	return parseOne(t, readFile(t, name))
}

// problemsOf returns the ValidationErrors of err, failing the test if err is
// of another kind.
func problemsOf(t *testing.T, err error) ValidationErrors {
	t.Helper()
	if err == nil {
		t.Fatal("got no error; want ValidationErrors")
	}
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("errors.Is(%v, ErrInvalid) = false; want true", err)
	}
	var list ValidationErrors
	if !errors.As(err, &list) {
		t.Fatalf("error %T %v is not ValidationErrors", err, err)
	}
	return list
}

func mustTime(t testing.TB, s string) time.Time {
	t.Helper()
	tm, reason := parseTime(s)
	if reason != "" {
		t.Fatal(reason)
	}
	return tm
}

// stripDecl drops an XML declaration and processing instructions before the
// root element, to embed a document in a batch.
func stripDecl(doc []byte) string {
	s := string(doc)
	for strings.HasPrefix(strings.TrimSpace(s), "<?") {
		s = strings.TrimSpace(s)
		s = s[strings.Index(s, "?>")+2:]
	}
	return s
}
