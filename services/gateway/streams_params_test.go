package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

func TestParseStreamQuery(t *testing.T) {
	for _, tc := range []struct {
		query, lastID string
		stream        string
		province      string
		since         sinceKind
		after         uint64
		err           string // the parameter an error names; "" none
	}{
		{query: "subject=ioc.feed.01.>", stream: "FEEDS", province: "01", since: sinceNew},
		{query: "subject=ioc.feed.>", stream: "FEEDS"},
		{query: "subject=ioc.feed.*.*.alert&since=new", stream: "FEEDS"},
		{query: "subject=ioc.state.01.alert.*&since=seq:42", stream: "STATE", province: "01", since: sinceSeq, after: 42},
		{query: "subject=ioc.rollup.79.*.air.1h&since=2026-11-21T08:00:00%2B07:00", stream: "ROLLUPS", province: "79", since: sinceTime},
		{query: "subject=ioc.rollup.79.>&since=2026-11-21T08:00:00+07:00", stream: "ROLLUPS", province: "79", since: sinceTime}, // + sent unescaped
		{query: "subject=ioc.feed.01.>&since=seq:3", lastID: "77", stream: "FEEDS", province: "01", since: sinceSeq, after: 77},
		{query: "", err: "subject"},
		{query: "subject=", err: "subject"},
		{query: "subject=ioc.>", err: "subject"},
		{query: "subject=ioc.*.01.>", err: "subject"},
		{query: "subject=>", err: "subject"},
		{query: "subject=ioc.action.01.>", err: "subject"},
		{query: "subject=ioc.deadletter.>", err: "subject"},
		{query: "subject=ioc.feed.01", err: "subject"},
		{query: "subject=ioc.feed.01.a.b.c", err: "subject"},
		{query: "subject=ioc.feed.>.air", err: "subject"},
		{query: "subject=ioc.feed.0*.>", err: "subject"},
		{query: "subject=ioc.feed..>", err: "subject"},
		{query: "subject=ioc.feed.01.>&subject=ioc.feed.79.>", err: "subject"},
		{query: "subject=ioc.feed.01.>&since=seq:", err: "since"},
		{query: "subject=ioc.feed.01.>&since=seq:-1", err: "since"},
		{query: "subject=ioc.feed.01.>&since=seq:18446744073709551615", err: "since"}, // delivery would start at 0
		{query: "subject=ioc.feed.01.>&since=seq:9223372036854775808", err: "since"},
		{query: "subject=ioc.feed.01.>", lastID: "18446744073709551615", err: "Last-Event-ID"},
		{query: "subject=ioc.feed.%FF.>", err: "subject"},
		{query: "subject=ioc.feed.%00.>", err: "subject"},
		{query: "subject=ioc.feed.01.%0C.air", err: "subject"},   // NATS refuses a form feed: a 400, not a 503
		{query: "subject=ioc.feed.01.a%0Cb.air", err: "subject"}, // inside a token too
		{query: "subject=ioc.feed.01.a%0Bb.air", err: "subject"},
		{query: "subject=ioc.feed.01.a%20b.air", err: "subject"},
		{query: "subject=ioc.feed.01.>&since=today", err: "since"},
		{query: "subject=ioc.feed.01.>", lastID: "abc", err: "Last-Event-ID"},
		{query: "subject=ioc.feed.01.>&kind=air,ufo", err: "kind"},
		{query: "subject=ioc.feed.01.>&unit=a.b", err: "unit"},
		{query: "subject=ioc.feed.01.>&bbox=1,2", err: "bbox"},
		{query: "subject=ioc.feed.01.>&severity=bad", err: "severity"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			p, err := parseStreamQuery(q, tc.lastID)
			if tc.err != "" {
				if err == nil || !errors.Is(err, ErrBadParam) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v; want one naming %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Shape.stream != tc.stream || p.Province != tc.province || p.Since != tc.since || p.AfterSeq != tc.after {
				t.Errorf("got stream %s province %q since %d after %d; want %s %q %d %d", p.Shape.stream, p.Province, p.Since, p.AfterSeq, tc.stream, tc.province, tc.since, tc.after)
			}
			if tc.since == sinceTime && !p.From.Equal(time.Date(2026, 11, 21, 1, 0, 0, 0, time.UTC)) {
				t.Errorf("since time %v; want 2026-11-21T01:00:00Z", p.From)
			}
		})
	}
}

