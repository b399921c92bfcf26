//go:build ignore

// gen_aqi_bands writes app/aqi_bands.js from internal/aqi; run it with
// go generate ./web.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/iochub/iochub/web"
)

func main() {
	b, err := web.AQIBandsModule()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen_aqi_bands:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(filepath.Join("app", web.AQIBandsFile), b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gen_aqi_bands:", err)
		os.Exit(1)
	}
}
