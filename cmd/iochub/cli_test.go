package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/seed"
	"github.com/iochub/iochub/internal/testenv"
)

// runCLI runs the iochub command line in-process and returns its output.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	err = run(context.Background(), args, &out, &errb)
	return out.String(), errb.String(), err
}

func TestCLIUnitsImportAndSources(t *testing.T) {
	db := testenv.PostGIS(t)
	dir := t.TempDir()
	provinces := filepath.Join(dir, "provinces.geojson")
	wards := filepath.Join(dir, "wards.geojson")
	if err := os.WriteFile(provinces, seed.Provinces2025(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wards, seed.HanoiWards2025(), 0o644); err != nil {
		t.Fatal(err)
	}

	out, errOut, err := runCLI(t, "units", "import", "--database-url", db.URL, provinces, wards)
	if err != nil {
		t.Fatalf("units import: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "34 read, 34 new") || !strings.Contains(out, "126 read, 126 new") {
		t.Errorf("units import printed %q; want 34 and 126 new units", out)
	}
	if !strings.Contains(errOut, "importing") {
		t.Errorf("units import showed no progress on stderr: %q", errOut)
	}
	var parent string
	if err := db.Pool.QueryRow(context.Background(), `SELECT parent_code FROM admin_unit WHERE code = '00070' AND valid_to IS NULL`).Scan(&parent); err != nil || parent != "01" {
		t.Errorf("ward 00070's parent = %q (%v); want 01", parent, err)
	}
	// Importing the same files again changes nothing.
	out, _, err = runCLI(t, "units", "import", "--database-url", db.URL, wards)
	if err != nil || !strings.Contains(out, "126 unchanged") {
		t.Errorf("second import = %q, %v; want 126 unchanged", out, err)
	}

	out, _, err = runCLI(t, "sources", "add", "--database-url", db.URL, "--id", "hn-hoankiem", "--unit", "00070")
	if err != nil || !strings.Contains(out, "token: ioc_") {
		t.Fatalf("sources add = %q, %v; want a token", out, err)
	}
	out, _, err = runCLI(t, "sources", "disable", "--database-url", db.URL, "--id", "hn-hoankiem")
	if err != nil || !strings.Contains(out, "hn-hoankiem disabled") {
		t.Fatalf("sources disable = %q, %v", out, err)
	}
	var disabled bool
	if err := db.Pool.QueryRow(context.Background(), `SELECT disabled_at IS NOT NULL FROM source WHERE id = 'hn-hoankiem'`).Scan(&disabled); err != nil || !disabled {
		t.Errorf("source disabled_at set = %v (%v); want true", disabled, err)
	}
	if _, _, err := runCLI(t, "sources", "disable", "--database-url", db.URL, "--id", "nobody"); err == nil || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("disabling an unknown source: %v; want an error naming it", err)
	}
	if _, _, err := runCLI(t, "sources", "add", "--database-url", db.URL, "--id", "hn-hk-5m", "--unit", "00070", "--interval", "5m"); err != nil {
		t.Fatalf("sources add --interval 5m: %v", err)
	}
	var interval *int
	if err := db.Pool.QueryRow(context.Background(), `SELECT interval_s FROM source WHERE id = 'hn-hk-5m'`).Scan(&interval); err != nil || interval == nil || *interval != 300 {
		t.Errorf("source interval_s = %v (%v); want 300", interval, err)
	}
	if _, _, err := runCLI(t, "sources", "add", "--database-url", db.URL, "--id", "hn-hk-bad", "--unit", "00070", "--interval", "500ms"); err == nil || !strings.Contains(err.Error(), "interval") {
		t.Errorf("sources add --interval 500ms: %v; want an error naming the interval", err)
	}
	if _, _, err := runCLI(t, "sources", "add", "--database-url", db.URL, "--id", "x", "--unit", "99999"); err == nil || !strings.Contains(err.Error(), "99999") {
		t.Errorf("sources add for an unknown unit: %v; want an error naming it", err)
	}
	if _, _, err := runCLI(t, "units", "import", "--database-url", db.URL, filepath.Join(dir, "missing.geojson")); err == nil {
		t.Error("importing a missing file succeeded")
	}
}

// TestCLIUnitsImportWaitsForAnother: units import run while another import
// of the same map has not committed says it waits, then finds the map
// imported (unchanged), where it used to fail on admin_unit's unique key
// (SQLSTATE 23505).
func TestCLIUnitsImportWaitsForAnother(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	communes := `{"type":"FeatureCollection","features":[
{"type":"Feature","properties":{"code":"99901","name":"Một"},"geometry":{"type":"Polygon","coordinates":[[[105.85,21.02],[105.851,21.02],[105.851,21.021],[105.85,21.021],[105.85,21.02]]]}},
{"type":"Feature","properties":{"code":"99902","name":"Hai"},"geometry":{"type":"Polygon","coordinates":[[[105.86,21.02],[105.861,21.02],[105.861,21.021],[105.86,21.021],[105.86,21.02]]]}}]}`
	file := filepath.Join(t.TempDir(), "communes.geojson")
	if err := os.WriteFile(file, []byte(communes), 0o644); err != nil {
		t.Fatal(err)
	}
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	// The other import (the hub's, or another CLI), held open.
	commit := testenv.HoldUnitsImport(t, db.Pool, communes, schema.ImportOptions{ValidFrom: from})
	type outcome struct {
		out, errOut string
		err         error
	}
	o := testenv.WhileHeld(t, db.Pool, "units import", commit, func() outcome {
		var o outcome
		o.out, o.errOut, o.err = runCLI(t, "units", "import", "--database-url", db.URL, "--valid-from", from.Format(time.RFC3339), file)
		return o
	}, func(o outcome) string { return fmt.Sprintf("%v: %s", o.err, o.errOut) })
	if o.err != nil {
		t.Fatalf("units import after the other: %v\n%s", o.err, o.errOut)
	}
	if !strings.Contains(o.out, "2 read, 0 new, 2 unchanged") {
		t.Errorf("units import printed %q; want 2 read, 0 new, 2 unchanged", o.out)
	}
	if !strings.Contains(o.errOut, "communes.geojson: waiting for another map import to finish") || !strings.Contains(o.errOut, "importing") {
		t.Errorf("units import showed %q on stderr; want that it waits, then its progress", o.errOut)
	}
}

func TestCLIUsageAndConfig(t *testing.T) {
	if _, errOut, err := runCLI(t, "frobnicate"); !errors.Is(err, errUsage) || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %v %q", err, errOut)
	}
	if _, _, err := runCLI(t, "serve", "--target", "everything", "--check-config"); err == nil || !strings.Contains(err.Error(), "--target") {
		t.Errorf("bad --target: %v; want an error naming --target", err)
	}
	t.Setenv("IOCHUB_HTTP", "127.0.0.1:9999")
	out, _, err := runCLI(t, "serve", "--target", "gateway", "--check-config")
	if err != nil || !strings.Contains(out, "HTTP:127.0.0.1:9999") {
		t.Errorf("env IOCHUB_HTTP not taken: %q %v", out, err)
	}
	out, _, err = runCLI(t, "serve", "--target", "gateway", "--http", "127.0.0.1:7777", "--check-config")
	if err != nil || !strings.Contains(out, "HTTP:127.0.0.1:7777") {
		t.Errorf("flag --http does not win over env: %q %v", out, err)
	}
	t.Setenv("IOCHUB_NATS_PORT", "many")
	if _, _, err := runCLI(t, "dev", "--check-config"); err == nil || !strings.Contains(err.Error(), `IOCHUB_NATS_PORT="many"`) {
		t.Errorf("malformed IOCHUB_NATS_PORT: %v; want an error naming it", err)
	}
	out, _, err = runCLI(t, "serve", "--target", "gateway", "--check-config")
	if err != nil || !strings.Contains(out, "HTTP:127.0.0.1:9999") {
		t.Errorf("serve --check-config = %q %v", out, err)
	}
	t.Setenv("IOCHUB_HTTP", "")
	os.Unsetenv("IOCHUB_HTTP")
	out, _, err = runCLI(t, "serve", "--target", "gateway", "--check-config")
	if err != nil || !strings.Contains(out, "HTTP::8080") {
		t.Errorf("serve's own default --http is lost: %q %v; want :8080", out, err)
	}
	if _, _, err := runCLI(t, "serve", "--alert-scope", "district", "--check-config"); err == nil || !strings.Contains(err.Error(), "--alert-scope") {
		t.Errorf("bad --alert-scope: %v; want an error naming it", err)
	}
	t.Setenv("IOCHUB_ALERT_SCOPE", "unit")
	out, _, err = runCLI(t, "serve", "--target", "ingest", "--check-config")
	if err != nil || !strings.Contains(out, "AlertScope:unit") {
		t.Errorf("env IOCHUB_ALERT_SCOPE not taken: %q %v", out, err)
	}
	if _, _, err := runCLI(t, "migrate"); err == nil || !strings.Contains(err.Error(), "--database-url") {
		t.Errorf("migrate without a database: %v", err)
	}
}

