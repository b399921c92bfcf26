package aggregator

import (
	"fmt"
	"slices"
	"time"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/kind"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
	"github.com/iochub/iochub/services/aggregator/postgis"
)

// registeredKind serves every kind registered with internal/kind: its
// observations are rows of observation_generic, each entity's state its row
// of sensor, its STATE an EntityState with an Observation.
var registeredKind = &kindOps{
	name:    "registered",
	decode:  (*decoded).decodeRegistered,
	add:     func(b *postgis.Batch, row any) { b.Generic = append(b.Generic, row.(postgis.GenericRow)) },
	changed: func(res postgis.Result) []postgis.Changed { return res.Generic.Changed },
	state: func(d *decoded, _ postgis.Changed, st *iocv1.EntityState, ev *ce.Event) {
		r, _ := d.row.(postgis.GenericRow)
		m, _ := d.msg.(*iocv1.Observation)
		st.EntityId = r.EntityID
		st.Latest = &iocv1.EntityState_Observation{Observation: m}
		ev.ID, ev.Time = r.EventID, r.ObservedAt
	},
	result: func(res postgis.Result) postgis.KindResult { return res.Generic },
}

// decodeRegistered reads an Observation of the registered kind d.kind: a
// station's observation whose values are the kind's, within their bounds,
// as the ingest checked them.
func (d *decoded) decodeRegistered(data []byte, source string, now time.Time) error {
	k, ok := kind.Default.Lookup(d.kind)
	if !ok {
		return fmt.Errorf("kind %q is not registered: %w", d.kind, ErrUnsupportedKind)
	}
	m := &iocv1.Observation{}
	c, loc, err := decodeStation(data, m, source, now)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(m.GetValues()))
	for name := range m.GetValues() {
		names = append(names, name)
	}
	slices.Sort(names) // the first bad value is named the same every time
	for _, name := range names {
		v, ok := k.Value(name)
		if !ok {
			return fmt.Errorf("value %q is not one of kind %s", name, k.Name)
		}
		if why := v.Check(m.GetValues()[name]); why != "" {
			return fmt.Errorf("%s", why)
		}
	}
	for _, v := range k.Values {
		if _, ok := m.GetValues()[v.Name]; v.Required && !ok {
			return fmt.Errorf("value %s is missing", v.Name)
		}
	}
	d.msg = m
	d.row = postgis.GenericRow{
		Kind: d.kind, SourceID: c.source, EventID: m.GetId(), EntityID: m.GetEntityId(), Name: m.GetName(),
		Province: d.province, UnitCode: d.unit, ObservedAt: c.observed, ReceivedAt: c.received, Location: loc,
		Values: m.GetValues(),
	}
	return nil
}
