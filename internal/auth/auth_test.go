package auth

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
)

type fakeLoader struct {
	list []Identity
	err  error
}

func (f *fakeLoader) Identities(context.Context) ([]Identity, error) { return f.list, f.err }

func TestPrincipalRights(t *testing.T) {
	v01 := Principal{ID: "v", Role: RoleViewer, Scopes: []string{"01"}}
	o01 := Principal{ID: "o", Role: RoleOperator, Scopes: []string{"01", "79"}}
	aAll := Principal{ID: "a", Role: RoleAdmin, Scopes: []string{"*"}}
	a01 := Principal{ID: "a1", Role: RoleAdmin, Scopes: []string{"01"}}
	none := Principal{ID: "x", Role: "", Scopes: []string{"*"}}
	for _, tc := range []struct {
		p                     Principal
		province              string
		read, act, admin, all bool
	}{
		{v01, "01", true, false, false, false},
		{v01, "79", false, false, false, false},
		{v01, "", false, false, false, false},
		{o01, "79", true, true, false, false},
		{o01, "48", false, false, false, false},
		{aAll, "48", true, true, true, true},
		{a01, "01", true, true, true, false},
		{a01, "79", false, false, false, false},
		{none, "01", false, false, false, true},
	} {
		if got := [4]bool{tc.p.CanRead(tc.province), tc.p.CanAct(tc.province), tc.p.CanAdmin(tc.province), tc.p.AllProvinces()}; got != [4]bool{tc.read, tc.act, tc.admin, tc.all} {
			t.Errorf("%s (%s of %v) in %q: read, act, admin, all = %v; want %v", tc.p.ID, tc.p.Role, tc.p.Scopes, tc.province, got, [4]bool{tc.read, tc.act, tc.admin, tc.all})
		}
	}
	for _, tc := range []struct {
		p      Principal
		scopes []string
		want   bool
	}{
		{a01, []string{"01"}, true},
		{a01, []string{"01", "79"}, false},
		{a01, []string{"*"}, false},
		{a01, nil, false},
		{aAll, []string{"*"}, true},
		{o01, []string{"79"}, true},
	} {
		if got := tc.p.Covers(nil, tc.scopes); got != tc.want {
			t.Errorf("%v covers %v = %v; want %v", tc.p.Scopes, tc.scopes, got, tc.want)
		}
	}
}

// tree is a Hierarchy of two provinces: 01 with wards 00070 and 00004 (in
// district 001), 79 with ward 26734.
type tree map[string]string

func (t tree) Within(code, ancestor string) bool {
	for range 8 {
		if code == ancestor {
			return true
		}
		parent, ok := t[code]
		if !ok {
			return false
		}
		code = parent
	}
	return false
}

