package capconv

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/pbtime"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

// InfoJSON is the JSON form of one CAP info block (ioc.v1.AlertInfo) in the
// hub's contracts: properties.alert.info[] of an alert's Feature (live view
// and GET /v1/alerts; InfoSummaryJSON fills it) and alert.info (jsonb) in
// PostGIS (the aggregator fills every field). The names are CAP's element
// names. Times are UTC and written as RFC 3339.
type InfoJSON struct {
	Language    string     `json:"language"`
	Category    []string   `json:"category"`
	Event       string     `json:"event"`
	Urgency     string     `json:"urgency"`
	Severity    string     `json:"severity"`
	Certainty   string     `json:"certainty"`
	Headline    string     `json:"headline"`
	Description string     `json:"description"`
	Instruction string     `json:"instruction,omitempty"`
	SenderName  string     `json:"senderName,omitempty"`
	Effective   *time.Time `json:"effective,omitempty"`
	Onset       *time.Time `json:"onset,omitempty"`
	Expires     *time.Time `json:"expires,omitempty"`
	// Areas keep their description and geocodes; their geometry is the
	// Feature's geometry (alert.area in PostGIS).
	Areas []AreaJSON `json:"areas,omitempty"`
}

// AreaJSON is the JSON form of an info block's area without its geometry.
type AreaJSON struct {
	AreaDesc string            `json:"areaDesc,omitempty"`
	Geocodes map[string]string `json:"geocodes,omitempty"`
}

// InfoSummaryJSON is in as an alert's Feature shows it: language, category
// (never null), event, urgency, severity, certainty, headline, description
// and expires. An expiry that is not a valid time between years 0 and 9999
// is left out.
func InfoSummaryJSON(in *iocv1.AlertInfo) InfoJSON {
	return InfoJSON{
		Language:    in.GetLanguage(),
		Category:    append([]string{}, in.GetCategory()...),
		Event:       in.GetEvent(),
		Urgency:     in.GetUrgency(),
		Severity:    in.GetSeverity(),
		Certainty:   in.GetCertainty(),
		Headline:    in.GetHeadline(),
		Description: in.GetDescription(),
		Expires:     jsonTime(in.GetExpires()),
	}
}

// jsonTime is ts in UTC; nil when ts is nil, invalid or outside the years
// 0..9999 that encoding/json can write.
func jsonTime(ts *timestamppb.Timestamp) *time.Time {
	t, ok := pbtime.UTC(ts)
	if !ok {
		return nil
	}
	return &t
}
