package deploy

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// --- the Dockerfile ---

type dockerfile struct {
	stages     []string          // stage names (or "#<n>" when unnamed), in order
	built      map[string]string // go build output path → package, e.g. /out/iochub → ./cmd/iochub
	installed  map[string]string // binary path in the final image → the build output it was copied from
	copied     []string          // sources of COPY without --from (repository paths)
	entrypoint []string          // final stage's ENTRYPOINT (exec form)
	cmd        []string          // final stage's CMD (exec form)
	user       string            // final stage's USER
}

var goBuildRE = regexp.MustCompile(`go build\b[^&;]*?-o\s+(\S+)\s+(\./cmd/\S+)`)

func parseDockerfile(text string) (dockerfile, error) {
	df := dockerfile{built: map[string]string{}, installed: map[string]string{}}
	text = strings.ReplaceAll(text, "\\\n", " ")
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			f := strings.Fields(rest)
			name := fmt.Sprintf("#%d", len(df.stages))
			if len(f) >= 3 && strings.EqualFold(f[1], "AS") {
				name = f[2]
			}
			df.stages = append(df.stages, name)
			// A new stage starts: what the final image holds is what the last stage sets.
			df.installed = map[string]string{}
			df.entrypoint, df.cmd, df.user = nil, nil, ""
		case "RUN":
			for _, m := range goBuildRE.FindAllStringSubmatch(rest, -1) {
				df.built[m[1]] = m[2]
			}
		case "COPY":
			f := strings.Fields(rest)
			from := ""
			for len(f) > 0 && strings.HasPrefix(f[0], "--") {
				if v, ok := strings.CutPrefix(f[0], "--from="); ok {
					from = v
				}
				f = f[1:]
			}
			if len(f) < 2 {
				return df, fmt.Errorf("line %d: COPY needs a source and a destination: %q", i+1, line)
			}
			srcs, dst := f[:len(f)-1], f[len(f)-1]
			for _, src := range srcs {
				if from == "" {
					df.copied = append(df.copied, src)
					continue
				}
				target := dst
				if strings.HasSuffix(dst, "/") {
					target = dst + path.Base(src)
				}
				df.installed[target] = src
			}
		case "ENTRYPOINT", "CMD":
			var l []string
			if err := json.Unmarshal([]byte(rest), &l); err != nil {
				return df, fmt.Errorf("line %d: %s must use the exec form [\"...\"]: %q", i+1, instr, line)
			}
			if strings.EqualFold(instr, "ENTRYPOINT") {
				df.entrypoint = l
			} else {
				df.cmd = l
			}
		case "USER":
			df.user = rest
		}
	}
	return df, nil
}

func checkDockerfile(root string, df dockerfile) []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(df.stages) < 2 {
		bad("Dockerfile has %d FROM stages; want a multi-stage build (≥ 2)", len(df.stages))
	}
	if df.user == "" || df.user == "root" || df.user == "0" || strings.HasPrefix(df.user, "root:") || strings.HasPrefix(df.user, "0:") {
		bad("Dockerfile's final stage runs as %q; want a non-root USER", df.user)
	}
	for out, pkg := range df.built {
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(pkg))); err != nil {
			bad("Dockerfile builds %s from %s, which does not exist", out, pkg)
		}
	}
	for _, want := range []string{"iochub", "iocsim"} {
		found := false
		for dst, src := range df.installed {
			if path.Base(dst) == want && df.built[src] == "./cmd/"+want {
				found = true
			}
		}
		if !found {
			bad("Dockerfile's final image lacks %s built from ./cmd/%s", want, want)
		}
	}
	for _, src := range df.copied {
		if src == "." || strings.HasSuffix(src, "/") && src != "web/" {
			continue
		}
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(src))); err != nil {
			bad("Dockerfile copies %s, which does not exist in the repository", src)
		}
	}
	return errs
}

func loadDockerfile(t *testing.T) dockerfile {
	t.Helper()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df, err := parseDockerfile(string(b))
	if err != nil {
		t.Fatalf("parsing deploy/Dockerfile: %v", err)
	}
	return df
}

func TestDockerfile(t *testing.T) {
	df := loadDockerfile(t)
	for _, err := range checkDockerfile(repoRoot, df) {
		t.Error(err)
	}
}

func TestDockerfileChecksCatch(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"single stage", "FROM golang:1.26\nRUN go build -o /out/iochub ./cmd/iochub\nUSER nobody\n", "FROM stages"},
		{"root", "FROM golang:1.26 AS build\nRUN go build -o /out/iochub ./cmd/iochub && go build -o /out/iocsim ./cmd/iocsim\nFROM scratch\nCOPY --from=build /out/iochub /usr/local/bin/iochub\nCOPY --from=build /out/iocsim /usr/local/bin/iocsim\n", "non-root"},
		{"binary not built", "FROM golang:1.26 AS build\nRUN go build -o /out/iochub ./cmd/iochub\nFROM scratch\nCOPY --from=build /out/iochub /usr/local/bin/iochub\nCOPY --from=build /out/iocsim /usr/local/bin/iocsim\nUSER 65532\n", "lacks iocsim"},
		{"missing package", "FROM golang:1.26 AS build\nRUN go build -o /out/x ./cmd/nosuch\nFROM scratch\nUSER 65532\n", "does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			df, err := parseDockerfile(tt.text)
			if err != nil {
				t.Fatal(err)
			}
			if errs := checkDockerfile(repoRoot, df); !strings.Contains(errors.Join(errs...).Error()+" ", tt.want) {
				t.Errorf("errors %v; want one containing %q", errs, tt.want)
			}
		})
	}
}
