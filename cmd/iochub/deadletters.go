package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/iochub/iochub/internal/ce"
	"github.com/iochub/iochub/internal/deadletter"
	"github.com/iochub/iochub/internal/natsx"
	"github.com/iochub/iochub/internal/subjects"
	iocv1 "github.com/iochub/iochub/proto/ioc/v1"
)

const deadlettersUsage = `usage: iochub deadletters <list|show|redrive|discard> [flags] [SEQ]

  list      list dead letters (--province, --kind, --after, --limit, --json)
  show SEQ  print one dead letter with its headers and payload (JSON)
  redrive SEQ  send it back to its FEEDS subject
  discard SEQ  delete it

redrive and discard are queued as operator actions on ACTIONS, which the
aggregator applies and records in its audit log (--actor names you); with
--direct they act on the streams at once, without an audit row.
`

// cliTimeout bounds each NATS operation of the CLI.
const cliTimeout = 10 * time.Second

func runDeadletters(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, deadlettersUsage)
		return errUsage
	}
	cmd := args[0]
	switch cmd {
	case "list", "show", "redrive", "discard":
	case "-h", "--help", "help":
		fmt.Fprint(stdout, deadlettersUsage)
		return nil
	default:
		fmt.Fprintf(stderr, "iochub deadletters: unknown command %q\n\n%s", cmd, deadlettersUsage)
		return errUsage
	}
	cfg := defaults()
	cfg.NATSURL = nats.DefaultURL
	fs := flag.NewFlagSet("iochub deadletters "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.registerNATSURL(fs)
	var (
		q      deadletter.Query
		asJSON bool
		direct bool
		actor  string
	)
	switch cmd {
	case "list":
		fs.StringVar(&q.Province, "province", "", "only this province's dead letters; empty means every province")
		fs.StringVar(&q.Kind, "kind", "", "only this kind's dead letters; empty means every kind")
		fs.Uint64Var(&q.After, "after", 0, "only dead letters after this sequence (the previous page's next)")
		fs.IntVar(&q.Limit, "limit", 100, "at most this many")
		fs.BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	case "redrive", "discard":
		fs.BoolVar(&direct, "direct", false, "act on the streams at once instead of queueing an audited action for the aggregator")
		fs.StringVar(&actor, "actor", os.Getenv("USER"), "who acts, for the audit log")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	var seq uint64
	if cmd != "list" {
		if fs.NArg() != 1 {
			fmt.Fprintf(stderr, "usage: iochub deadletters %s [flags] SEQ\n", cmd)
			return errUsage
		}
		n, err := strconv.ParseUint(fs.Arg(0), 10, 64)
		if err != nil || n == 0 {
			return fmt.Errorf("dead letter %q: want its sequence, a whole number from 1", fs.Arg(0))
		}
		seq = n
	}
	if cmd == "list" && (q.Limit < 1 || q.Limit > 10000) {
		return fmt.Errorf("--limit %d: want 1 to 10000", q.Limit)
	}
	nc, js, err := cliJetStream(cfg.NATSURL, "iochub-deadletters")
	if err != nil {
		return err
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(ctx, cliTimeout)
	defer cancel()
	switch cmd {
	case "list":
		return listDeadletters(ctx, js, q, asJSON, stdout)
	case "show":
		return showDeadletter(ctx, js, seq, stdout)
	}
	if direct {
		return actDirectly(ctx, js, cmd, seq, stdout)
	}
	if strings.TrimSpace(actor) == "" {
		actor = "cli"
	}
	return queueDeadletterAction(ctx, js, cmd, seq, actor, stdout)
}

func listDeadletters(ctx context.Context, js jetstream.JetStream, q deadletter.Query, asJSON bool, stdout io.Writer) error {
	items, next, err := deadletter.List(ctx, js, q)
	if err != nil {
		return err
	}
	if asJSON {
		if items == nil {
			items = []deadletter.Letter{}
		}
		return json.NewEncoder(stdout).Encode(map[string]any{"items": items, "next": next})
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tPROVINCE\tKIND\tSOURCE\tEVENT\tSTAGE\tREASON")
	for _, l := range items {
		reason := l.Reason
		if len(reason) > 80 {
			reason = reason[:77] + "..."
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Sequence, l.Time.UTC().Format(time.RFC3339), l.Province, l.Kind,
			l.Source, l.EventID, l.Stage, reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if next != 0 {
		fmt.Fprintf(stdout, "more: --after %d\n", next)
	}
	return nil
}

func showDeadletter(ctx context.Context, js jetstream.JetStream, seq uint64, stdout io.Writer) error {
	l, err := deadletter.Get(ctx, js, seq)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(struct {
		deadletter.Letter
		Headers       nats.Header `json:"headers"`
		PayloadBase64 string      `json:"payloadBase64"`
	}{l, l.Header, base64.StdEncoding.EncodeToString(l.Data)})
}

func actDirectly(ctx context.Context, js jetstream.JetStream, cmd string, seq uint64, stdout io.Writer) error {
	if cmd == "discard" {
		if err := deadletter.Discard(ctx, js, seq); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "dead letter %d discarded\n", seq)
		return nil
	}
	l, err := deadletter.Redrive(ctx, js, seq)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "dead letter %d redriven to %s\n", seq, l.Subject)
	return nil
}

// queueDeadletterAction publishes the redrive or discard of seq as an
// operator action, as the gateway does.
func queueDeadletterAction(ctx context.Context, js jetstream.JetStream, cmd string, seq uint64, actor string, stdout io.Writer) error {
	l, err := deadletter.Get(ctx, js, seq)
	if err != nil {
		return err
	}
	typ := deadletter.ActionRedrive
	if cmd == "discard" {
		typ = deadletter.ActionDiscard
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	payload, _ := json.Marshal(map[string]any{"subject": l.Subject, "source": l.Source, "eventId": l.EventID,
		"stage": l.Stage, "reason": l.Reason, "feedsSequence": l.FeedsSeq})
	target := strconv.FormatUint(seq, 10)
	act := &iocv1.Action{Id: id, Type: typ, Actor: actor, Province: l.Province, TargetKind: deadletter.TargetKind,
		Target: target, At: timestamppb.Now(), Payload: payload}
	body, err := proto.Marshal(act)
	if err != nil {
		return fmt.Errorf("marshalling action: %w", err)
	}
	h := ce.Event{ID: id, Source: "urn:ioc:" + l.Province + ":operator", Type: "vn.ioc.action." + typ + ".v1",
		Subject: target, Time: act.At.AsTime()}.Header()
	h[jetstream.MsgIDHeader] = []string{id}
	subj := subjects.Action(l.Province, deadletter.TargetKind, target)
	if _, err := js.PublishMsg(ctx, &nats.Msg{Subject: subj, Header: h, Data: body}); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("publishing %s: no ack within %s", subj, cliTimeout)
		}
		return fmt.Errorf("publishing %s: %w", subj, err)
	}
	fmt.Fprintf(stdout, "%s of dead letter %d queued as action %s; the aggregator applies it and records it in audit_log\n", typ, seq, id)
	return nil
}

// cliJetStream connects a command to NATS at url as name (within
// cliTimeout) and opens JetStream; the caller closes the connection.
func cliJetStream(url, name string) (*nats.Conn, jetstream.JetStream, error) {
	// The hub's inboxes: the replies (dead letters, the streams' sources)
	// are none of a reader's business (natsx.HubInboxPrefix).
	nc, err := nats.Connect(url, nats.Name(name), nats.Timeout(cliTimeout), natsx.HubInbox())
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to NATS at %s: %w", natsx.RedactURLs(url), natsx.RedactError(err))
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("opening JetStream: %w", err)
	}
	return nc, js, nil
}
