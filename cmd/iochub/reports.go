package main

import (
	"encoding/hex"
	"fmt"
	"path/filepath"

	"github.com/iochub/iochub/internal/seal"
)

// sealKey is the parsed SealKey; nil when none is set.
func (c config) sealKey() ([]byte, error) {
	if c.SealKey == "" {
		return nil, nil
	}
	k, err := seal.ParseKey(c.SealKey)
	if err != nil {
		return nil, fmt.Errorf("--seal-key: %w", err)
	}
	return k, nil
}

// devSealKey keeps dev's seal key in dataDir/seal.key, made on first start,
// unless one is configured.
func (c *config) devSealKey(dataDir string) error {
	if c.SealKey != "" {
		return nil
	}
	k, err := seal.LoadOrCreateKeyFile(filepath.Join(dataDir, "seal.key"))
	if err != nil {
		return err
	}
	c.SealKey = hex.EncodeToString(k)
	return nil
}