func TestUnitScopes(t *testing.T) {
	h := tree{"00070": "001", "00004": "001", "001": "01", "26734": "79"}
	ward := Principal{ID: "w", Role: RoleViewer, Scopes: []string{"00070"}}
	op := Principal{ID: "o", Role: RoleOperator, Scopes: []string{"00070", "26734"}}
	district := Principal{ID: "d", Role: RoleAdmin, Scopes: []string{"001"}}
	prov := Principal{ID: "p", Role: RoleAdmin, Scopes: []string{"01"}}
	for _, tc := range []struct {
		p                Principal
		code             string
		read, act, where bool // CanReadUnit, CanActUnit, ReadsIn(code)
	}{
		{ward, "00070", true, false, true},
		{ward, "00004", false, false, false},
		{ward, "01", false, false, true},
		{ward, "79", false, false, false},
		{ward, "", false, false, false},
		{op, "26734", true, true, true},
		{op, "79", false, false, true},
		{op, "00004", false, false, false},
		{district, "00004", true, true, true},
		{district, "01", false, false, true},
		{prov, "00070", true, true, true},
		{prov, "01", true, true, true},
		{prov, "79", false, false, false},
	} {
		got := [3]bool{tc.p.CanReadUnit(h, tc.code), tc.p.CanActUnit(h, tc.code), tc.p.ReadsIn(h, tc.code)}
		if want := [3]bool{tc.read, tc.act, tc.where}; got != want {
			t.Errorf("%v (%s) on %q: read unit, act unit, reads in = %v; want %v", tc.p.Scopes, tc.p.Role, tc.code, got, want)
		}
	}
	if ward.CanRead("01") || op.CanAct("79") || district.CanAdmin("01") {
		t.Error("a unit scope grants its whole province")
	}
	if got := ward.UnitsIn(h, "01"); !slices.Equal(got, []string{"00070"}) {
		t.Errorf("UnitsIn(01) of a ward viewer = %v; want [00070]", got)
	}
	if got := prov.UnitsIn(h, "01"); got != nil {
		t.Errorf("UnitsIn(01) of a province admin = %v; want nil (the whole province)", got)
	}
	if got := ward.UnitsIn(h, "79"); got != nil {
		t.Errorf("UnitsIn(79) of a ward viewer of 01 = %v; want none", got)
	}
	if ward.ReadsIn(nil, "01") {
		t.Error("without a hierarchy a ward scope must not reach its province")
	}
	for _, tc := range []struct {
		p      Principal
		scopes []string
		want   bool
	}{
		{prov, []string{"00070", "001"}, true},
		{prov, []string{"00070", "26734"}, false},
		{district, []string{"00070"}, true},
		{district, []string{"01"}, false},
		{district, []string{"001"}, true},
		{ward, []string{"001"}, false},
	} {
		if got := tc.p.Covers(h, tc.scopes); got != tc.want {
			t.Errorf("%v covers %v = %v; want %v", tc.p.Scopes, tc.scopes, got, tc.want)
		}
	}
}

func TestScopesAndIdentity(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{"01", []string{"01"}, ""},
		{"79, 01,01", []string{"01", "79"}, ""},
		{"*", []string{"*"}, ""},
		{"", nil, "none given"},
		{"1", nil, `scope "1"`},
		{"00070,01", []string{"00070", "01"}, ""},
		{"*,01", nil, "give it alone"},
		{"hn", []string{"hn"}, ""},
		{"0.1", nil, `scope "0.1"`},
		{"01,a b", nil, `scope "a b"`},
		{strings.Repeat("1", 33), nil, "want a unit code"},
	} {
		got, err := ParseScopes(tc.in)
		if tc.err == "" && (err != nil || !slices.Equal(got, tc.want)) || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrBadIdentity)) {
			t.Errorf("ParseScopes(%q) = %v, %v; want %v, %q", tc.in, got, err, tc.want, tc.err)
		}
	}
	if _, err := ParseRole("root"); !errors.Is(err, ErrBadIdentity) {
		t.Errorf("ParseRole(root) = %v; want ErrBadIdentity", err)
	}
	tok, sum := NewToken()
	tok2, _ := NewToken()
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) < len(TokenPrefix)+43 || tok == tok2 || string(sum) != string(HashToken(tok)) {
		t.Errorf("NewToken = %q; want %s and 32 random bytes, hashed", tok, TokenPrefix)
	}
	id := Identity{ID: NewID(), Name: "Wall, Hà Nội", Role: RoleViewer, Scopes: []string{"01"}, TokenSHA256: sum}
	if err := id.Check(); err != nil {
		t.Errorf("Check of a good identity: %v", err)
	}
	for name, bad := range map[string]Identity{
		"id":     {ID: "id_xyz", Name: "n", Role: RoleViewer, Scopes: []string{"01"}, TokenSHA256: sum},
		"upper":  {ID: "id_00000000000000AB", Name: "n", Role: RoleViewer, Scopes: []string{"01"}, TokenSHA256: sum},
		"name":   {ID: id.ID, Name: "a\nb", Role: RoleViewer, Scopes: []string{"01"}, TokenSHA256: sum},
		"empty":  {ID: id.ID, Name: " ", Role: RoleViewer, Scopes: []string{"01"}, TokenSHA256: sum},
		"role":   {ID: id.ID, Name: "n", Role: "god", Scopes: []string{"01"}, TokenSHA256: sum},
		"scopes": {ID: id.ID, Name: "n", Role: RoleViewer, TokenSHA256: sum},
		"hash":   {ID: id.ID, Name: "n", Role: RoleViewer, Scopes: []string{"01"}, TokenSHA256: sum[:5]},
	} {
		if err := bad.Check(); !errors.Is(err, ErrBadIdentity) {
			t.Errorf("Check with a bad %s = %v; want ErrBadIdentity", name, err)
		}
	}
}