func TestCLIIdentities(t *testing.T) {
	db := testenv.PostGISWithUnits(t)
	out, _, err := runCLI(t, "identities", "create", "--database-url", db.URL, "--name", "Wall screen, Hà Nội", "--role", "viewer", "--scope", "01,79")
	if err != nil || !strings.Contains(out, "viewer of 01,79") || !strings.Contains(out, "token: iocid_") {
		t.Fatalf("identities create = %q, %v; want a viewer of 01,79 and an iocid_ token", out, err)
	}
	id := strings.Fields(strings.TrimPrefix(out, "identity "))[0]
	token := strings.TrimSpace(out[strings.Index(out, "token: ")+len("token: "):])
	token = strings.Fields(token)[0]
	var stored []byte
	if err := db.Pool.QueryRow(context.Background(), `SELECT token_sha256 FROM identity WHERE id = $1`, id).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256([]byte(token)); !bytes.Equal(stored, sum[:]) {
		t.Error("the stored hash is not the SHA-256 of the printed token")
	}
	for _, args := range [][]string{
		{"--name", "x", "--role", "root", "--scope", "01"},
		{"--name", "x", "--role", "viewer", "--scope", "1"},
		{"--name", "x", "--role", "viewer", "--scope", "00070,99999"}, // no unit 99999
		{"--name", "x", "--role", "viewer", "--scope", "00"},          // no province 00
		{"--name", "x", "--role", "viewer"},
		{"--role", "viewer", "--scope", "01"},
	} {
		if _, _, err := runCLI(t, append([]string{"identities", "create", "--database-url", db.URL}, args...)...); err == nil {
			t.Errorf("identities create %v succeeded; want an error", args)
		}
	}
	// A ward of Hà Nội is a scope of its own.
	out, _, err = runCLI(t, "identities", "create", "--database-url", db.URL, "--name", "Ward 00070 desk", "--role", "operator", "--scope", "00070")
	if err != nil || !strings.Contains(out, "operator of 00070") {
		t.Errorf("identities create --scope 00070 = %q, %v; want an operator of 00070", out, err)
	}
	var refused int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM identity WHERE name = 'x'`).Scan(&refused); err != nil {
		t.Fatal(err)
	}
	if refused != 0 {
		t.Errorf("%d refused identities were stored", refused)
	}
	out, _, err = runCLI(t, "identities", "list", "--database-url", db.URL)
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "Wall screen, Hà Nội") || strings.Contains(out, token) {
		t.Errorf("identities list = %q, %v; want the identity without its token", out, err)
	}
	if out, _, err = runCLI(t, "identities", "revoke", "--database-url", db.URL, "--id", id); err != nil || !strings.Contains(out, "revoked") {
		t.Errorf("identities revoke = %q, %v", out, err)
	}
	// Revoking again changes nothing; an unknown id is an error.
	if _, _, err = runCLI(t, "identities", "revoke", "--database-url", db.URL, "--id", id); err != nil {
		t.Errorf("second revoke: %v", err)
	}
	if _, _, err = runCLI(t, "identities", "revoke", "--database-url", db.URL, "--id", "id_00000000000000ff"); err == nil {
		t.Error("revoking an unknown identity succeeded")
	}
	var n int
	_ = db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE actor = 'cli' AND target = $1`, "identity:"+id).Scan(&n)
	if n != 2 {
		t.Errorf("audit rows of the identity = %d; want 2 (create, revoke)", n)
	}
	if _, _, err = runCLI(t, "identities", "grant"); !errors.Is(err, errUsage) {
		t.Errorf("unknown subcommand: %v; want errUsage", err)
	}
}

