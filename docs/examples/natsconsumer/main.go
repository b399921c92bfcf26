// Command natsconsumer is a runnable example of reading iochub's events on
// NATS directly (docs/developers.md): an ordered consumer on the stream
// FEEDS (or STATE, ROLLUPS), the CloudEvents attributes from the ce-*
// headers, and the body decoded with the generated Go package
// github.com/iochub/iochub/proto/ioc/v1.
//
//	go run ./docs/examples/natsconsumer --nats-url nats://reader:PASSWORD@127.0.0.1:4222 --subject 'ioc.feed.01.*.air'
//
// It imports only nats.go, protobuf and the generated package, so it can be
// copied into a program of your own.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

func main() {
	url := flag.String("nats-url", "nats://127.0.0.1:4222", "NATS URL with the reader's user and password, as iochub dev prints it")
	subject := flag.String("subject", "ioc.feed.>", "subject filter: ioc.feed.<province>.<unit>.<kind>, ioc.state.<province>.<layer>.<entity>…")
	all := flag.Bool("all", false, "start at the first stored message instead of new ones")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *url, *subject, *all, 0, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "natsconsumer:", err)
		os.Exit(1)
	}
}

// run prints the messages of subject, one line each, until ctx ends or,
// when max > 0, max messages were printed.
func run(ctx context.Context, url, subject string, all bool, max int, out io.Writer) error {
	nc, err := nats.Connect(url, nats.Name("natsconsumer example"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	// The stream of a subject: ioc.feed.> is FEEDS, ioc.state.> STATE, ioc.rollup.> ROLLUPS.
	stream, err := js.StreamNameBySubject(ctx, subject)
	if err != nil {
		return fmt.Errorf("finding the stream of %s: %w", subject, err)
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}, DeliverPolicy: jetstream.DeliverNewPolicy}
	if all {
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	}
	// An ordered consumer: ephemeral, in order, recreated by the client after
	// a gap; it needs only the reader's permissions.
	cons, err := js.OrderedConsumer(ctx, stream, cfg)
	if err != nil {
		return err
	}
	for n := 0; max == 0 || n < max; n++ {
		msg, err := cons.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		md, _ := msg.Metadata()
		h := msg.Headers()
		body, err := decode(msg.Subject(), h.Get("Content-Type"), msg.Data())
		if err != nil {
			return fmt.Errorf("message %d on %s: %w", md.Sequence.Stream, msg.Subject(), err)
		}
		fmt.Fprintf(out, "%d %s %s id=%s source=%s time=%s %s\n", md.Sequence.Stream, msg.Subject(),
			h.Get("ce-type"), h.Get("ce-id"), h.Get("ce-source"), h.Get("ce-time"), body)
	}
	return nil
}

// decode returns the body as JSON: roll-ups are JSON already; the others are
// protobuf messages of ioc.v1, chosen by the subject's stream and kind.
func decode(subject, contentType string, data []byte) (string, error) {
	if strings.HasPrefix(contentType, "application/json") {
		return string(data), nil
	}
	var m proto.Message
	t := strings.Split(subject, ".")
	switch {
	case t[1] == "state":
		m = &iocv1.EntityState{}
	case t[1] == "feed" && len(t) == 5:
		switch t[4] {
		case "traffic":
			m = &iocv1.TrafficObserved{}
		case "air":
			m = &iocv1.AirQualityObserved{}
		case "water":
			m = &iocv1.WaterObserved{}
		case "weather":
			m = &iocv1.WeatherObserved{}
		case "alert":
			m = &iocv1.Alert{}
		case "report":
			m = &iocv1.Report{}
		default: // a kind registered on the hub
			m = &iocv1.Observation{}
		}
	default:
		return "", fmt.Errorf("no message known for subject %s", subject)
	}
	if err := proto.Unmarshal(data, m); err != nil {
		return "", err
	}
	b, err := protojson.Marshal(m)
	return string(b), err
}
