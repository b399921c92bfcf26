package aggregator

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twpayne/go-geom"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/kind"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// TestDecodeRegistered decodes observations of a kind registered in the test
// and builds their state, with no code of the kind in the aggregator.
func TestDecodeRegistered(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	noise := func(values map[string]float64) *iocv1.Observation {
		return &iocv1.Observation{Id: "n1@" + t0.Format(time.RFC3339), EntityId: "dev-1", ObservedAt: timestamppb.New(t0),
			Location: mustWKB(t, geom.NewPointFlat(geom.XY, []float64{105.85, 21.03})), Name: "Hồ Gươm",
			Origin: &iocv1.Origin{SourceId: sourceID}, Values: values}
	}
	m := feedMsg(t, "noise", noise(map[string]float64{"LAeq": 60.5}), "n1")
	if _, err := decode(m.Subject, m.Header, m.Data, now); !errors.Is(err, ErrUnsupportedKind) {
		t.Fatalf("decoding an unregistered kind: err = %v; want ErrUnsupportedKind", err)
	}
	unregister, err := kind.Default.Register(kind.Kind{Name: "noise",
		Values: []kind.Value{{Name: "LAeq", Min: 0, Max: 200, Required: true}, {Name: "LAmax", Min: 0, Max: 200}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unregister)

	d, err := decode(m.Subject, m.Header, m.Data, now)
	if err != nil {
		t.Fatal(err)
	}
	r, ok := d.row.(postgis.GenericRow)
	if !ok || d.ops != registeredKind || r.Kind != "noise" || r.EntityID != "dev-1" || r.Values["LAeq"] != 60.5 || r.Location == nil {
		t.Fatalf("decoded row = %+v (ops %v); want a noise GenericRow of dev-1 with LAeq 60.5 at a Point", d.row, d.ops == registeredKind)
	}
	var p pending
	p.add(d, firstDelivery{data: m.Data})
	if len(p.batch.Generic) != 1 || len(p.all()) != 1 {
		t.Fatalf("pending holds %d generic rows, %d messages; want 1, 1", len(p.batch.Generic), len(p.all()))
	}
	msg, err := stateMsg(p.all()[0], postgis.Changed{UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	var st iocv1.EntityState
	if err := proto.Unmarshal(msg.Data, &st); err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "ioc.state."+province+".noise.dev-1" || st.GetLayer() != "noise" || st.GetEntityId() != "dev-1" ||
		st.GetObservation().GetValues()["LAeq"] != 60.5 || msg.Header.Get("ce-type") != "vn.ioc.noise.state.v1" {
		t.Errorf("state %s %v (%v); want ioc.state.%s.noise.dev-1 with the observation, ce-type vn.ioc.noise.state.v1", msg.Subject, &st, msg.Header, province)
	}

	for name, values := range map[string]map[string]float64{
		"value missing":      {"LAmax": 70},
		"value not the kind": {"LAeq": 60, "dB": 3},
		"value out of range": {"LAeq": 250},
	} {
		m := feedMsg(t, "noise", noise(values), "n2")
		if _, err := decode(m.Subject, m.Header, m.Data, now); !errors.Is(err, ErrBadMessage) || !strings.Contains(err.Error(), "LA") && !strings.Contains(err.Error(), "dB") {
			t.Errorf("%s: err = %v; want ErrBadMessage naming the value", name, err)
		}
	}
}

// FuzzDecodeRegistered decodes arbitrary bodies as observations of a kind
// registered in the test: no panic, and what is decoded holds only the kind's
// values within their bounds and texts PostgreSQL can store.
func FuzzDecodeRegistered(f *testing.F) {
	unregister, err := kind.Default.Register(kind.Kind{Name: "noise",
		Values: []kind.Value{{Name: "LAeq", Min: 0, Max: 200, Required: true}, {Name: "LAmax"}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(unregister)
	seed := &iocv1.Observation{Id: "n1", EntityId: "dev-1", ObservedAt: timestamppb.New(t0), Name: "Hồ Gươm",
		Location: mustWKB(f, geom.NewPointFlat(geom.XY, []float64{105.85, 21.03})), Values: map[string]float64{"LAeq": 60, "LAmax": 1e300}}
	body, err := proto.Marshal(seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sourceID, body)
	f.Fuzz(func(t *testing.T, source string, body []byte) {
		h := ce.Event{ID: "id", Source: "urn:ioc:01:00070", Type: "t"}.Header()
		h[HeaderSource] = []string{source}
		d, err := decode(subjects.Feed(province, unit, "noise"), h, body, t0)
		if err != nil {
			return
		}
		r := d.row.(postgis.GenericRow)
		if v, ok := r.Values["LAeq"]; !ok || v < 0 || v > 200 || len(r.Values) > 2 {
			t.Fatalf("accepted values %v", r.Values)
		}
		for _, s := range []string{r.SourceID, r.EventID, r.EntityID, r.Name} {
			if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
				t.Fatalf("accepted text %q", s)
			}
		}
	})
}
