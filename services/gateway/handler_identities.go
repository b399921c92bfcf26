package gateway

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/kind"
	"github.com/iochub/iochub/internal/routes"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/gateway/pgread"
)

// The identities admin API (admin role; an admin manages only identities
// whose every scope is within its own):
//
//	POST   /v1/admin/identities        {"name":"...","role":"viewer","scopes":["01"],"kinds":["air"]} → 201 with the token, shown once
//	GET    /v1/admin/identities        the identities within the admin's scopes, without tokens
//	DELETE /v1/admin/identities/{id}   revoke
//
// The gateway never writes the database: it makes the id and the token,
// publishes identity.create (with the token's SHA-256 only) or
// identity.revoke on ACTIONS, and waits briefly for the aggregator to apply
// it, so the answer says whether the change is in effect yet.

const (
	actionTypeIdentityCreate = "identity.create"
	actionTypeIdentityRevoke = "identity.revoke"
	targetKindIdentity       = "identity"
	// identityApplyWait bounds the wait for the aggregator to apply an identity action.
	identityApplyWait = 5 * time.Second
)

func (o *operator) registerIdentities(mux routes.Mux) {
	mux.HandleFunc("POST /v1/admin/identities", o.serveCreateIdentity)
	mux.HandleFunc("GET /v1/admin/identities", o.serveIdentities)
	mux.HandleFunc("DELETE /v1/admin/identities/{id}", o.serveRevokeIdentity)
}

// admin authenticates an admin and checks the database; it answers itself when not.
func (o *operator) admin(w http.ResponseWriter, r *http.Request) (auth.Principal, *pgread.Store, bool) {
	who, ok := o.g.authenticate(w, r)
	if !ok {
		return who, nil, false
	}
	if !who.IsAdmin() {
		forbid(w, r, who, "manage identities (admin role needed)")
		return who, nil, false
	}
	if o.g.readPool == nil {
		writeProblem(w, r, http.StatusServiceUnavailable, "identities cannot be managed: the gateway has no database")
		return who, nil, false
	}
	return who, pgread.New(o.g.readPool), true
}

// identityCreated is the answer of POST /v1/admin/identities.
type identityCreated struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Role   string   `json:"role"`
	Scopes []string `json:"scopes"`
	// Kinds are the kinds the identity reads; empty is every kind.
	Kinds []string `json:"kinds"`
	// Token is the bearer token, shown once: only its hash is stored.
	Token string `json:"token"`
	// Active is false when the aggregator had not applied the creation within
	// a few seconds: the token then works once it has.
	Active   bool   `json:"active"`
	ActionID string `json:"actionId"`
}

