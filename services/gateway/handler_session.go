package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/routes"
)

// Sessions for the wall screen: a browser signs in once, with a viewer key
// pasted into the login form or a one-time code from the URL iochub dev
// prints, and gets a signed HttpOnly cookie; its fetches and its WebSocket
// then carry no secret in URLs or scripts.
//
//	POST   /v1/session   body token=<key> or code=<one-time code> (form or JSON): sets the cookie
//	GET    /v1/session?code=<one-time code>: the same for a code; without code: who am I (401 if nobody)
//	DELETE /v1/session   clears the cookie

const maxSessionBody = 4 << 10

func (g *Gateway) registerSession(mux routes.Mux) {
	mux.HandleFunc("POST /v1/session", g.serveSessionPost)
	mux.HandleFunc("GET /v1/session", g.serveSessionGet)
	mux.HandleFunc("DELETE /v1/session", g.serveSessionDelete)
}

// sessionAnswer is the body of a sign-in or who-am-I answer.
type sessionAnswer struct {
	Principal auth.Principal `json:"principal"`
}

func (g *Gateway) serveSessionPost(w http.ResponseWriter, r *http.Request) {
	if !g.originAllowed(r) {
		writeProblem(w, r, http.StatusForbidden, "this Origin may not sign in to this hub")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSessionBody))
	if err != nil {
		writeProblem(w, r, http.StatusRequestEntityTooLarge, "body: larger than 4 KiB or unreadable")
		return
	}
	var in struct {
		Token string `json:"token"`
		Code  string `json:"code"`
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(body, &in); err != nil {
			writeProblem(w, r, http.StatusBadRequest, `body: want {"token":"..."} or {"code":"..."}: `+err.Error())
			return
		}
	} else {
		v, err := url.ParseQuery(string(body))
		if err != nil {
			writeProblem(w, r, http.StatusBadRequest, "body: want token=... or code=... (form-encoded)")
			return
		}
		in.Token, in.Code = strings.TrimSpace(v.Get("token")), strings.TrimSpace(v.Get("code"))
	}
	switch {
	case in.Token != "" && in.Code != "":
		writeProblem(w, r, http.StatusBadRequest, "give token or code, not both")
	case in.Token != "":
		p, err := g.deps.Auth.Token(r.Context(), in.Token)
		if err != nil {
			g.signInFailed(w, r, err)
			return
		}
		g.signedIn(w, r, p)
	case in.Code != "":
		g.redeem(w, r, in.Code)
	default:
		writeProblem(w, r, http.StatusBadRequest, "give token (an identity's key) or code (a one-time sign-in code)")
	}
}

func (g *Gateway) serveSessionGet(w http.ResponseWriter, r *http.Request) {
	if code := r.URL.Query().Get("code"); code != "" {
		// A link on another site would sign the browser in as the code's
		// identity (login CSRF): a code's URL is opened directly (typed,
		// pasted, from the terminal: Sec-Fetch-Site none) or from the hub.
		// The code is not spent.
		if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
			writeProblem(w, r, http.StatusForbidden, "a sign-in code's link was followed from another site: open it directly")
			return
		}
		g.redeem(w, r, code)
		return
	}
	p, ok := g.authenticate(w, r)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, sessionAnswer{Principal: p})
}

func (g *Gateway) serveSessionDelete(w http.ResponseWriter, r *http.Request) {
	g.deps.Auth.EndSession(w, r)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

func (g *Gateway) redeem(w http.ResponseWriter, r *http.Request, code string) {
	p, err := g.deps.Auth.RedeemCode(code)
	if err != nil {
		g.signInFailed(w, r, err)
		return
	}
	g.signedIn(w, r, p)
}

func (g *Gateway) signInFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, auth.ErrNotLoaded) {
		w.Header().Set("Retry-After", "1")
		writeProblem(w, r, http.StatusServiceUnavailable, "identities are still loading; retry in a second")
		return
	}
	if errors.Is(err, auth.ErrBadCode) {
		g.credentialsRefused(w, r, "sign-in refused: "+auth.ErrBadCode.Error(), err)
		return
	}
	g.credentialsRefused(w, r, "sign-in refused: the token is not valid (unknown, revoked or expired)", err)
}

func (g *Gateway) signedIn(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	if strings.HasPrefix(p.ID, auth.OIDCPrefix) {
		// A session names a stored identity; an OIDC token is sent as a bearer token each time.
		writeProblem(w, r, http.StatusBadRequest, "an OIDC token is not traded for a session: send it as Authorization: Bearer on each request")
		return
	}
	g.deps.Auth.StartSession(w, r, p)
	g.log.Info("session started", "identity", p.ID, "role", string(p.Role))
	writeJSON(w, http.StatusOK, sessionAnswer{Principal: p})
}