// newTestAuth has the static token "dev-tok" and the loader's identities.
func newTestAuth(t *testing.T, l Loader, now *time.Time) *Authenticator {
	t.Helper()
	a, err := New(Config{
		Static:     []StaticToken{{Token: "dev-tok", Principal: Principal{ID: "dev", Role: RoleAdmin, Scopes: []string{"*"}}}},
		SessionKey: []byte(strings.Repeat("k", 32)),
		Now:        func() time.Time { return *now },
	}, l, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func request(authz string, cookie string) *http.Request {
	r := httptest.NewRequest("GET", "/v1/units?province=01", nil)
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	if cookie != "" {
		r.AddCookie(&http.Cookie{Name: CookieName, Value: cookie})
	}
	return r
}

func TestAuthenticate(t *testing.T) {
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	tok, sum := NewToken()
	revokedTok, revokedSum := NewToken()
	l := &fakeLoader{list: []Identity{
		{ID: "id_0000000000000001", Name: "v", Role: RoleViewer, Scopes: []string{"01"}, TokenSHA256: sum},
		{ID: "id_0000000000000002", Name: "r", Role: RoleViewer, Scopes: []string{"01"}, TokenSHA256: revokedSum, Revoked: true},
	}}
	a := newTestAuth(t, l, &now)

	if _, err := a.Authenticate(request("Bearer "+tok, "")); !errors.Is(err, ErrNotLoaded) {
		t.Errorf("an identity token before the first load: %v; want ErrNotLoaded (503, not 401)", err)
	}
	if p, err := a.Authenticate(request("Bearer dev-tok", "")); err != nil || p.ID != "dev" {
		t.Errorf("static token before the first load = %v, %v; want dev", p, err)
	}
	if err := a.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, authz string
		id          string
		err         error
	}{
		{"identity", "Bearer " + tok, "id_0000000000000001", nil},
		{"lower-case scheme", "bearer " + tok, "id_0000000000000001", nil},
		{"static", "Bearer dev-tok", "dev", nil},
		{"revoked", "Bearer " + revokedTok, "", ErrInvalidCredentials},
		{"unknown", "Bearer iocid_nope", "", ErrInvalidCredentials},
		{"source token", "Bearer ioc_abc", "", ErrInvalidCredentials},
		{"basic", "Basic ZGV2LXRvazo=", "", ErrInvalidCredentials},
		{"empty bearer", "Bearer ", "", ErrInvalidCredentials},
		{"none", "", "", ErrNoCredentials},
	} {
		p, err := a.Authenticate(request(tc.authz, ""))
		if !errors.Is(err, tc.err) || p.ID != tc.id {
			t.Errorf("%s: %v, %v; want %q, %v", tc.name, p.ID, err, tc.id, tc.err)
		}
	}

	// A failed reload keeps the previous identities.
	l.err = errors.New("database down")
	if err := a.Refresh(context.Background()); err == nil {
		t.Error("Refresh hid the loader's error")
	}
	if _, err := a.Token(context.Background(), tok); err != nil {
		t.Errorf("after a failed reload the identity is lost: %v", err)
	}
}

func TestSessions(t *testing.T) {
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	tok, sum := NewToken()
	l := &fakeLoader{list: []Identity{{ID: "id_0000000000000001", Name: "v", Role: RoleViewer, Scopes: []string{"01"}, TokenSHA256: sum}}}
	a := newTestAuth(t, l, &now)
	if err := a.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	p, err := a.Token(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	a.StartSession(w, httptest.NewRequest("POST", "/v1/session", nil), p)
	cs := w.Result().Cookies()
	if len(cs) != 1 || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode || cs[0].Secure || cs[0].MaxAge != 12*3600 {
		t.Fatalf("cookie %+v; want HttpOnly, SameSite=Strict, not Secure on plain HTTP, 12 h", cs)
	}
	v := cs[0].Value
	if strings.Contains(v, tok) {
		t.Fatal("the cookie carries the token")
	}
	if got, err := a.Authenticate(request("", v)); err != nil || got.ID != p.ID {
		t.Errorf("session = %v, %v; want %s", got.ID, err, p.ID)
	}
	// A bearer header wins over the cookie, even a wrong one.
	if _, err := a.Authenticate(request("Bearer wrong", v)); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("wrong bearer with a good cookie: %v; want ErrInvalidCredentials", err)
	}
	for name, bad := range map[string]string{
		"tampered id":    strings.Replace(v, "id_0000000000000001", "id_0000000000000002", 1),
		"tampered time":  strings.Replace(v, ".17", ".27", 1),
		"no signature":   v[:strings.LastIndexByte(v, '.')],
		"other key":      mustAuth(t, strings.Repeat("x", 32)).SessionValue("id_0000000000000001", now.Add(time.Hour)),
		"expired":        a.SessionValue("id_0000000000000001", now.Add(-time.Second)),
		"unknown id":     a.SessionValue("id_00000000000000ff", now.Add(time.Hour)),
		"too long":       strings.Repeat("a", 600),
		"garbage":        "x",
		"wrong version":  "v0.x.1",
		"static revoked": a.SessionValue("operator-token", now.Add(time.Hour)),
	} {
		if _, err := a.Authenticate(request("", bad)); !errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%s cookie: %v; want ErrInvalidCredentials", name, err)
		}
	}
	// TLS or configuration makes the cookie Secure.
	w = httptest.NewRecorder()
	r := httptest.NewRequest("POST", "https://ioc.example.vn/v1/session", nil)
	a.StartSession(w, r, p)
	if c := w.Result().Cookies(); len(c) != 1 || !c[0].Secure {
		t.Errorf("cookie over TLS %+v; want Secure", c)
	}
	// The session ends with the identity, at the next reload.
	l.list = nil
	if err := a.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(request("", v)); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("session of a revoked identity: %v; want ErrInvalidCredentials", err)
	}
	if a.Live(p) || !a.Live(Principal{ID: "dev"}) {
		t.Error("Live does not follow the cache")
	}
	// And when it expires: a principal of a session (a live view opened
	// with it) is live until the cookie's end, and while its identity is.
	ps, err := a.Authenticate(request("", a.SessionValue("dev", now.Add(time.Hour))))
	if err != nil {
		t.Fatal(err)
	}
	if !a.Live(ps) || !ps.Expires.Equal(now.Add(time.Hour).Truncate(time.Second)) {
		t.Errorf("session principal expires %v, live %v; want live until the cookie's end", ps.Expires, a.Live(ps))
	}
	now = now.Add(13 * time.Hour)
	if a.Live(ps) {
		t.Error("a session's principal is live past its cookie's end")
	}
	if _, err := a.Authenticate(request("", a.SessionValue("dev", now.Add(-time.Minute)))); !errors.Is(err, ErrInvalidCredentials) {
		t.Errorf("expired session: %v", err)
	}
	// An OIDC subject (no identity of the hub) is live until its token's end.
	if !a.Live(Principal{ID: OIDCPrefix + "u-1", Expires: now.Add(time.Minute)}) || a.Live(Principal{ID: OIDCPrefix + "u-1", Expires: now}) {
		t.Error("an OIDC principal's liveness is not its token's expiry")
	}
}

