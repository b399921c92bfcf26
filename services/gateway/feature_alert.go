package gateway

import (
	"github.com/twpayne/go-geom"

	"github.com/iochub/iochub/internal/capconv"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// encodeAlert is the Feature of a CAP alert: its blocks and lifecycle state
// in properties.alert, the union of its areas as geometry.
func encodeAlert(st *iocv1.EntityState, entity string) (props kindProps, g geom.T, err error) {
	a := st.GetAlert()
	props.Observation = &observationJSON{ID: a.GetId(), Time: rfc3339(a.GetSent())}
	props.Alert = alertProps(a, st)
	props.Alert.ID = AlertID(entity)
	for _, in := range a.GetInfo() {
		if props.Name = firstNonEmpty(in.GetHeadline(), in.GetEvent()); props.Name != "" {
			break
		}
	}
	g, err = alertGeometry(a)
	return props, g, err
}

func alertGeometry(a *iocv1.Alert) (geom.T, error) {
	var gs []geom.T
	for _, in := range a.GetInfo() {
		for _, ar := range in.GetArea() {
			g, err := decodeWKB(ar.GetGeometry().GetWkb())
			if err != nil {
				return nil, err
			}
			if g != nil && !g.Empty() {
				gs = append(gs, g)
			}
		}
	}
	return mergeAreas(gs)
}

func alertProps(a *iocv1.Alert, st *iocv1.EntityState) *alertJSON {
	out := &alertJSON{
		Identifier: a.GetIdentifier(),
		Sender:     a.GetSender(),
		Sent:       rfc3339(a.GetSent()),
		Status:     a.GetStatus(),
		MsgType:    a.GetMsgType(),
		Scope:      a.GetScope(),
		State:      st.GetAlertState(),
		RuleID:     st.GetRuleId(),
		Units:      append([]string{}, st.GetUnits()...),
		Info:       make([]capconv.InfoJSON, 0, len(a.GetInfo())),
	}
	for _, in := range a.GetInfo() {
		out.Info = append(out.Info, capconv.InfoSummaryJSON(in))
	}
	if ack := st.GetAlertAck(); ack != nil {
		out.Acked, out.AckedBy, out.AckedAt = true, ack.GetBy(), rfc3339(ack.GetAt())
	}
	return out
}
