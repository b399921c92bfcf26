package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/iochub/iochub/internal/natsx"
)

// viaHubPoll is how often `units import --via-hub` asks for the progress.
const viaHubPoll = 500 * time.Millisecond

// importViaHub uploads each file to a running hub's
// POST /v1/admin/units/imports and follows its progress until it ends.
func importViaHub(ctx context.Context, hub, token, validFrom string, replace bool, files []string, stdout, stderr io.Writer) error {
	base, err := url.Parse(strings.TrimRight(hub, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return fmt.Errorf("--via-hub %q: want the hub's http(s):// URL", hub)
	}
	if token == "" {
		return fmt.Errorf("--token (or IOCHUB_TOKEN) is required with --via-hub: the key of an admin of every province")
	}
	for _, name := range files {
		if err := importFileViaHub(ctx, base, token, validFrom, replace, name, stdout, stderr); err != nil {
			return fmt.Errorf("importing %s through %s: %w", name, base.Redacted(), err)
		}
	}
	return nil
}

func importFileViaHub(ctx context.Context, base *url.URL, token, validFrom string, replace bool, name string, stdout, stderr io.Writer) error {
	f, err := os.Open(name) //nolint:gosec // G304: uploading the file the operator names is the command's purpose
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // only read
	u := base.JoinPath("/v1/admin/units/imports")
	q := url.Values{}
	if validFrom != "" {
		q.Set("valid_from", validFrom)
	}
	if replace {
		q.Set("replace", "true")
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), f)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/geo+json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req) //nolint:gosec // G704: the hub's URL is the operator's
	if err != nil {
		return fmt.Errorf("uploading: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("uploading: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	loc, err := base.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return fmt.Errorf("uploading: the answer has no Location of the import (%q)", resp.Header.Get("Location"))
	}
	for {
		rec, err := importProgress(ctx, loc.String(), token)
		if err != nil {
			return err
		}
		fmt.Fprintf(stderr, "\rimporting %s: %s, %d read", name, rec.State, rec.Read)
		switch rec.State {
		case natsx.ImportDone:
			fmt.Fprintf(stderr, "\n")
			fmt.Fprintf(stdout, "%s: %d read, %d new, %d unchanged, %d closed, %d retired (import %s)\n", name, rec.Read, rec.Written, rec.Unchanged, rec.Closed, rec.Retired, rec.ID)
			return nil
		case natsx.ImportFailed:
			fmt.Fprintf(stderr, "\n")
			return fmt.Errorf("import %s failed: %s", rec.ID, rec.Error)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(viaHubPoll):
		}
	}
}

// importProgress reads the progress record at u.
func importProgress(ctx context.Context, u, token string) (natsx.UnitImport, error) {
	var rec natsx.UnitImport
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return rec, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req) //nolint:gosec // G704: the hub's URL is the operator's
	if err != nil {
		return rec, fmt.Errorf("reading the progress: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return rec, fmt.Errorf("reading the progress: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, &rec); err != nil {
		return rec, fmt.Errorf("reading the progress: %w", err)
	}
	return rec, nil
}
