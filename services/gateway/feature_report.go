package gateway

import (
	"unicode/utf8"

	"github.com/twpayne/go-geom"

	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// reportJSON is properties.report of a Feature of layer report. The
// reporter's contact is never part of it (STATE does not carry it either).
type reportJSON struct {
	Category    string   `json:"category"`
	Text        string   `json:"text"`
	Media       []string `json:"media"`
	Status      string   `json:"status"`
	Assignee    string   `json:"assignee,omitempty"`
	SLADeadline string   `json:"slaDeadline,omitempty"`
	Overdue     bool     `json:"overdue"`
}

func reportProps(r *iocv1.Report) *reportJSON {
	media := r.GetMedia()
	if media == nil {
		media = []string{}
	}
	return &reportJSON{Category: r.GetCategory(), Text: r.GetText(), Media: media, Status: r.GetStatus(),
		Assignee: r.GetAssignee(), SLADeadline: rfc3339(r.GetSlaDeadline()), Overdue: r.GetOverdue()}
}

// reportName is the first 80 characters of the report's text, or its category.
func reportName(r *iocv1.Report) string {
	t := r.GetText()
	if t == "" {
		return r.GetCategory()
	}
	if utf8.RuneCountInString(t) <= 80 {
		return t
	}
	n := 0
	for i := range t {
		if n == 79 {
			return t[:i] + "…"
		}
		n++
	}
	return t
}

// encodeReport is the Feature of a citizen report: its workflow in
// properties.report (never the contact), its Point.
func encodeReport(st *iocv1.EntityState, entity string) (props kindProps, g geom.T, err error) {
	r := st.GetReport()
	props.Name = reportName(r)
	props.Observation = &observationJSON{ID: r.GetId(), Time: rfc3339(r.GetObservedAt())}
	props.Report = reportProps(r)
	g, err = decodeWKB(r.GetLocation().GetWkb())
	return props, g, err
}