// TestConfigRoleSettings: every role's settings are reachable from flags and
// IOCHUB_* variables, the same in serve and dev, and checked by their Validate.
func TestConfigRoleSettings(t *testing.T) {
	out, _, err := runCLI(t, "serve", "--target", "gateway", "--check-config")
	if err != nil || !strings.Contains(out, "AllowedOrigins:[]") || !strings.Contains(out, "MaxClientsPerIdentity:20") {
		t.Errorf("gateway defaults: %q %v; want same origin only and 20 live views per identity", out, err)
	}
	t.Setenv("IOCHUB_ALLOWED_ORIGINS", "https://ioc.hanoi.gov.vn,https://wall.example")
	t.Setenv("IOCHUB_AGGREGATOR_BATCH_SIZE", "250")
	t.Setenv("IOCHUB_STATEMENT_TIMEOUT", "5s")
	t.Setenv("IOCHUB_DEADLETTER_MAX_AGE", "48h")
	for _, cmd := range []string{"serve", "dev"} {
		out, _, err := runCLI(t, cmd, "--check-config", "--database-url", "postgres://iochub:hunter2@db/iochub",
			"--max-live-per-identity", "3", "--aggregator-max-deliver", "12", "--live-send-queue", "100")
		if strings.Contains(out, "hunter2") {
			t.Errorf("%s --check-config prints the database password: %q", cmd, out)
		}
		for _, want := range []string{"AllowedOrigins:[https://ioc.hanoi.gov.vn https://wall.example]", "BatchSize:250", "StatementTimeout:5s",
			"DeadletterMaxAge:48h0m0s", "MaxClientsPerIdentity:3", "MaxDeliver:12", "SendQueue:100"} {
			if err != nil || !strings.Contains(out, want) {
				t.Errorf("%s --check-config = %q, %v; want %s", cmd, out, err, want)
			}
		}
	}
	t.Setenv("IOCHUB_AGGREGATOR_MAX_DELIVER", "often")
	if _, _, err := runCLI(t, "serve", "--check-config"); err == nil || !strings.Contains(err.Error(), `IOCHUB_AGGREGATOR_MAX_DELIVER="often"`) {
		t.Errorf("malformed IOCHUB_AGGREGATOR_MAX_DELIVER: %v; want an error naming it", err)
	}
	os.Unsetenv("IOCHUB_AGGREGATOR_MAX_DELIVER")
	for _, args := range [][]string{{"--aggregator-batch-size", "-1"}, {"--live-send-queue", "-1"}, {"--statement-timeout", "-1s"}, {"--stream-replicas", "-1"}, {"--max-items", "-1"}} {
		if _, _, err := runCLI(t, append([]string{"serve", "--target", "gateway", "--check-config"}, args...)...); err == nil {
			t.Errorf("%v validates; want an error", args)
		}
	}
	_, help, _ := runCLI(t, "serve", "-h")
	if !strings.Contains(help, "the ingest reads the registered units and sources from it") {
		t.Errorf("serve -h does not say why the ingest needs the database:\n%s", help)
	}
}

