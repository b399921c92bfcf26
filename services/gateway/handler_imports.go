package gateway

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/routes"
	"github.com/iochub/iochub/internal/schema"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// Map imports through the admin API. The gateway never writes the
// database: it stores the uploaded GeoJSON in the object store
// natsx.BucketUnitImportFiles, writes the import's first progress record
// (queued) to natsx.BucketUnitImports and queues the operator action
// unit.import, which the aggregator applies (the import, in the action's
// transaction) while updating the record.
const actionTypeUnitImport = "unit.import"

// importIDPattern is an id usable as it is in a subject, a key and a URL.
var importIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// registerImports adds the map import endpoints to mux.
func (o *operator) registerImports(mux routes.Mux) {
	mux.HandleFunc("POST /v1/admin/units/imports", o.servePostImport)
	mux.HandleFunc("GET /v1/admin/units/imports/{id}", o.serveGetImport)
}

// importAdmin answers 403 unless who is an admin of every province: a map
// changes the units of the whole country.
func (o *operator) importAdmin(w http.ResponseWriter, r *http.Request) (auth.Principal, bool) {
	who, ok := o.g.authenticate(w, r)
	if !ok {
		return who, false
	}
	if !who.CanImportMaps() { // asked again by the aggregator, of the actor then
		forbid(w, r, who, "import maps (admin of every province, scope *, needed)")
		return who, false
	}
	if o.g.deps.JS == nil {
		writeProblem(w, r, http.StatusServiceUnavailable, "this gateway has no JetStream; maps cannot be imported here")
		return who, false
	}
	return who, true
}

