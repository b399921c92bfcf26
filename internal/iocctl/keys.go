package iocctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"
)

const keysSynopsis = `keys create --name NAME --scope 01[,79,00070]|* [--role viewer|operator|admin] [--kinds air,water] [--url URL --key ADMIN_KEY]
       iocctl keys list [--json] [--url URL --key ADMIN_KEY]
       iocctl keys revoke ID [--url URL --key ADMIN_KEY]

API keys are the hub's identities (POST, GET and DELETE /v1/admin/identities): a key reads the provinces or
units of its scope and, with --kinds, only those kinds of data; a viewer reads, an operator also acts, an
admin also manages rules and keys. The key itself is shown once, at creation; only its hash is stored.
Keys read: feed items are written with a source's token.`

// identity is an identity as the admin API answers it.
type identity struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      string     `json:"role"`
	Scopes    []string   `json:"scopes"`
	Kinds     []string   `json:"kinds"`
	Token     string     `json:"token,omitempty"`
	Active    *bool      `json:"active,omitempty"`
	CreatedAt time.Time  `json:"createdAt"`
	CreatedBy string     `json:"createdBy"`
	RevokedAt *time.Time `json:"revokedAt"`
}

func runKeys(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 || (args[0] != "create" && args[0] != "list" && args[0] != "revoke") {
		fmt.Fprintf(env.Stderr, "usage: iocctl %s\n", keysSynopsis)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help") {
			return nil
		}
		return ErrUsage
	}
	var (
		hub                      hubFlags
		name, role, scope, kinds string
		asJSON                   bool
	)
	fs := newFlags(env, "keys "+args[0], keysSynopsis)
	hub.register(fs, env, "an admin's API key")
	switch args[0] {
	case "create":
		fs.StringVar(&name, "name", "", `who the key is for, e.g. "flood bot of Hà Nội" (required)`)
		fs.StringVar(&role, "role", "viewer", "viewer (reads), operator (also acts) or admin (also manages)")
		fs.StringVar(&scope, "scope", "", "comma-separated unit codes the key reads, each with everything inside it: 01,79 (provinces), 00070 (a ward), or * (required)")
		fs.StringVar(&kinds, "kinds", "", "comma-separated kinds the key reads (air,water,alert…); empty is every kind")
	case "list":
		fs.BoolVar(&asJSON, "json", false, "print the answer as JSON")
	}
	rest, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	switch args[0] {
	case "create":
		if len(rest) != 0 || name == "" || scope == "" {
			fs.Usage()
			return ErrUsage
		}
		body, _ := json.Marshal(map[string]any{"name": name, "role": role, "scopes": splitList(scope), "kinds": nonNil(splitList(kinds))})
		var id identity
		if err := call(ctx, env, hub, http.MethodPost, "/v1/admin/identities", body, &id); err != nil {
			return err
		}
		kindsText := "every kind"
		if len(id.Kinds) > 0 {
			kindsText = strings.Join(id.Kinds, ",")
		}
		fmt.Fprintf(env.Stdout, "key %s (%s): %s of %s, %s\n%s\n", id.ID, id.Name, id.Role, strings.Join(id.Scopes, ","), kindsText, id.Token)
		if id.Active != nil && !*id.Active {
			fmt.Fprintln(env.Stderr, "iocctl: the hub has not applied the creation yet; the key works within seconds")
		}
		fmt.Fprintln(env.Stderr, "iocctl: the key is shown once; keep it (e.g. export IOCCTL_KEY=…)")
	case "list":
		if len(rest) != 0 {
			fs.Usage()
			return ErrUsage
		}
		var list struct {
			Identities []identity `json:"identities"`
		}
		if err := call(ctx, env, hub, http.MethodGet, "/v1/admin/identities", nil, &list); err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(env.Stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(list)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tSCOPES\tKINDS\tCREATED\tREVOKED")
		for _, v := range list.Identities {
			k, revoked := "all", "-"
			if len(v.Kinds) > 0 {
				k = strings.Join(v.Kinds, ",")
			}
			if v.RevokedAt != nil {
				revoked = v.RevokedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.ID, v.Name, v.Role, strings.Join(v.Scopes, ","), k,
				v.CreatedAt.UTC().Format(time.RFC3339), revoked)
		}
		return tw.Flush()
	case "revoke":
		if len(rest) != 1 {
			fs.Usage()
			return ErrUsage
		}
		var ans struct {
			ID     string `json:"id"`
			Active bool   `json:"active"`
		}
		if err := call(ctx, env, hub, http.MethodDelete, "/v1/admin/identities/"+url.PathEscape(rest[0]), nil, &ans); err != nil {
			return err
		}
		if ans.Active {
			fmt.Fprintf(env.Stdout, "key %s revoked\n", ans.ID)
		} else {
			fmt.Fprintf(env.Stdout, "key %s: revocation sent; the hub applies it within seconds\n", ans.ID)
		}
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// call sends a JSON request to the admin API and decodes the answer into out.
func call(ctx context.Context, env Env, hub hubFlags, method, path string, body []byte, out any) error {
	if hub.key == "" {
		return fmt.Errorf("no key: give an admin's --key (or IOCCTL_KEY)")
	}
	req, err := http.NewRequestWithContext(ctx, method, hub.endpoint(path), bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+hub.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := env.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readProblem(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading the hub's answer: %w", err)
	}
	return nil
}
