package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/iochub/iochub/internal/natsx"
)

// runNationalAdmin is "iochub national-add|national-remove|national-list":
// which province hubs the national hub's ROLLUPS and STATE source
// (natsx.AddProvinceSources; docs/edge.md).
func runNationalAdmin(ctx context.Context, cmd string, args []string, stdout, stderr io.Writer) error {
	var province, domain *string
	nc, js, err := sourcingAdmin(cmd, "national-list", args, stderr, func(fs *flag.FlagSet) *string {
		province = fs.String("province", "", "code of the province (its hub's own roll-ups are ioc.rollup.CODE.CODE.>)")
		domain = fs.String("domain", "", "JetStream domain of the province hub's NATS server; empty means province-CODE")
		return province
	}, "--province CODE [--domain DOMAIN] [--nats-url URL]")
	if err != nil {
		return err
	}
	defer nc.Close()
	// Long enough to wait out the lock of the sources left by a command
	// that died holding it (natsx.SourcesLockTTL).
	ctx, cancel := context.WithTimeout(ctx, cliTimeout+natsx.SourcesLockTTL)
	defer cancel()
	switch cmd {
	case "national-list":
		return printProvinces(ctx, js, stdout)
	case "national-add":
		d, err := provinceDomain(*domain, *province)
		if err != nil {
			return err
		}
		if err := natsx.AddProvinceSources(ctx, js, *province, d); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "the national hub sources the roll-ups and alerts of province %s (domain %s)\n", *province, d)
	case "national-remove":
		if err := natsx.RemoveProvinceSources(ctx, js, *province); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "the national hub no longer sources province %s; what it copied stays\n", *province)
	}
	return nil
}

func printProvinces(ctx context.Context, js jetstream.JetStream, stdout io.Writer) error {
	srcs, err := natsx.ProvinceSources(ctx, js)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROVINCE\tDOMAIN\tSTREAM\tCOPIED SEQ\tLAG\tLAST ACTIVE\tERROR")
	for _, s := range srcs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%s\n", s.Province, s.Domain, s.Stream, s.Seq, s.Lag, sinceActive(s.Active), s.Error)
	}
	return tw.Flush()
}

// runNationalNATSUser is "iochub national-nats-user": the entry of the
// national hub's nats-server users for the leaf connection of one province
// hub (natsx.ProvinceLeafUser).
func runNationalNATSUser(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("iochub national-nats-user", flag.ContinueOnError)
	fs.SetOutput(stderr)
	province := fs.String("province", "", "code of the province (required)")
	domain := fs.String("domain", "", "JetStream domain of the province hub; empty means province-CODE")
	pwVar := fs.String("password-var", "", "environment variable of nats-server holding the province's password; empty means NATS_PROVINCE_<CODE>_PASSWORD")
	fs.Usage = func() {
		fmt.Fprint(stderr, "usage: iochub national-nats-user --province CODE [--domain DOMAIN] [--password-var NAME]\n\n"+
			"Prints the user of the hub of province CODE for the users list of the national hub's nats-server\n"+
			"authorization block: it may connect only as a leaf node, and only the national hub's sourcing of the\n"+
			"province's roll-ups and alerts crosses its connection (docs/edge.md).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *province == "" || fs.NArg() != 0 {
		fs.Usage()
		return errUsage
	}
	d, err := provinceDomain(*domain, *province)
	if err != nil {
		return err
	}
	name, err := leafPasswordVar(*pwVar, "PROVINCE", *province)
	if err != nil {
		return err
	}
	entry, err := natsx.ProvinceUserConfig(*province, d, "$"+name)
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(stdout, entry)
	return err
}

// provinceDomain is the JetStream domain of the hub of province: given, or
// its default (natsx.ProvinceDomain).
func provinceDomain(given, province string) (string, error) {
	if given != "" {
		return given, nil
	}
	return natsx.ProvinceDomain(province)
}
