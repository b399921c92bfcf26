package main

import (
	"flag"
	"fmt"
	"io"
	"regexp"

	"github.com/iochub/iochub/internal/natsx"
)

// runNATSConfig is "iochub nats-config": the authorization block of a
// nats-server configuration with the hub's user and the read-only reader
// (natsx.ReaderPermissions), the same users iochub dev gives its embedded
// server. Passwords stay in the server's environment: the block names them.
func runNATSConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("iochub nats-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	hubVar := fs.String("hub-password-var", "NATS_HUB_PASSWORD", "environment variable of nats-server holding the hub user's password")
	readerVar := fs.String("reader-password-var", "NATS_READER_PASSWORD", "environment variable of nats-server holding the reader's password")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: iochub nats-config [--hub-password-var NAME] [--reader-password-var NAME] >> nats-server.conf\n\n"+
			"Prints the users of a hub for nats-server: hub (every right; give iochub serve --nats-url nats://hub:PASSWORD@host:4222)\n"+
			"and reader (read-only: FEEDS, STATE, ROLLUPS; for developers, docs/developers.md).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	name := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	if fs.NArg() != 0 || !name.MatchString(*hubVar) || !name.MatchString(*readerVar) {
		fs.Usage()
		return errUsage
	}
	_, err := fmt.Fprint(stdout, natsx.AuthorizationConfig("$"+*hubVar, "$"+*readerVar))
	return err
}