// TestConfigReadPool: the gateway's read pool flags, from flags and
// IOCHUB_* variables in serve and dev, redacted and validated.
func TestConfigReadPool(t *testing.T) {
	out, _, err := runCLI(t, "serve", "--target", "gateway", "--check-config")
	if err != nil || !strings.Contains(out, "ReadStatementTimeout:10s") || !strings.Contains(out, "DatabaseReadURL: ") {
		t.Errorf("read pool defaults: %q %v; want a 10s statement timeout and no read URL", out, err)
	}
	t.Setenv("IOCHUB_DATABASE_READ_URL", "postgres://reader:hunter2@replica/iochub")
	t.Setenv("IOCHUB_READ_STATEMENT_TIMEOUT", "3s")
	for _, cmd := range []string{"serve", "dev"} {
		out, _, err := runCLI(t, cmd, "--check-config", "--database-url", "postgres://db/iochub", "--read-max-conns", "7")
		if strings.Contains(out, "hunter2") {
			t.Errorf("%s --check-config prints the read URL's password: %q", cmd, out)
		}
		for _, want := range []string{"DatabaseReadURL:postgres://reader:xxxxx@replica/iochub", "ReadMaxConns:7", "ReadStatementTimeout:3s"} {
			if err != nil || !strings.Contains(out, want) {
				t.Errorf("%s --check-config = %q, %v; want %s", cmd, out, err, want)
			}
		}
	}
	for _, args := range [][]string{{"--read-max-conns", "-1"}, {"--read-statement-timeout", "-1s"}} {
		if _, _, err := runCLI(t, append([]string{"serve", "--target", "gateway", "--check-config"}, args...)...); err == nil || !strings.Contains(err.Error(), args[0]) {
			t.Errorf("%v: %v; want an error naming it", args, err)
		}
	}
}

