package ingest_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/subjects"
	"github.com/iochub/iochub/services/ingest"
)

const benchBatch = 500

// benchBody is a batch of air observations in three Hà Nội wards, posted by
// the province's source; ITER in the ids is replaced per request.
func benchBody(b *testing.B) []byte {
	pts := [][2]float64{hoanKiem, cauGiay, {105.8342, 21.0278}}
	items := make([]map[string]any, benchBatch)
	for i := range items {
		items[i] = air(fmt.Sprintf("bench-ITER-%d", i), pts[i%len(pts)])
		items[i]["no2"] = 20.5
		items[i]["temperature"] = 31.0
	}
	return mustJSON(b, items)
}

// BenchmarkIngest measures HTTP batch ingest (decode, validate, locate,
// publish, wait for acks) against raw JetStream async publishing of the same
// message bytes with message ids, both on one embedded NATS server.
func BenchmarkIngest(b *testing.B) {
	e := newEnv(b, ingest.Config{Limits: ingest.Limits{SourceRate: -1}}) // one source, as fast as it can
	tpl := benchBody(b)
	client := &http.Client{}
	// The load's own work kept small, as a load generator's would be: it
	// shares the process and its collector with the hub's handler, and the
	// raw baseline has no such client. Each request's ids get a new number
	// written in place over fixed-width digits (no copy of the body), and
	// the answers are read into one buffer.
	body, slots := iterSlots(tpl)
	var buf bytes.Buffer
	iter := 0
	post := func() {
		iter++
		setIter(body, slots, iter)
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/feeds/air", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tokProvince)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		buf.Reset()
		_, _ = buf.ReadFrom(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusAccepted || !bytes.Contains(buf.Bytes(), []byte(`"accepted":500`)) {
			b.Fatalf("got HTTP %d: %.300s", res.StatusCode, buf.String())
		}
	}

	b.Run("http-batch-500", func(b *testing.B) {
		b.SetBytes(int64(len(tpl)))
		cpu0 := cpuTime(b)
		for b.Loop() {
			post()
		}
		b.ReportMetric(float64(benchBatch*b.N)/b.Elapsed().Seconds(), "events/s")
		reportCPU(b, cpu0)
	})

	b.Run("raw-publish-async-500", func(b *testing.B) {
		raw := rawPublisher(b, e)
		cpu0 := cpuTime(b)
		for b.Loop() {
			raw()
		}
		b.ReportMetric(float64(benchBatch*b.N)/b.Elapsed().Seconds(), "events/s")
		reportCPU(b, cpu0)
	})

	// One HTTP batch, then one raw batch, in each iteration: on a shared
	// machine whatever else runs weighs on both alike, so the ratio holds
	// steadier than that of the two runs above.
	b.Run("alternate", func(b *testing.B) {
		raw := rawPublisher(b, e)
		var tHTTP, tRaw time.Duration
		for b.Loop() {
			t0 := time.Now()
			post()
			t1 := time.Now()
			raw()
			tHTTP, tRaw = tHTTP+t1.Sub(t0), tRaw+time.Since(t1)
		}
		b.ReportMetric(float64(benchBatch*b.N)/tHTTP.Seconds(), "http-events/s")
		b.ReportMetric(float64(benchBatch*b.N)/tRaw.Seconds(), "raw-events/s")
		b.ReportMetric(tRaw.Seconds()/tHTTP.Seconds(), "http/raw")
	})
}

// iterWidth is the number of digits iterSlots leaves for a request's number.
const iterWidth = 10

// iterSlots returns a copy of tpl with each "ITER" widened to iterWidth
// zeros, and where those digits start.
func iterSlots(tpl []byte) ([]byte, []int) {
	body := bytes.ReplaceAll(tpl, []byte("ITER"), bytes.Repeat([]byte("0"), iterWidth))
	var slots []int
	for off := 0; ; {
		i := bytes.Index(tpl[off:], []byte("ITER"))
		if i < 0 {
			break
		}
		// Each earlier slot has grown the body by iterWidth-4 bytes.
		slots = append(slots, off+i+len(slots)*(iterWidth-4))
		off += i + len("ITER")
	}
	return body, slots
}

// setIter writes n, zero-padded, into each slot of body.
func setIter(body []byte, slots []int, n int) {
	var d [iterWidth]byte
	for i := iterWidth - 1; i >= 0; i-- {
		d[i] = byte('0' + n%10)
		n /= 10
	}
	for _, at := range slots {
		copy(body[at:at+iterWidth], d[:])
	}
}

// rawPublisher returns a function that publishes the 500 messages of a
// captured batch with new message ids, asynchronously (the ingest's window),
// and waits for every ack: the ceiling the ingest is measured against.
func rawPublisher(b *testing.B, e *env) func() {
	msgs := captured(b, e)
	js, err := jetstream.New(e.nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	rawPublishers++
	prefix := "raw" + strconv.Itoa(rawPublishers) + "/" // ids never repeat within a stream
	n := 0
	return func() {
		n++
		for i, m := range msgs {
			out := &nats.Msg{Subject: m.Subject, Data: m.Data, Header: make(nats.Header, len(m.Header)+1)}
			for k, v := range m.Header {
				if k != jetstream.MsgIDHeader {
					out.Header[k] = v
				}
			}
			if _, err := js.PublishMsgAsync(out, jetstream.WithMsgID(prefix+strconv.Itoa(n)+"/"+strconv.Itoa(i))); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(30 * time.Second):
			b.Fatal("acks did not arrive")
		}
	}
}

// cpuTime is the CPU time used so far by the whole process (the NATS
// server, the HTTP client and the handler alike).
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportCPU reports the process's CPU time per event since cpu0: on a
// shared machine, where wall time depends on what else runs, it is the
// steadier measure of what each path costs.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(benchBatch*b.N), "cpu-µs/event")
}

// rawPublishers numbers the raw publishers, so each sends new ids.
var rawPublishers int

// captures numbers the captured batches, so each has new ids.
var captures int

// captured posts one batch and reads its 500 messages back from FEEDS, so the
// baseline sends exactly the bytes the ingest sends.
func captured(b *testing.B, e *env) []*nats.Msg {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	before, err := e.js.Stream(ctx, subjects.StreamFeeds)
	if err != nil {
		b.Fatal(err)
	}
	info, err := before.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}
	captures++
	r := postTo(b, e.srv.URL, "air", tokProvince, "application/json", bytes.ReplaceAll(benchBody(b), []byte("ITER"), []byte("capture"+strconv.Itoa(captures))))
	if r.resp.Accepted != benchBatch {
		b.Fatalf("capture: got %d accepted", r.resp.Accepted)
	}
	cons, err := e.js.OrderedConsumer(ctx, subjects.StreamFeeds, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: info.State.LastSeq + 1})
	if err != nil {
		b.Fatal(err)
	}
	batch, err := cons.FetchNoWait(benchBatch)
	if err != nil {
		b.Fatal(err)
	}
	var out []*nats.Msg
	for m := range batch.Messages() {
		out = append(out, &nats.Msg{Subject: m.Subject(), Data: m.Data(), Header: m.Headers()})
	}
	if len(out) != benchBatch {
		b.Fatalf("capture: read %d messages; want %d", len(out), benchBatch)
	}
	return out
}
