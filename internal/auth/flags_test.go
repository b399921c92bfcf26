package auth

import (
	"flag"
	"io"
	"testing"
	"time"
)

func TestSettingsRegisterFlags(t *testing.T) {
	s := Settings{IdentityRefresh: 10 * time.Second}
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	s.RegisterFlags(fs)
	if err := fs.Parse([]string{"--secure-cookies", "--identity-refresh", "3s", "--oidc-issuer", "https://idp.example",
		"--oidc-audience", "iochub", "--oidc-scopes-claim", "units"}); err != nil {
		t.Fatal(err)
	}
	if !s.SecureCookies || s.IdentityRefresh != 3*time.Second || s.OIDC.Issuer != "https://idp.example" ||
		s.OIDC.Audience != "iochub" || s.OIDC.ScopesClaim != "units" || s.SessionKey != "" {
		t.Errorf("settings = %+v", s)
	}
	if d := fs.Lookup("identity-refresh").DefValue; d != "10s" {
		t.Errorf("default of --identity-refresh = %q; want the value it had, 10s", d)
	}
}
