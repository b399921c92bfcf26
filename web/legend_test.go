package web

import (
	"fmt"
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/iochub/iochub/internal/aqi"
)

// TestLegendMatchesVNAQI guards the wall screen's VN_AQI legend against the
// aqi package: each band's colour and names in both languages.
func TestLegendMatchesVNAQI(t *testing.T) {
	html, err := fs.ReadFile(FS(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	i18n, err := fs.ReadFile(FS(), "i18n.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range aqi.Bands() {
		t.Run(b.NameEN, func(t *testing.T) {
			// The PM2.5 NowCast ranges the legend shows are those of the band's AQI range.
			item := regexp.MustCompile(fmt.Sprintf(`<li><i class="sw circle" style="background:%s"></i>[^<]+ <span data-i18n="aqi.band%d">%s</span></li>`,
				regexp.QuoteMeta(b.Color), b.Level, regexp.QuoteMeta(b.NameVI)))
			if !item.Match(html) {
				t.Errorf("index.html lacks the legend item of band %d: %s", b.Level, item)
			}
			for _, name := range []string{b.NameVI, b.NameEN} {
				if want := fmt.Sprintf("'aqi.band%d': '%s',", b.Level, name); !strings.Contains(string(i18n), want) {
					t.Errorf("i18n.js lacks %s", want)
				}
			}
		})
	}
}
