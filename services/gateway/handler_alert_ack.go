package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/gateway/pgread"
)

// actionTypeAlertAck is the action of POST /v1/alerts/{id}/ack.
const actionTypeAlertAck = "alert.ack"

// alertAcked is the 200 answer of POST /v1/alerts/{id}/ack for an alert
// acknowledged already: the first acknowledgement, which stays.
type alertAcked struct {
	AlertID string `json:"alertId"`
	Acked   bool   `json:"acked"`
	AckedBy string `json:"ackedBy"`
	AckedAt string `json:"ackedAt"`
}

// alertAckAccepted is the 202 answer: the action queued.
type alertAckAccepted struct {
	actionAccepted
	AlertID string `json:"alertId"`
}

// serveAlertAck is POST /v1/alerts/{id}/ack: it publishes an alert.ack
// action (202), or answers 200 with the acknowledgement an alert has
// already (the first one stays; no second action, no second audit row).
func (o *operator) serveAlertAck(w http.ResponseWriter, r *http.Request) {
	who, ok := o.g.authenticate(w, r)
	if !ok || !readsKind(w, r, who, subjects.KindAlert) {
		return
	}
	actionID, actor, ok := actionHead(w, r, who)
	if !ok {
		return
	}
	if o.g.readPool == nil {
		writeProblem(w, r, http.StatusServiceUnavailable, "alerts cannot be looked up: the gateway has no database")
		return
	}
	tree, ok := o.g.hierarchy(w, r)
	if !ok {
		return
	}
	id := r.PathValue("id")
	entity, ok := alertEntityID(id)
	if !ok {
		writeProblem(w, r, http.StatusNotFound, fmt.Sprintf("id: no alert has the id %q: ids are the Feature ids of /v1/alerts", truncate(id, 64)))
		return
	}
	a, found, err := pgread.New(o.g.readPool).AlertAck(r.Context(), entity)
	switch {
	case err != nil:
		o.g.readFailed(w, r, err, "looking up alert", "alert", entity)
		return
	case !found, !who.CanReadAlert(tree, a.Province, a.Unit, a.Units): // out of scope looks like absent: ids are not probed
		writeProblem(w, r, http.StatusNotFound, fmt.Sprintf("id: no alert has the id %q (%s)", id, truncate(entity, 128)))
		return
	case !who.CanActAlert(tree, a.Province, a.Unit, a.Units):
		forbid(w, r, who, "acknowledge alerts of province "+a.Province+" unit "+a.Unit+" (operator role in it needed)")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if a.AckedBy != "" && a.AckedAt != nil {
		_ = json.NewEncoder(w).Encode(alertAcked{AlertID: id, Acked: true, AckedBy: a.AckedBy,
			AckedAt: a.AckedAt.UTC().Format(time.RFC3339Nano)})
		return
	}
	act := &iocv1.Action{Id: actionID, Type: actionTypeAlertAck, Actor: actor, Province: a.Province,
		TargetKind: subjects.KindAlert, Target: entity, At: timestamppb.New(o.cfg.Now())}
	if err := o.publish(r.Context(), act); err != nil {
		w.Header().Del("Content-Type")
		o.g.log.Error("publishing operator action failed", "action", actionID, "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "the action could not be queued; retry with the same Idempotency-Key")
		return
	}
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(alertAckAccepted{actionAccepted: actionAccepted{ActionID: actionID, Type: act.Type, Target: entity}, AlertID: id})
}
