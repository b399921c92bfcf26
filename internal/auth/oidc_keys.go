package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
)

// keySet holds the provider's signing keys for go-oidc's verifier.
//
// go-oidc's RemoteKeySet fetches the key set whenever a signature fails
// against its cached keys, so each forged token an unauthenticated client
// sent cost the gateway a request to the provider. keySet fetches only
//   - when its keys are older than maxAge, so that a key the provider removed
//     stops verifying within it, and
//   - when a token names a key id it does not know (the provider rotated its
//     keys), or names none and no cached key verifies it,
//
// and never twice within minRefresh, whatever tokens arrive: a new key is
// picked up at most minRefresh after the previous fetch. A token whose key id
// is known but whose signature does not verify is refused without a fetch. A
// failed fetch keeps the keys fetched before (and counts as a fetch), so a
// provider that is down does not end every sign-in at once.
type keySet struct {
	url    string
	client *http.Client
	now    func() time.Time
	log    *slog.Logger
	// minRefresh is the least time between two fetches.
	minRefresh time.Duration
	// maxAge is how long fetched keys are used before they are fetched again.
	maxAge time.Duration

	mu       sync.Mutex
	keys     []jose.JSONWebKey
	fetched  time.Time     // when the last fetch started, whether it succeeded or not
	current  time.Time     // when the fetch that gave keys started
	failed   error         // why the last fetch failed; nil when it did not
	inflight chan struct{} // closed when the fetch under way ends; nil when none is
}

const (
	// keysMinRefresh is keySet.minRefresh: the rate a forged token can make the gateway fetch at.
	keysMinRefresh = 30 * time.Second
	// keysMaxAge is keySet.maxAge: the longest a key removed by the provider still verifies.
	keysMaxAge = 10 * time.Minute
)

// signingAlgs are the algorithms a key set verifies; the verifier has already
// checked a token's against OIDCConfig.Algorithms. No HMAC: a public key is no secret.
var signingAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

var _ oidc.KeySet = (*keySet)(nil)

func newKeySet(url string, client *http.Client, now func() time.Time, log *slog.Logger) *keySet {
	return &keySet{url: url, client: client, now: now, log: log, minRefresh: keysMinRefresh, maxAge: keysMaxAge}
}

// VerifySignature returns the payload of jwt when one of the provider's keys
// verifies its signature (oidc.KeySet).
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	jws, err := jose.ParseSigned(jwt, signingAlgs)
	if err != nil {
		return nil, fmt.Errorf("malformed JWT: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("a JWT with %d signatures; want 1", len(jws.Signatures))
	}
	kid := jws.Signatures[0].Header.KeyID
	k.refresh(ctx, false)
	payload, known, err := k.verify(jws, kid)
	if err == nil || known {
		return payload, err
	}
	k.refresh(ctx, true)
	payload, _, err = k.verify(jws, kid)
	return payload, err
}

// verify checks jws against the cached keys of id kid (all of them when kid
// is empty); known reports whether a key of that id is cached.
func (k *keySet) verify(jws *jose.JSONWebSignature, kid string) (payload []byte, known bool, err error) {
	k.mu.Lock()
	keys, failed := k.keys, k.failed // keys are replaced, never changed in place
	k.mu.Unlock()
	for i := range keys {
		if kid != "" && keys[i].KeyID != kid {
			continue
		}
		known = kid != ""
		if payload, err := jws.Verify(&keys[i]); err == nil {
			return payload, true, nil
		}
	}
	if known {
		return nil, true, fmt.Errorf("the signature does not verify with the provider's key %q", kid)
	}
	if failed != nil {
		return nil, false, fmt.Errorf("no key of the provider verifies the signature (key id %q); the last fetch of its keys failed: %w", kid, failed)
	}
	return nil, false, fmt.Errorf("no key of the provider verifies the signature (key id %q)", kid)
}

// refresh fetches the key set when the cached keys are older than maxAge or,
// with unknownKey, at all, unless the last fetch started within minRefresh;
// it waits for the fetch (its own or one under way) until ctx ends.
func (k *keySet) refresh(ctx context.Context, unknownKey bool) {
	k.mu.Lock()
	now := k.now()
	if !unknownKey && now.Sub(k.current) < k.maxAge {
		k.mu.Unlock()
		return
	}
	done := k.inflight
	if done == nil {
		if now.Sub(k.fetched) < k.minRefresh {
			k.mu.Unlock()
			return
		}
		done = make(chan struct{})
		k.inflight, k.fetched = done, now
		// Not under ctx: a request that gives up does not end the fetch others wait for.
		go k.fetch(done, now)
	}
	k.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// fetch gets the key set started at, keeps it, and closes done.
func (k *keySet) fetch(done chan struct{}, started time.Time) {
	keys, err := k.get()
	k.mu.Lock()
	k.failed = err
	if err != nil {
		k.log.Warn("fetching the OIDC key set failed; keeping the keys fetched before", "err", err, "keys", len(k.keys))
	} else {
		k.keys, k.current = keys, started
	}
	k.inflight = nil
	k.mu.Unlock()
	close(done)
}

// get fetches the key set. Keys of a type or curve go-jose does not know are
// skipped, as RFC 7517 §5 asks; a set of none but such keys is an error.
func (k *keySet) get() ([]jose.JSONWebKey, error) {
	// The client's timeout bounds the request; no context is needed for that.
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, k.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching the key set at %s: %w", k.url, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching the key set at %s: %w", k.url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body) // at most maxProviderBody: providerClient
	if err != nil {
		return nil, fmt.Errorf("reading the key set at %s: %w", k.url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetching the key set at %s: %s", k.url, resp.Status)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("reading the key set at %s: %w", k.url, err)
	}
	keys := make([]jose.JSONWebKey, 0, len(set.Keys))
	var skipped error
	for _, raw := range set.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(raw); err != nil {
			skipped = err
			continue
		}
		if key.Use != "enc" {
			keys = append(keys, key)
		}
	}
	switch {
	case len(keys) > 0:
		return keys, nil
	case skipped != nil:
		return nil, fmt.Errorf("the key set at %s holds no usable signing key: %w", k.url, skipped)
	}
	return nil, fmt.Errorf("the key set at %s holds no signing key", k.url)
}