// servePostImport is POST /v1/admin/units/imports[?valid_from=DATE][&replace=true]: the body,
// a GeoJSON FeatureCollection of at most 256 MiB, is streamed to the object
// store, and the import is queued; the answer is 202 with the import id and
// Location /v1/admin/units/imports/{id}. A retry with the same
// Idempotency-Key answers the same import without storing the file again.
func (o *operator) servePostImport(w http.ResponseWriter, r *http.Request) {
	who, ok := o.importAdmin(w, r)
	if !ok {
		return
	}
	var validFrom time.Time
	if s := r.URL.Query().Get("valid_from"); s != "" {
		t, err := parseQueryTime(s)
		if err != nil {
			writeProblem(w, r, http.StatusBadRequest, "valid_from: "+err.Error())
			return
		}
		if time.Until(t) > schema.MaxUnitsValidFromAhead {
			writeProblem(w, r, http.StatusBadRequest, "valid_from: "+t.UTC().Format(time.RFC3339)+
				" is in the future; import the map on the day it takes effect (the current units are those with no end)")
			return
		}
		validFrom = t
	}
	var replace bool
	switch v := r.URL.Query().Get("replace"); v {
	case "", "false":
	case "true":
		replace = true // the file is the whole map: the units it does not hold are retired
	default:
		writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf("replace: %q; want true or false", truncate(v, 16)))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/geo+json") && !strings.HasPrefix(ct, "application/json") {
		writeProblem(w, r, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q: send application/geo+json", ct))
		return
	}
	actionID, actor, ok := actionHead(w, r, who)
	if !ok {
		return
	}
	id := actionID
	if !importIDPattern.MatchString(id) {
		sum := sha256.Sum256([]byte(actionID))
		id = hex.EncodeToString(sum[:16])
	}
	ctx := r.Context()
	kv, err := o.g.deps.JS.KeyValue(ctx, natsx.BucketUnitImports)
	if err != nil {
		o.g.log.Error("opening import bucket failed", "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "map imports are unavailable right now; retry")
		return
	}
	if _, err := kv.Get(ctx, id); err == nil {
		// The same Idempotency-Key: this import exists already.
		o.importAccepted(w, id, actionID)
		return
	}
	obs, err := o.g.deps.JS.ObjectStore(ctx, natsx.BucketUnitImportFiles)
	if err != nil {
		o.g.log.Error("opening import object store failed", "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "map imports are unavailable right now; retry")
		return
	}
	info, err := obs.Put(ctx, jetstream.ObjectMeta{Name: id, Description: "map import by " + actor},
		http.MaxBytesReader(w, r.Body, natsx.UnitImportMaxBytes))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeProblem(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("body: a map of at most %d bytes", natsx.UnitImportMaxBytes))
		return
	case err != nil:
		o.g.log.Error("storing uploaded map failed", "import", id, "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "the map could not be stored; retry with the same Idempotency-Key")
		return
	case info.Size == 0:
		_ = obs.Delete(ctx, id)
		writeProblem(w, r, http.StatusBadRequest, "body: empty; send a GeoJSON FeatureCollection")
		return
	}
	now := o.cfg.Now()
	rec, _ := json.Marshal(natsx.UnitImport{ID: id, State: natsx.ImportQueued, ValidFrom: validFrom, Replace: replace, Bytes: int64(info.Size),
		Actor: actor, UpdatedAt: now.UTC()})
	if _, err := kv.Put(ctx, id, rec); err != nil {
		o.g.log.Error("writing import progress failed", "import", id, "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "the import could not be queued; retry with the same Idempotency-Key")
		return
	}
	payload, _ := json.Marshal(map[string]any{"object": id, "validFrom": validFrom, "replace": replace})
	act := &iocv1.Action{Id: actionID, Type: actionTypeUnitImport, Actor: actor, Province: nationalCode,
		TargetKind: targetKindUnit, Target: id, At: timestamppb.New(now), Payload: payload}
	if err := o.publish(ctx, act); err != nil {
		o.g.log.Error("publishing operator action failed", "action", actionID, "err", err)
		// Without the action, the record must not make a retry look done.
		_ = kv.Delete(ctx, id)
		writeProblem(w, r, http.StatusServiceUnavailable, "the import could not be queued; retry with the same Idempotency-Key")
		return
	}
	o.importAccepted(w, id, actionID)
}

func (o *operator) importAccepted(w http.ResponseWriter, id, actionID string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Location", "/v1/admin/units/imports/"+id)
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(map[string]string{"importId": id, "actionId": actionID, "type": actionTypeUnitImport, "target": id})
}

// serveGetImport is GET /v1/admin/units/imports/{id}: the progress record
// (natsx.UnitImport) of the import.
func (o *operator) serveGetImport(w http.ResponseWriter, r *http.Request) {
	if _, ok := o.importAdmin(w, r); !ok {
		return
	}
	id := r.PathValue("id")
	kv, err := o.g.deps.JS.KeyValue(r.Context(), natsx.BucketUnitImports)
	if err != nil {
		o.g.log.Error("opening import bucket failed", "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "map imports are unavailable right now; retry")
		return
	}
	var e jetstream.KeyValueEntry
	if importIDPattern.MatchString(id) {
		e, err = kv.Get(r.Context(), id)
	} else {
		err = jetstream.ErrKeyNotFound
	}
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		writeProblem(w, r, http.StatusNotFound, fmt.Sprintf("import %q does not exist (records are kept 7 days)", id))
		return
	case err != nil:
		o.g.log.Error("reading import progress failed", "import", id, "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "the import's progress cannot be read right now; retry")
		return
	}
	var rec natsx.UnitImport
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		o.g.log.Error("reading import progress failed", "import", id, "err", err)
		writeProblem(w, r, http.StatusInternalServerError, "the import's progress record is unreadable")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(rec)
}

// parseQueryTime reads RFC 3339 or YYYY-MM-DD (midnight in Vietnam). A '+'
// of an offset that arrived unescaped is a space in a query; it is restored.
func parseQueryTime(s string) (time.Time, error) {
	s = strings.ReplaceAll(s, " ", "+")
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.ParseInLocation("2006-01-02", s, time.FixedZone("ICT", 7*3600))
	if err != nil {
		return t, fmt.Errorf("%q is neither RFC 3339 nor YYYY-MM-DD", s)
	}
	return t, nil
}
