package edge

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
)

// HubTLS is the TLS of the edge's leaf connection to hubs
// (NodeConfig.HubTLS). With caFile, the PEM certificates of the CA that
// signed the hub's leaf-node certificate (provincial hubs rarely have a
// public one), the edge trusts that CA only, and requires TLS of every hub
// URL whatever its scheme. Without it, a tls:// URL requires TLS verified
// against the system's roots; nil, when there is neither, leaves TLS to the
// hub's asking (deploy/nats/hub.conf does), so the edge cannot refuse a
// hub, or a man in the middle, that speaks clear text.
func HubTLS(hubs []*url.URL, caFile string) (*tls.Config, error) {
	if caFile != "" {
		pool, err := readCAFile(caFile)
		if err != nil {
			return nil, err
		}
		return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}, nil
	}
	for _, u := range hubs {
		if u.Scheme == "tls" {
			return &tls.Config{MinVersion: tls.VersionTLS12}, nil
		}
	}
	return nil, nil
}

// readCAFile reads the PEM certificates of file into a pool. It refuses a
// file with no certificate, or with one that does not parse, so that a
// wrong file (the hub's key, a DER file) stops the edge at its start instead
// of leaving it retrying a hub it can never verify.
func readCAFile(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file) //nolint:gosec // the operator names the file (--hub-ca)
	if err != nil {
		return nil, fmt.Errorf("reading the hub's CA: %w", err)
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := data; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("the hub's CA %s: certificate %d: %w", file, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("the hub's CA %s: %w", file, ErrNoCACert)
	}
	return pool, nil
}

// ErrNoCACert is returned by readCAFile for a file without a PEM
// certificate ("-----BEGIN CERTIFICATE-----").
var ErrNoCACert = errors.New("no PEM certificate in it; want the certificate of the CA that signed the hub's leaf-node certificate, in PEM")