func mustAuth(t *testing.T, key string) *Authenticator {
	t.Helper()
	a, err := New(Config{SessionKey: []byte(key)}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestOneTimeCodes(t *testing.T) {
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	a := newTestAuth(t, nil, &now)
	code, err := a.MintCode("dev")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := a.RedeemCode(code); err != nil || p.ID != "dev" {
		t.Fatalf("first use = %v, %v; want dev", p, err)
	}
	if _, err := a.RedeemCode(code); !errors.Is(err, ErrBadCode) {
		t.Errorf("second use: %v; want ErrBadCode", err)
	}
	late, _ := a.MintCode("dev")
	now = now.Add(10 * time.Minute)
	if _, err := a.RedeemCode(late); !errors.Is(err, ErrBadCode) {
		t.Errorf("use after 10 minutes: %v; want ErrBadCode", err)
	}
	gone, _ := a.MintCode("id_0000000000000009")
	if _, err := a.RedeemCode(gone); !errors.Is(err, ErrBadCode) {
		t.Errorf("code of an unknown identity: %v; want ErrBadCode", err)
	}
	if _, err := a.RedeemCode(""); !errors.Is(err, ErrBadCode) {
		t.Errorf("empty code: %v; want ErrBadCode", err)
	}
	for range maxCodes {
		if _, err := a.MintCode("dev"); err != nil {
			t.Fatalf("minting: %v", err)
		}
	}
	if _, err := a.MintCode("dev"); err == nil {
		t.Errorf("minted more than %d waiting codes", maxCodes)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"short key":    {SessionKey: []byte("short")},
		"dotted id":    {Static: []StaticToken{{Token: "t", Principal: Principal{ID: "a.b", Role: RoleAdmin}}}},
		"no role":      {Static: []StaticToken{{Token: "t", Principal: Principal{ID: "a"}}}},
		"stored id":    {Static: []StaticToken{{Token: "t", Principal: Principal{ID: "id_0000000000000001", Role: RoleAdmin}}}},
		"negative ttl": {SessionTTL: -time.Second},
	} {
		if _, err := New(cfg, nil, nil); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
}

// TestSessionBoundToStaticToken: a session of a static principal (the dev
// token, --operator-token) ends when its token changes, though its id does
// not; sessions of stored identities outlive the change.
func TestSessionBoundToStaticToken(t *testing.T) {
	now := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	tok, sum := NewToken()
	l := &fakeLoader{list: []Identity{{ID: "id_0000000000000001", Name: "v", Role: RoleViewer, Scopes: []string{"01"}, TokenSHA256: sum}}}
	withToken := func(static string) *Authenticator {
		a, err := New(Config{
			Static:     []StaticToken{{Token: static, Principal: Principal{ID: "dev", Role: RoleAdmin, Scopes: []string{"*"}}}},
			SessionKey: []byte(strings.Repeat("k", 32)),
			Now:        func() time.Time { return now },
		}, l, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		return a
	}
	a, sameToken, newToken := withToken("token-a"), withToken("token-a"), withToken("token-b")
	signIn := func(token string) string {
		t.Helper()
		p, err := a.Token(context.Background(), token)
		if err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		a.StartSession(w, httptest.NewRequest("POST", "/v1/session", nil), p)
		return w.Result().Cookies()[0].Value
	}
	dev, identity := signIn("token-a"), signIn(tok)
	for _, tc := range []struct {
		name   string
		a      *Authenticator
		cookie string
		want   string
	}{
		{"the dev session, same token", sameToken, dev, "dev"},
		{"the dev session, a new token", newToken, dev, ""},
		{"an identity's session, same dev token", sameToken, identity, "id_0000000000000001"},
		{"an identity's session, a new dev token", newToken, identity, "id_0000000000000001"},
	} {
		p, err := tc.a.Authenticate(request("", tc.cookie))
		if p.ID != tc.want || (tc.want == "") != errors.Is(err, ErrInvalidCredentials) {
			t.Errorf("%s: %q, %v; want %q", tc.name, p.ID, err, tc.want)
		}
	}
}