func (o *operator) serveCreateIdentity(w http.ResponseWriter, r *http.Request) {
	who, store, ok := o.admin(w, r)
	if !ok {
		return
	}
	var in struct {
		Name   string   `json:"name"`
		Role   string   `json:"role"`
		Scopes []string `json:"scopes"`
		Kinds  []string `json:"kinds"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxActionBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeProblem(w, r, http.StatusBadRequest, `body: want {"name":"...","role":"viewer|operator|admin","scopes":["01"],"kinds":["air"]} (kinds optional): `+err.Error())
		return
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		writeProblem(w, r, http.StatusBadRequest, "body: want one JSON object and nothing after it")
		return
	}
	role, err := auth.ParseRole(in.Role)
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, err.Error())
		return
	}
	scopes, err := auth.NormalizeScopes(in.Scopes)
	if err == nil {
		err = auth.CheckName(in.Name)
	}
	var kinds []string
	if err == nil {
		kinds, err = auth.NormalizeKinds(in.Kinds)
	}
	if err != nil {
		writeProblem(w, r, http.StatusBadRequest, err.Error())
		return
	}
	for _, k := range kinds {
		if !kind.Default.Known(k) {
			writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf("kinds: %q is not a kind of this hub", k))
			return
		}
	}
	tree, ok := o.g.hierarchy(w, r)
	if !ok {
		return
	}
	for _, s := range scopes {
		if s != auth.AllScopes && !tree.exists(s) {
			writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf("scope %q: no current unit has this code", s))
			return
		}
	}
	// The aggregator asks the same when it applies the action, of the
	// actor's scope then.
	if why := who.GrantRefusal(tree, scopes, kinds); why != "" {
		forbid(w, r, who, why)
		return
	}
	actor, msg := actorOf(who, r)
	if msg != "" {
		writeProblem(w, r, http.StatusBadRequest, msg)
		return
	}
	// With an Idempotency-Key the action and the identity are named by it:
	// a retry is the same action, and the identity it would create exists
	// already (or is being created). Its token was in the first answer
	// only (the hub keeps its hash), so a retry is refused, not answered
	// with a token that would not work.
	actionID, msg := actionIDFrom(who.ID+"\x00"+r.Method+" "+r.URL.EscapedPath(), r.Header.Get(HeaderIdempotencyKey))
	if msg != "" {
		writeProblem(w, r, http.StatusBadRequest, msg)
		return
	}
	id := auth.NewID()
	if r.Header.Get(HeaderIdempotencyKey) != "" {
		id = "id_" + actionID[:16]
		if _, found, err := store.Identity(r.Context(), id); err != nil {
			o.g.readFailed(w, r, err, "looking up identity", "id", id)
			return
		} else if found {
			o.createdAlready(w, r, id)
			return
		}
	}
	token, sum := auth.NewToken()
	payload, _ := json.Marshal(map[string]any{"name": in.Name, "role": role, "scopes": scopes, "kinds": kinds, "tokenSha256": hex.EncodeToString(sum)})
	act := &iocv1.Action{Id: actionID, Type: actionTypeIdentityCreate, Actor: actor, Province: actionProvince(tree, scopes),
		TargetKind: targetKindIdentity, Target: id, At: timestamppb.New(o.cfg.Now()), Payload: payload}
	ack, err := o.publishAck(r.Context(), act)
	if err != nil {
		o.g.log.Error("publishing identity action failed", "action", actionID, "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "the identity could not be created; retry")
		return
	}
	if ack.Duplicate { // the first request's action is on its way: its token is the one
		o.createdAlready(w, r, id)
		return
	}
	active := o.waitIdentity(r.Context(), store, id, func(v pgread.IdentityView) bool { return true })
	status := http.StatusCreated
	if !active {
		status = http.StatusAccepted
	}
	writeJSON(w, status, identityCreated{ID: id, Name: in.Name, Role: string(role), Scopes: scopes, Kinds: nonNilKinds(kinds), Token: token, Active: active, ActionID: actionID})
}

// createdAlready answers a create retried with the Idempotency-Key of an
// identity created (or being created) already: 409, since its token was
// given in the first answer only.
func (o *operator) createdAlready(w http.ResponseWriter, r *http.Request, id string) {
	writeProblem(w, r, http.StatusConflict, fmt.Sprintf("identity %s was created already by a request with this %s; its token was in that request's answer only (the hub keeps its hash): if it was lost, revoke %s and create another",
		id, HeaderIdempotencyKey, id))
}

// actionProvince is the province of an identity action's subject: the
// province of its only scope, or empty ("_") for several, all, or a unit of
// no known province.
func actionProvince(tree *unitTree, scopes []string) string {
	if len(scopes) == 1 && scopes[0] != auth.AllScopes {
		if p, ok := tree.province(scopes[0]); ok {
			return p
		}
		if len(scopes[0]) == 2 { // a province code the tree does not know (no database)
			return scopes[0]
		}
	}
	return ""
}

// waitIdentity polls until identity id satisfies done (then reloads the
// authenticator's cache, so this gateway honours the change at once) or the
// wait ends; it reports whether done was reached.
func (o *operator) waitIdentity(ctx context.Context, store *pgread.Store, id string, done func(pgread.IdentityView) bool) bool {
	ctx, cancel := context.WithTimeout(ctx, identityApplyWait)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		v, found, err := store.Identity(ctx, id)
		if err == nil && found && done(v) {
			if err := o.g.deps.Auth.Refresh(ctx); err != nil {
				o.g.log.Warn("reloading identities failed", "err", err)
			}
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// identityList is the answer of GET /v1/admin/identities.
type identityList struct {
	Identities []pgread.IdentityView `json:"identities"`
}

func (o *operator) serveIdentities(w http.ResponseWriter, r *http.Request) {
	who, store, ok := o.admin(w, r)
	if !ok {
		return
	}
	all, err := store.IdentityList(r.Context())
	if err != nil {
		o.g.readFailed(w, r, err, "listing identities")
		return
	}
	tree, ok := o.g.hierarchy(w, r)
	if !ok {
		return
	}
	out := identityList{Identities: []pgread.IdentityView{}}
	for _, v := range all {
		if who.ManagesIdentity(tree, v.Scopes, v.Kinds) {
			out.Identities = append(out.Identities, v)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// identityRevoked is the answer of DELETE /v1/admin/identities/{id}.
type identityRevoked struct {
	ID string `json:"id"`
	// Active is true when the revocation was applied within a few seconds;
	// every gateway honours it within its identity refresh interval after that.
	Active   bool   `json:"active"`
	ActionID string `json:"actionId,omitempty"`
}

func (o *operator) serveRevokeIdentity(w http.ResponseWriter, r *http.Request) {
	who, store, ok := o.admin(w, r)
	if !ok {
		return
	}
	tree, ok := o.g.hierarchy(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	v, found, err := store.Identity(r.Context(), id)
	switch {
	case err != nil:
		o.g.readFailed(w, r, err, "reading identity", "identity", id)
		return
	case !found, !who.ManagesIdentity(tree, v.Scopes, v.Kinds): // the aggregator asks it again, of the actor then
		writeProblem(w, r, http.StatusNotFound, fmt.Sprintf("identity %q does not exist", truncate(id, 64)))
		return
	case v.RevokedAt != nil:
		writeJSON(w, http.StatusOK, identityRevoked{ID: id, Active: true})
		return
	}
	actor, msg := actorOf(who, r)
	if msg != "" {
		writeProblem(w, r, http.StatusBadRequest, msg)
		return
	}
	actionID, _ := actionIDFrom("", "")
	act := &iocv1.Action{Id: actionID, Type: actionTypeIdentityRevoke, Actor: actor, Province: actionProvince(tree, v.Scopes),
		TargetKind: targetKindIdentity, Target: id, At: timestamppb.New(o.cfg.Now())}
	if err := o.publish(r.Context(), act); err != nil {
		o.g.log.Error("publishing identity action failed", "action", actionID, "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "the identity could not be revoked; retry")
		return
	}
	active := o.waitIdentity(r.Context(), store, id, func(v pgread.IdentityView) bool { return v.RevokedAt != nil })
	status := http.StatusOK
	if !active {
		status = http.StatusAccepted
	}
	writeJSON(w, status, identityRevoked{ID: id, Active: active, ActionID: actionID})
}

// nonNilKinds is kinds, or [] for every kind, so the JSON answer has a list.
func nonNilKinds(kinds []string) []string {
	if kinds == nil {
		return []string{}
	}
	return kinds
}
