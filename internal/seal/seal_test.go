package seal

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func key(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func TestSealOpen(t *testing.T) {
	s, err := New(key(7))
	if err != nil {
		t.Fatal(err)
	}
	pt := []byte(`{"phone":"+84 912 345 678"}`)
	a := s.Seal(pt, []byte("dev/r-1"))
	b := s.Seal(pt, []byte("dev/r-1"))
	if bytes.Equal(a, b) {
		t.Error("two seals of the same value are equal; want fresh nonces")
	}
	if bytes.Contains(a, []byte("912")) {
		t.Error("sealed value contains the plaintext")
	}
	if got, want := len(a), len(pt)+Overhead; got != want {
		t.Errorf("len = %d; want %d", got, want)
	}
	got, err := s.Open(a, []byte("dev/r-1"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, pt) {
		t.Errorf("Open = %q; want %q", got, pt)
	}
}

func TestOpenRefuses(t *testing.T) {
	s, _ := New(key(7))
	other, _ := New(key(8))
	sealed := s.Seal([]byte("secret"), []byte("ad"))
	tampered := bytes.Clone(sealed)
	tampered[len(tampered)-1] ^= 1
	badVersion := bytes.Clone(sealed)
	badVersion[0] = 9
	for _, tc := range []struct {
		name   string
		s      *Sealer
		sealed []byte
		ad     string
	}{
		{"other key", other, sealed, "ad"},
		{"other additional data", s, sealed, "other"},
		{"tampered", s, tampered, "ad"},
		{"unknown version", s, badVersion, "ad"},
		{"too short", s, sealed[:Overhead-1], "ad"},
		{"empty", s, nil, "ad"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.s.Open(tc.sealed, []byte(tc.ad)); !errors.Is(err, ErrSealed) {
				t.Errorf("Open err = %v; want ErrSealed", err)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33} {
		if _, err := New(make([]byte, n)); !errors.Is(err, ErrKey) {
			t.Errorf("New(%d bytes) err = %v; want ErrKey", n, err)
		}
	}
	k := key(3)
	for _, s := range []string{hex.EncodeToString(k), base64.StdEncoding.EncodeToString(k), " " + hex.EncodeToString(k) + "\n"} {
		got, err := ParseKey(s)
		if err != nil || !bytes.Equal(got, k) {
			t.Errorf("ParseKey(%q) = %x, %v; want %x", s, got, err, k)
		}
	}
	for _, s := range []string{"", "abc", hex.EncodeToString(k[:16])} {
		if _, err := ParseKey(s); !errors.Is(err, ErrKey) {
			t.Errorf("ParseKey(%q) err = %v; want ErrKey", s, err)
		}
	}
}

func TestLoadOrCreateKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "seal.key")
	k1, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k1, k2) || len(k1) != KeySize {
		t.Errorf("second load = %x; want the first key %x", k2, k1)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("mode = %v; want 0600", got)
	}
	if err := os.WriteFile(path, []byte("nonsense"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKeyFile(path); !errors.Is(err, ErrKey) {
		t.Errorf("bad file err = %v; want ErrKey", err)
	}
}

func FuzzOpen(f *testing.F) {
	s, _ := New(key(1))
	good := s.Seal([]byte("x"), nil)
	f.Add(good)
	f.Add([]byte{1, 2, 3})
	// Only values Seal made open (the seed, in every worker's own seal of
	// it); anything else is refused with ErrSealed, never a panic.
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := s.Open(b, nil)
		switch {
		case err == nil && string(pt) != "x":
			t.Fatalf("Open = %q; want %q", pt, "x")
		case err != nil && !errors.Is(err, ErrSealed):
			t.Fatalf("Open err = %v; want ErrSealed", err)
		}
	})
}