// TestCheckConfigRedactsNATS: --check-config prints each NATS URL without
// its password or token, as it does the database URLs.
func TestCheckConfigRedactsNATS(t *testing.T) {
	out, _, err := runCLI(t, "serve", "--target", "gateway", "--check-config",
		"--nats-url", "nats://hub:hunter2@n1:4222,nats://s3cr3t-token@n2:4222")
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2", "s3cr3t-token"} {
		if strings.Contains(out, secret) {
			t.Errorf("--check-config prints %s: %q", secret, out)
		}
	}
	if want := "NATSURL:nats://hub:xxxxx@n1:4222,nats://xxxxx@n2:4222"; !strings.Contains(out, want) {
		t.Errorf("--check-config = %q; want %s", out, want)
	}
}

// TestCLIMigrateDownTo: `iochub migrate --down-to N` undoes the migrations
// after N (the shared roll-up member rows of 00035 become rows per unit),
// and `iochub migrate` applies them again.
func TestCLIMigrateDownTo(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	version := func() int64 {
		var v int64
		if err := db.Pool.QueryRow(ctx, `SELECT max(version_id) FROM goose_db_version WHERE is_applied`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	newest := version()
	if newest < 35 {
		t.Fatalf("newest migration %d; want 35 or later", newest)
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO rollup_member_day (layer, entity, day, unit_code, grades, units)
		VALUES ('air', 'st1', '2025-07-31 17:00+00', '', decode(repeat('01', 2048), 'hex'), '{01,VN}')`); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "migrate", "--database-url", db.URL, "--down-to", "34")
	if err != nil || !strings.Contains(out, "migrated down to 34") {
		t.Fatalf("migrate --down-to 34: %q %v", out, err)
	}
	if v := version(); v != 34 {
		t.Fatalf("after --down-to 34 the database is at %d", v)
	}
	var units string
	if err := db.Pool.QueryRow(ctx, `SELECT string_agg(unit_code, ',' ORDER BY unit_code) FROM rollup_member_day WHERE entity = 'st1'`).Scan(&units); err != nil {
		t.Fatal(err)
	}
	if units != "01,VN" {
		t.Fatalf("member rows of st1 after --down-to 34: %q; want 01,VN", units)
	}
	if out, _, err := runCLI(t, "migrate", "--database-url", db.URL); err != nil || !strings.Contains(out, "migrations applied") {
		t.Fatalf("migrate: %q %v", out, err)
	}
	if v := version(); v != newest {
		t.Fatalf("after migrate the database is at %d; want %d", v, newest)
	}
}