// TestStreamEventEncoding: STATE renders the EntityState with protojson (a
// report's sealed contact left out), ROLLUPS pass their JSON through, and an
// undecodable payload goes as data_base64 — each a valid CloudEvent.
func TestStreamEventEncoding(t *testing.T) {
	report := &iocv1.EntityState{Layer: subjects.KindReport, EntityId: "r1", Province: "01", Unit: "00004",
		Latest: &iocv1.EntityState_Report{Report: &iocv1.Report{Id: "r1", EntityId: "r1", Text: "Ngập", ContactSealed: []byte("SECRET-SEALED")}}}
	body, err := proto.Marshal(report)
	if err != nil {
		t.Fatal(err)
	}
	hdr := ce.Event{ID: "e1", Source: ce.SourceURN("01", "00004"), Type: ce.StateType("report"), Subject: "r1", Time: t0}.Header()
	state := streamShapes[1]
	ev := decodeStreamMsg(state, streamMsg{Subject: subjects.State("01", "report", "r1"), Header: hdr, Data: body, Stream: "STATE", Seq: 9})
	b, err := ev.encode()
	if err != nil {
		t.Fatal(err)
	}
	g := checkCloudEvent(t, b)
	if g.Seq != 9 || strings.Contains(string(b), "contact") || !strings.Contains(string(g.Data), `"text":"Ngập"`) {
		t.Errorf("state event %s: want iocseq 9, the report's text and no contact", b)
	}
	if us := ev.units(state); len(us) != 1 || us[0] != "00004" {
		t.Errorf("units %v; want [00004]", us)
	}

	rh := ce.Event{ID: "r", Source: ce.SourceURN("01", "00004"), Type: ce.RollupType("air"), Subject: "00004", Time: t0}.Header()
	rh.Set(ce.HeaderContentType, ce.ContentTypeJSON)
	ev = decodeStreamMsg(streamShapes[2], streamMsg{Subject: subjects.Rollup("01", "00004", "air", "1h"), Header: rh, Data: []byte(`{"n": 3}`), Stream: "ROLLUPS", Seq: 1})
	if b, err = ev.encode(); err != nil {
		t.Fatal(err)
	}
	if g := checkCloudEvent(t, b); string(g.Data) != `{"n":3}` {
		t.Errorf("roll-up data %s; want the body's JSON", g.Data)
	}

	ev = decodeStreamMsg(streamShapes[0], streamMsg{Subject: subjects.Feed("01", "00004", "air"), Header: nats.Header{}, Data: []byte{0xff, 0xff}, Stream: "FEEDS", Seq: 5})
	if b, err = ev.encode(); err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil || raw["data_base64"] != "//8=" || raw["datacontenttype"] != ce.ContentTypeProtobuf || raw["id"] != "FEEDS:5" {
		t.Errorf("undecodable event %s; want data_base64 //8=, application/protobuf and id FEEDS:5", b)
	}
}

