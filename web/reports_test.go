package web

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/iochub/iochub/services/ingest"
)

// TestReportNames guards the wall screen's names of report categories and
// statuses against the ingest's list: each one in Vietnamese and English.
func TestReportNames(t *testing.T) {
	js, err := fs.ReadFile(FS(), "reports.js")
	if err != nil {
		t.Fatal(err)
	}
	keys := []string{}
	for _, c := range ingest.ReportCategories {
		keys = append(keys, "reportCat."+c)
	}
	for _, s := range []string{"received", "assigned", "in_progress", "resolved", "rejected"} {
		keys = append(keys, "reportStatus."+s)
	}
	for _, k := range keys {
		if got := strings.Count(string(js), "'"+k+"':"); got != 2 {
			t.Errorf("%s is named %d times in reports.js; want 2 (vi and en)", k, got)
		}
	}
	html, err := fs.ReadFile(FS(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{`id="reports"`, `id="reports-empty"`, `id="reports-more"`, `href="reports.css"`} {
		if !strings.Contains(string(html), id) {
			t.Errorf("index.html lacks %s", id)
		}
	}
}
