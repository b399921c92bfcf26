package web

import (
	"bytes"
	"io/fs"
	"testing"
)

// TestAQIBandsFileFresh fails when app/aqi_bands.js, which the wall screen's
// legend, map colours and band names read, no longer says what internal/aqi
// says: run go generate ./web and commit the file.
func TestAQIBandsFileFresh(t *testing.T) {
	want, err := AQIBandsModule()
	if err != nil {
		t.Fatal(err)
	}
	got, err := fs.ReadFile(FS(), AQIBandsFile)
	if err != nil {
		t.Fatalf("%v; run go generate ./web", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("app/%s is stale; run go generate ./web and commit it. Want:\n%s", AQIBandsFile, want)
	}
}
