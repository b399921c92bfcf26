package ingest_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/testenv"
	"github.com/iochub/iochub/services/ingest"
)

// bigCAP is a CAP alert of Hoàn Kiếm from source hn with infos of
// descriptions of n bytes each.
func bigCAP(id string, infos, n int) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"><identifier>%s</identifier><sender>kttv@example.vn</sender>
<sent>%s</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope>`, id, time.Now().UTC().Format("2006-01-02T15:04:05-07:00"))
	for range infos {
		fmt.Fprintf(&b, `<info><category>Met</category><event>Mưa lớn</event><urgency>Expected</urgency><severity>Severe</severity>
<certainty>Likely</certainty><description>%s</description><area><areaDesc>Hoàn Kiếm</areaDesc>
<polygon>21.025,105.850 21.030,105.850 21.030,105.855 21.025,105.850</polygon></area></info>`, strings.Repeat("m", n))
	}
	b.WriteString(`</alert>`)
	return []byte(b.String())
}

// TestItemRoomForStateAndLetter: an item whose event would leave less than
// the hub's headroom of the server's max payload is refused by the ingest,
// naming its size and the limit, rather than accepted and then failing to
// publish its state or to be dead-lettered whole; one that fits is
// accepted. The server here takes 256 KiB: items up to 128 KiB.
func TestItemRoomForStateAndLetter(t *testing.T) {
	ne := testenv.NATSMaxPayload(t, 256<<10)
	e := newEnvOn(t, &natsEnv{srv: ne.Server, nc: ne.Conn, js: ne.JS}, ingest.Config{})
	for _, tc := range []struct {
		name   string
		doc    []byte
		status string
		reason string
	}{
		{"fits", bigCAP("fits", 2, 50<<10), ingest.StatusAccepted, ""},
		{"over the room, under the server's limit", bigCAP("over", 3, 50<<10), ingest.StatusRejected,
			"; the hub takes at most 131072 (the event backbone's max payload less 131072 kept for its state and dead letter): shorten its fields"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(t, "alert", tokProvince, "application/cap+xml", tc.doc)
			if len(r.resp.Results) != 1 {
				t.Fatalf("%d %s; want one result", r.code, r.raw)
			}
			res := r.resp.Results[0]
			if res.Status != tc.status || !strings.Contains(res.Reason, tc.reason) || res.Retryable {
				t.Fatalf("result %+v; want %s saying %q", res, tc.status, tc.reason)
			}
		})
	}
}
