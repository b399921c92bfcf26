package schema_test

import (
	"context"
	"testing"

	"github.com/iochub/iochub/internal/schema"
	"github.com/iochub/iochub/internal/testenv"
)

// TestOpenWithoutJIT: the writers' pool runs without JIT compilation unless
// its URL asks for it.
func TestOpenWithoutJIT(t *testing.T) {
	db := testenv.PostGIS(t)
	ctx := context.Background()
	for _, c := range []struct{ url, want string }{
		{db.URL, "off"},
		{db.URL + sep(db.URL) + "jit=on", "on"},
	} {
		pool, err := schema.Open(ctx, c.url)
		if err != nil {
			t.Fatal(err)
		}
		var jit string
		err = pool.QueryRow(ctx, "SHOW jit").Scan(&jit)
		pool.Close()
		if err != nil {
			t.Fatal(err)
		}
		if jit != c.want {
			t.Errorf("Open(%s): jit = %s, want %s", c.url, jit, c.want)
		}
	}
}

// sep is what joins one more parameter to url.
func sep(url string) string {
	for _, r := range url {
		if r == '?' {
			return "&"
		}
	}
	return "?"
}
