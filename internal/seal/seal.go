// Package seal owns the hub's sealing of private data (a citizen reporter's
// contact): AES-256-GCM with the hub key, bound to what the data belongs to
// by additional data, so a sealed value moved to another record does not open.
// Only sealed bytes travel on NATS and rest in PostGIS; opening needs the key.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the size of a hub key: 32 bytes (AES-256).
const KeySize = 32

// version is the first byte of every sealed value, naming its format:
// version || 12-byte nonce || AES-GCM ciphertext and tag.
const version byte = 1

// Overhead is how many bytes sealing adds to the plaintext.
const Overhead = 1 + 12 + 16

// Sealer seals and opens values with one key. It is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// New returns a Sealer with key, which must be KeySize bytes.
func New(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal key is %d bytes; want %d: %w", len(key), KeySize, ErrKey)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("building AES cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("building AES-GCM: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext bound to ad (e.g. the id of the record it belongs
// to) with a fresh random nonce. It cannot fail: crypto/rand.Read never
// returns an error (it crashes the program when the system's source fails).
func (s *Sealer) Seal(plaintext, ad []byte) []byte {
	out := make([]byte, 1+s.aead.NonceSize(), Overhead+len(plaintext))
	out[0] = version
	_, _ = rand.Read(out[1:])
	return s.aead.Seal(out, out[1:], plaintext, ad) //nolint:gosec // G407 false positive: the nonce was just read from crypto/rand

}

// Open decrypts a value made by Seal with the same key and ad.
func (s *Sealer) Open(sealed, ad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("sealed value is %d bytes; at least %d: %w", len(sealed), Overhead, ErrSealed)
	}
	if sealed[0] != version {
		return nil, fmt.Errorf("sealed value has version %d; want %d: %w", sealed[0], version, ErrSealed)
	}
	n := 1 + s.aead.NonceSize()
	pt, err := s.aead.Open(nil, sealed[1:n], sealed[n:], ad)
	if err != nil {
		return nil, fmt.Errorf("opening sealed value: %w", ErrSealed)
	}
	return pt, nil
}

// ParseKey reads a key written as 64 hex digits or as standard base64 of 32 bytes.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if b, err := hex.DecodeString(s); err == nil && len(b) == KeySize {
		return b, nil
	}
	if b, err := base64.StdEncoding.DecodeString(s); err == nil && len(b) == KeySize {
		return b, nil
	}
	return nil, fmt.Errorf("seal key is neither 64 hex digits nor base64 of %d bytes: %w", KeySize, ErrKey)
}

// LoadOrCreateKeyFile reads the key in path (as ParseKey reads it), or, when
// the file does not exist, draws a new key and writes it there (mode 0600) in
// hex. For development: production keys come from the configuration.
func LoadOrCreateKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path) //nolint:gosec // G304: the key file the configuration names
	if err == nil {
		k, err := ParseKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("reading seal key file %s: %w", path, err)
		}
		return k, nil
	}
	if !os.IsNotExist(err) {
		return nil, fmt.Errorf("reading seal key file %s: %w", path, err)
	}
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("drawing a seal key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating the directory of %s: %w", path, err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(k)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("writing seal key file %s: %w", path, err)
	}
	return k, nil
}
