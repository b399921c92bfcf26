package iocctl

import (
	"bytes"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestParseEndOfFlags checks that "--" ends the flags: what follows is
// arguments even if it starts with "-", while flags before it still count.
func TestParseEndOfFlags(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		wantRest []string
		wantKey  string
		wantAll  bool
	}{
		{[]string{"air", "--key", "k", "--", "-f.json"}, []string{"air", "-f.json"}, "k", false},
		{[]string{"--all", "air", "--", "-f.json", "--key", "x"}, []string{"air", "-f.json", "--key", "x"}, "", true},
		{[]string{"air", "--", "--", "-"}, []string{"air", "--", "-"}, "", false},
		{[]string{"--", "-air"}, []string{"-air"}, "", false},
		{[]string{"--all", "--", "air", "-f.json", "-"}, []string{"air", "-f.json", "-"}, "", true},
		// A "--" that is a flag's value is that value, not the end of the flags.
		{[]string{"--key", "--", "air", "--all"}, []string{"air"}, "--", true},
		{[]string{"--key=x", "air", "--all", "--", "--all"}, []string{"air", "--all"}, "x", true},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			key := fs.String("key", "", "")
			all := fs.Bool("all", false, "")
			rest, err := parse(fs, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rest, tc.wantRest) || *key != tc.wantKey || *all != tc.wantAll {
				t.Errorf("got %q, --key %q, --all %v; want %q, %q, %v", rest, *key, *all, tc.wantRest, tc.wantKey, tc.wantAll)
			}
		})
	}
}

// TestPublishFileAfterEndOfFlags publishes a file whose name starts with "-",
// given after "--" with the kind, the flags given before it.
func TestPublishFileAfterEndOfFlags(t *testing.T) {
	var (
		mu   sync.Mutex
		body string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/feeds/air" || r.Header.Get("Authorization") != "Bearer ioc_src" {
			http.Error(w, "no", http.StatusNotFound)
			return
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(r.Body)
		mu.Lock()
		body = b.String()
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"accepted":1,"results":[{"index":0,"status":"accepted"}]}`)
	}))
	defer srv.Close()
	t.Chdir(t.TempDir())
	if err := os.WriteFile("-air.ndjson", []byte(`{"id":"a"}`+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := run(t, Env{}, "publish", "--url", srv.URL, "--token", "ioc_src", "--", "air", "-air.ndjson")
	if err != nil {
		t.Fatalf("publish -- air -air.ndjson: %v (stderr %q)", err, errOut)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(body, `"id":"a"`) || !strings.Contains(out, "1 items: 1 accepted") {
		t.Errorf("sent %q, printed %q; want the file's item sent and accepted", body, out)
	}
}
