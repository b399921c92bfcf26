package iocctl

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const replaySynopsis = `replay --from TIME --to TIME [--speed 8x|max] --subject ioc.feed.01.> --to-subject sandbox.>
                     [--nats-url URL | --context NAME]

Reads the messages of --subject stored between --from and --to (RFC 3339 times, or durations before now
such as 2h) from their stream and publishes each again, headers kept, on --to-subject, paced as they were
stored divided by --speed (max: no pause). A '>' at the end of --to-subject stands for the whole original
subject: ioc.feed.01.00070.air goes to sandbox.ioc.feed.01.00070.air. Publishing back into the hub's own
subjects (ioc.>) is refused: replay is for demos and tests on other subjects.`

func runReplay(ctx context.Context, args []string, env Env) error {
	var (
		from, to, speed, subject, toSubject string
		nf                                  natsFlags
	)
	fs := newFlags(env, "replay", replaySynopsis)
	fs.StringVar(&from, "from", "", "start of the window: RFC 3339 time or a duration before now (required)")
	fs.StringVar(&to, "to", "", "end of the window; empty is now")
	fs.StringVar(&speed, "speed", "1x", "pace: 1x as stored, 8x eight times faster, max without pauses")
	fs.StringVar(&subject, "subject", "", "subject filter to read, e.g. ioc.feed.01.> (required)")
	fs.StringVar(&toSubject, "to-subject", "", "where to publish, e.g. sandbox.> (required)")
	nf.register(fs, env)
	rest, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 0 || from == "" || subject == "" || toSubject == "" {
		fs.Usage()
		return ErrUsage
	}
	now := time.Now()
	start, err := parseTime(from, now)
	if err != nil {
		return fmt.Errorf("--from %w", err)
	}
	end := now
	if to != "" {
		if end, err = parseTime(to, now); err != nil {
			return fmt.Errorf("--to %w", err)
		}
	}
	if !end.After(start) {
		return fmt.Errorf("--to %s is not after --from %s", end.Format(time.RFC3339), start.Format(time.RFC3339))
	}
	factor, err := parseSpeed(speed)
	if err != nil {
		return err
	}
	if toSubject == "ioc" || strings.HasPrefix(toSubject, "ioc.") || strings.HasPrefix(toSubject, "$") || strings.HasPrefix(toSubject, ">") {
		return fmt.Errorf("--to-subject %q: replay publishes outside the hub's subjects (ioc.>) and the system's ($…); use e.g. sandbox.>", toSubject)
	}
	stream, err := streamOf(subject)
	if err != nil {
		return err
	}
	if !nf.set() {
		return errors.New("replay reads and publishes on NATS: give --nats-url or --context")
	}
	nc, err := nf.connect(env, "iocctl replay")
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("opening JetStream: %w", err)
	}
	n, err := replay(ctx, js, nc, replayWindow{stream: stream, subject: subject, toSubject: toSubject, from: start, to: end, speed: factor})
	fmt.Fprintf(env.Stderr, "replayed %d messages of %s from %s to %s on %s\n", n, subject,
		start.Format(time.RFC3339), end.Format(time.RFC3339), toSubject)
	return err
}

// parseSpeed reads "8x", "0.5x", "8" or "max" (0: no pauses).
func parseSpeed(s string) (float64, error) {
	if s == "max" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "x"), 64)
	if err != nil || f <= 0 || f > 1e6 {
		return 0, fmt.Errorf("--speed %q: want a factor such as 1x, 8x, 0.5x, or max", s)
	}
	return f, nil
}

// replayWindow is what replay reads and where it writes.
type replayWindow struct {
	stream, subject, toSubject string
	from, to                   time.Time
	speed                      float64 // 0: no pauses
}

// mapSubject is the subject a message of subject is replayed on.
func mapSubject(toSubject, subject string) string {
	if prefix, ok := strings.CutSuffix(toSubject, ">"); ok {
		return prefix + subject
	}
	return toSubject
}

// replay publishes the window's messages again and returns how many.
func replay(ctx context.Context, js jetstream.JetStream, nc *nats.Conn, w replayWindow) (int, error) {
	from := w.from
	cons, err := js.OrderedConsumer(ctx, w.stream, jetstream.OrderedConsumerConfig{FilterSubjects: []string{w.subject},
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &from})
	if err != nil {
		return 0, fmt.Errorf("reading %s on %s: %w", w.subject, w.stream, err)
	}
	n := 0
	var prev time.Time
	for {
		msg, err := cons.Next(jetstream.FetchMaxWait(2 * time.Second))
		if errors.Is(err, nats.ErrTimeout) || (errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil) {
			return n, nil // nothing more stored: the window ends before --to
		}
		if err != nil {
			if ctx.Err() != nil {
				return n, nil
			}
			return n, fmt.Errorf("reading %s: %w", w.stream, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return n, fmt.Errorf("reading %s: %w", w.stream, err)
		}
		if md.Timestamp.After(w.to) {
			return n, nil
		}
		if w.speed > 0 && !prev.IsZero() {
			if d := time.Duration(float64(md.Timestamp.Sub(prev)) / w.speed); d > 0 {
				select {
				case <-ctx.Done():
					return n, nil
				case <-time.After(d):
				}
			}
		}
		prev = md.Timestamp
		out := &nats.Msg{Subject: mapSubject(w.toSubject, msg.Subject()), Header: nats.Header{}, Data: msg.Data()}
		for k, v := range msg.Headers() {
			out.Header[k] = v
		}
		if err := nc.PublishMsg(out); err != nil {
			return n, fmt.Errorf("publishing on %s: %w", out.Subject, err)
		}
		n++
		if md.NumPending == 0 {
			return n, nc.Flush()
		}
	}
}
