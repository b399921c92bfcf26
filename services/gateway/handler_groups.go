package gateway

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/routes"
	"github.com/iochub/iochub/internal/schema"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// The operator action that defines a custom group (the aggregator's
// ActionUnitGroupPut), published on ioc.action.VN.unit.<code>: a group may
// span provinces, so its actions belong to the national unit.
const (
	actionTypeUnitGroupPut = "unit.group.put"
	targetKindUnit         = "unit"
	nationalCode           = "VN"
)

// registerGroups adds the custom group endpoint to mux.
func (o *operator) registerGroups(mux routes.Mux) {
	mux.HandleFunc("PUT /v1/units/groups/{code}", o.servePutGroup)
}

// maxGroupBody bounds a group document: room for schema.MaxGroupMembers
// members of the longest code (64 bytes, quoted, a comma each) beside the
// names, far below a NATS message (the action carries the document).
const maxGroupBody = schema.MaxGroupMembers*(64+3) + 16<<10

// servePutGroup checks a group (schema.GroupDocument) and queues its
// definition: an admin of every province its members lie in, members that
// are current units. The aggregator applies it (and refuses, with the
// reason, what changed meanwhile).
func (o *operator) servePutGroup(w http.ResponseWriter, r *http.Request) {
	who, ok := o.g.authenticate(w, r)
	if !ok {
		return
	}
	if !who.IsAdmin() {
		forbid(w, r, who, "define unit groups (admin role needed)")
		return
	}
	tree, ok := o.g.hierarchy(w, r)
	if !ok {
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeProblem(w, r, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: send application/json", ct))
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxGroupBody))
	dec.DisallowUnknownFields()
	var doc schema.GroupDocument
	if err := dec.Decode(&doc); err != nil {
		if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			writeProblem(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: larger than %d bytes; a group has at most %d members", maxGroupBody, schema.MaxGroupMembers))
			return
		}
		writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf("body: not a group document {name, nameEn, members, validFrom}: %v", err))
		return
	}
	code := r.PathValue("code")
	if err := schema.CheckGroup(doc.Group(code)); err != nil {
		writeProblem(w, r, http.StatusBadRequest, err.Error())
		return
	}
	if why := who.GroupRefusal(tree.nodes, code, doc.Members, nil); why != "" {
		forbid(w, r, who, why)
		return
	}
	var unknown []string
	for _, m := range doc.Members {
		if _, ok := tree.province(m); !ok {
			unknown = append(unknown, m)
		}
	}
	if len(unknown) > 0 {
		writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf("members: %s: no current unit within a province", strings.Join(unknown, ", ")))
		return
	}
	// The group it replaces is the provinces' of its members too: an admin
	// of each, in every version that has not ended (the current one and one
	// that starts later, which the redefinition closes). The aggregator asks
	// GroupRefusal again, of the actor then.
	current, err := o.g.tree.store.GroupMembersOpen(r.Context(), code)
	if err != nil {
		o.g.log.Error("reading group members", "group", code, "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "the units database is unavailable; retry later")
		return
	}
	if why := who.GroupRefusal(tree.nodes, code, nil, current); why != "" {
		forbid(w, r, who, why)
		return
	}
	actionID, actor, ok := actionHead(w, r, who)
	if !ok {
		return
	}
	payload, err := json.Marshal(doc)
	if err != nil {
		writeProblem(w, r, http.StatusInternalServerError, "encoding the group failed")
		return
	}
	o.act(w, r, &iocv1.Action{Id: actionID, Type: actionTypeUnitGroupPut, Actor: actor, Province: nationalCode,
		TargetKind: targetKindUnit, Target: code, At: timestamppb.New(o.cfg.Now()), Payload: payload, CheckedMembers: current})
}
