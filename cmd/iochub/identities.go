package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/iochub/iochub/internal/auth"
	"github.com/iochub/iochub/internal/kind"
	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/services/aggregator/postgis"
	"github.com/iochub/iochub/services/gateway/pgread"
)

const identitiesUsage = `usage: iochub identities create --name NAME --role viewer|operator|admin --scope 01[,79,00070]|* [--kinds air,water]
       iochub identities list
       iochub identities revoke --id ID
`

// runIdentities is "iochub identities create|list|revoke": people and
// programs allowed to use the gateway. Like "sources add", it writes the
// database directly (an administrator's tool, run where the database is);
// the admin API goes through the aggregator instead.
func runIdentities(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, identitiesUsage)
		return errUsage
	}
	cfg := defaults()
	fs := flag.NewFlagSet("iochub identities "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg.registerDatabaseURL(fs, "PostGIS database URL")
	var name, role, scope, kindList, id *string
	switch args[0] {
	case "create":
		name = fs.String("name", "", "who the identity is, e.g. \"Wall screen, Hà Nội IOC\" (required)")
		role = fs.String("role", "viewer", "viewer (reads), operator (reads and acts) or admin (also rules and identities)")
		scope = fs.String("scope", "", "comma-separated unit codes the identity may see, each with everything inside it: provinces (01,79), wards or communes (00070), or * for all (required)")
		kindList = fs.String("kinds", "", "comma-separated kinds the identity may read (air,water,alert…); empty is every kind")
	case "list":
	case "revoke":
		id = fs.String("id", "", "id of the identity to revoke, as listed (required)")
	default:
		fmt.Fprint(stderr, identitiesUsage)
		return errUsage
	}
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if err := applyEnv(fs); err != nil {
		return err
	}
	if cfg.DatabaseURL == "" {
		return errors.New("--database-url (or IOCHUB_DATABASE_URL) is required")
	}
	var (
		r      auth.Role
		scopes []string
		kinds  []string
		err    error
	)
	switch args[0] {
	case "create":
		if r, err = auth.ParseRole(*role); err != nil {
			return fmt.Errorf("--role: %w", err)
		}
		if scopes, err = auth.ParseScopes(*scope); err != nil {
			return fmt.Errorf("--scope: %w", err)
		}
		if err = auth.CheckName(*name); err != nil {
			return fmt.Errorf("--name: %w", err)
		}
		if kinds, err = auth.ParseKinds(*kindList); err != nil {
			return fmt.Errorf("--kinds: %w", err)
		}
		for _, k := range kinds {
			if !kind.Default.Known(k) {
				return fmt.Errorf("--kinds: kind %q is not known to this hub: %w", k, auth.ErrBadIdentity)
			}
		}
	case "revoke":
		if err := auth.CheckID(*id); err != nil {
			return fmt.Errorf("--id: %w", err)
		}
	}
	pool, err := schema.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer pool.Close()
	switch args[0] {
	case "create":
		if err := checkScopeUnits(ctx, pool, scopes); err != nil {
			return err
		}
		ident, token, err := postgis.CreateIdentityCLI(ctx, pool, *name, r, scopes, kinds)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "identity %s (%s) created: %s of %s, kinds %s\ntoken: %s\n(the token is shown once; only its hash is stored)\n",
			ident.ID, ident.Name, ident.Role, strings.Join(ident.Scopes, ","), kindsText(ident.Kinds), token)
	case "list":
		list, err := pgread.New(pool).IdentityList(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tSCOPES\tKINDS\tCREATED\tREVOKED")
		for _, v := range list {
			revoked := "-"
			if v.RevokedAt != nil {
				revoked = v.RevokedAt.UTC().Format(time.RFC3339) + " by " + v.RevokedBy
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s by %s\t%s\n", v.ID, v.Name, v.Role, strings.Join(v.Scopes, ","), kindsText(v.Kinds),
				v.CreatedAt.UTC().Format(time.RFC3339), v.CreatedBy, revoked)
		}
		return tw.Flush()
	case "revoke":
		if err := postgis.RevokeIdentityCLI(ctx, pool, *id); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "identity %s revoked; gateways refuse its token and sessions from their next identity refresh (within 10 s by default)\n", *id)
	}
	return nil
}

// checkScopeUnits refuses scopes that name no current unit ("*" is every unit).
func checkScopeUnits(ctx context.Context, pool *pgxpool.Pool, scopes []string) error {
	codes := slices.DeleteFunc(slices.Clone(scopes), func(s string) bool { return s == "*" })
	unknown, err := schema.UnknownUnits(ctx, pool, codes)
	if err != nil {
		return fmt.Errorf("checking the scopes' units: %w", err)
	}
	if len(unknown) > 0 {
		return fmt.Errorf("--scope: no current unit has the code %s: %w", strings.Join(unknown, ","), auth.ErrBadIdentity)
	}
	return nil
}

// kindsText is kinds for people: "all" when there are none.
func kindsText(kinds []string) string {
	if len(kinds) == 0 {
		return "all"
	}
	return strings.Join(kinds, ",")
}