// TestStreamEventFallbackKeepsContactSealed: an event decoded but not
// rendered as JSON (here a time protojson refuses, before year 1) is sent
// as data_base64 of the payload as decoded, so a report's sealed contact
// stays out as it does from the JSON, on FEEDS and on STATE.
func TestStreamEventFallbackKeepsContactSealed(t *testing.T) {
	report := &iocv1.Report{Id: "r1", EntityId: "r1", Text: "Ngập", ContactSealed: []byte("SECRET-SEALED"),
		ObservedAt: &timestamppb.Timestamp{Seconds: -62162035200}} // 0000-06-01: protojson's range starts at 0001
	state := &iocv1.EntityState{Layer: subjects.KindReport, EntityId: "r1", Province: "01", Unit: "00004",
		Latest: &iocv1.EntityState_Report{Report: proto.Clone(report).(*iocv1.Report)}}
	for _, tc := range []struct {
		sh      streamShape
		subject string
		msg     proto.Message
	}{
		{streamShapes[0], subjects.Feed("01", "00004", "report"), report},
		{streamShapes[1], subjects.State("01", "report", "r1"), state},
	} {
		t.Run(tc.sh.stream, func(t *testing.T) {
			body, err := proto.Marshal(tc.msg)
			if err != nil {
				t.Fatal(err)
			}
			ev := decodeStreamMsg(tc.sh, streamMsg{Subject: tc.subject, Header: nats.Header{}, Data: body, Stream: tc.sh.stream, Seq: 3})
			if _, err := ev.encode(); err == nil {
				t.Fatal("the event rendered as JSON; the test needs one that does not")
			}
			e := &cachedEvent{ev: ev}
			e.frame(transportWS, slog.New(slog.DiscardHandler))
			var got struct {
				DataBase64 []byte `json:"data_base64"`
			}
			if err := json.Unmarshal(e.json, &got); err != nil || len(got.DataBase64) == 0 {
				t.Fatalf("fallback event %s: %v; want data_base64", e.json, err)
			}
			if bytes.Contains(got.DataBase64, []byte("SECRET-SEALED")) {
				t.Fatalf("fallback event %s carries the sealed contact", e.json)
			}
			back := tc.msg.ProtoReflect().New().Interface()
			if err := proto.Unmarshal(got.DataBase64, back); err != nil || !strings.Contains(prototext.Format(back), "Ngập") {
				t.Errorf("data_base64 is %v (%v); want the report without its contact", back, err)
			}
		})
	}
}

// FuzzStreamEvent: whatever a stream carries, the gateway decodes, filters
// and encodes it into valid JSON without panicking.
func FuzzStreamEvent(f *testing.F) {
	body, _ := proto.Marshal(alertState(f, "cap-1", cwSquare(105, 21)))
	f.Add(1, "alert", body)
	f.Add(0, "air", []byte{0x22, 0x03, 0x0a, 0x01, 0x00})
	f.Add(2, "air", []byte(`{"n":1}`))
	f.Fuzz(func(t *testing.T, shape int, kind string, data []byte) {
		sh := streamShapes[(shape%len(streamShapes)+len(streamShapes))%len(streamShapes)]
		subj := "ioc." + sh.word + ".01." + subjects.Token(kind) + "." + subjects.Token(kind) + ".x"
		subj = strings.Join(strings.Split(subj, ".")[:sh.tokens], ".")
		ev := decodeStreamMsg(sh, streamMsg{Subject: subj, Header: nats.Header{}, Data: data, Stream: sh.stream, Seq: 1})
		_ = ev.units(sh)
		_, _ = ev.box()
		_ = ev.severity()
		e := &cachedEvent{ev: ev}
		if b := e.frame(transportSSE, slog.New(slog.DiscardHandler)); !json.Valid(e.json) || len(b) == 0 {
			t.Fatalf("encoded %q: not JSON", e.json)
		}
	})
}

// FuzzParseStreamQuery reads arbitrary queries: no panic; a refusal is
// ErrBadParam (a 400); an accepted query has a subject of text, a stream,
// and, from a sequence, a start that does not wrap.
func FuzzParseStreamQuery(f *testing.F) {
	f.Add("subject=ioc.feed.01.>&since=seq:42&kind=air", "")
	f.Add("subject=ioc.state.01.alert.*&bbox=105,20,106,21&severity=Severe", "7")
	f.Add("subject=ioc.rollup.01.*.air.1h&since=2026-11-21T08:00:00%2B07:00", "")
	f.Fuzz(func(t *testing.T, query, lastID string) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		p, err := parseStreamQuery(q, lastID)
		if err != nil {
			if !errors.Is(err, ErrBadParam) {
				t.Fatalf("refusal %v is not ErrBadParam", err)
			}
			return
		}
		// NATS refuses these in a filter (server.IsValidSubject): accepted here, the
		// consumer could not be created and the client would be told to retry.
		if badText(p.Subject) != "" || strings.ContainsAny(p.Subject, " \t\n\f\r") || p.Shape.stream == "" {
			t.Fatalf("accepted subject %q (stream %q)", p.Subject, p.Shape.stream)
		}
		if p.Since == sinceSeq && p.AfterSeq+1 == 0 {
			t.Fatalf("since sequence %d wraps", p.AfterSeq)
		}
	})
}
