package iocctl

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// secretEnv is an environment holding a source token, an API key and a NATS
// URL with a password, as a developer's shell or a CI job has them.
func secretEnv(name string) string {
	return map[string]string{
		"IOCCTL_TOKEN": "ioc_tokensecret",
		"IOCCTL_KEY":   "iocid_keysecret",
		"NATS_URL":     "nats://reader:natssecret@127.0.0.1:4222",
	}[name]
}

// TestUsageHidesSecrets checks that the usage iocctl prints (for --help and
// for a command line it cannot run, as in a CI log) shows no secret taken
// from the environment as a flag's default.
func TestUsageHidesSecrets(t *testing.T) {
	for _, args := range [][]string{
		{"publish", "--help"}, {"publish", "air"},
		{"tail", "--help"}, {"replay", "--help"},
		{"keys", "create", "--help"}, {"keys", "create"}, {"keys", "list", "--help"}, {"keys", "revoke"},
	} {
		_, errOut, err := run(t, Env{Getenv: secretEnv}, args...)
		if err == nil {
			t.Errorf("%v: no error; want the usage", args)
		}
		if !strings.Contains(errOut, "usage: iocctl") {
			t.Errorf("%v: stderr %q; want the usage", args, errOut)
		}
		for _, secret := range []string{"tokensecret", "keysecret", "natssecret"} {
			if strings.Contains(errOut, secret) {
				t.Errorf("%v: the usage shows %s from the environment:\n%s", args, secret, errOut)
			}
		}
	}
}

// TestSecretsFromEnvironment checks that the token and the key still come
// from the environment, and that the flags still win over it.
func TestSecretsFromEnvironment(t *testing.T) {
	var (
		mu   sync.Mutex
		auth []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if strings.HasPrefix(r.URL.Path, "/v1/feeds/") {
			w.WriteHeader(http.StatusAccepted)
			_, _ = w.Write([]byte(`{"accepted":1,"results":[{"index":0,"status":"accepted"}]}`))
			return
		}
		_, _ = w.Write([]byte(`{"identities":[]}`))
	}))
	defer srv.Close()
	file := filepath.Join(t.TempDir(), "air.json")
	if err := os.WriteFile(file, []byte(`[{"id":"a"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"publish", "air", file, "--url", srv.URL}, "Bearer ioc_tokensecret"},
		{[]string{"publish", "air", file, "--url", srv.URL, "--token", "ioc_flag"}, "Bearer ioc_flag"},
		{[]string{"keys", "list", "--url", srv.URL}, "Bearer iocid_keysecret"},
		{[]string{"keys", "list", "--url", srv.URL, "--key", "iocid_flag"}, "Bearer iocid_flag"},
	} {
		mu.Lock()
		auth = nil
		mu.Unlock()
		if _, _, err := run(t, Env{Getenv: secretEnv}, c.args...); err != nil {
			t.Errorf("%v: %v", c.args, err)
			continue
		}
		mu.Lock()
		got := auth
		mu.Unlock()
		if len(got) != 1 || got[0] != c.want {
			t.Errorf("%v: Authorization %q; want %q", c.args, got, c.want)
		}
	}
}
