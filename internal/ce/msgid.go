package ce

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"sync"
)

// The hub's FEEDS drops a message whose Nats-Msg-Id it holds within its
// duplicate window, and it checks the ids of the items it sources from the
// edges too. Were a message id the plain "<source>/<kind>/<event id>"
// (FeedMsgID), an edge, whose FEEDS anyone holding its machine can write,
// could send an item under another source's coming id, and the real item,
// arriving later, would be answered duplicate and never stored. So every id
// the hub puts on FEEDS is a MAC of that plain id under a key of its own
// (MsgIDKey), which no edge can read: the same item gets the same id at
// every ingest of one hub (a resend is still a duplicate), and nobody
// without the key can make an id that pre-empts one.

// MsgIDKeySize is the size of a MsgIDKey's secret, in bytes.
const MsgIDKeySize = 32

// KeyedMsgIDLen is the length of a keyed message id: 128 bits of
// HMAC-SHA256, base64url without padding.
const KeyedMsgIDLen = 22

// macBytes is how much of the HMAC a keyed id keeps.
const macBytes = 16

// MsgIDKey makes keyed message ids; safe for concurrent use.
type MsgIDKey struct {
	pool sync.Pool // of *macState
}

// macState is one HMAC with the buffers of one id, reused: an id costs the
// allocation of its string only.
type macState struct {
	h   hash.Hash
	buf []byte
	sum [sha256.Size]byte
}

// NewMsgIDKey makes the ids of the secret key, MsgIDKeySize bytes.
func NewMsgIDKey(key []byte) (*MsgIDKey, error) {
	if len(key) != MsgIDKeySize {
		return nil, fmt.Errorf("message id key is %d bytes; want %d", len(key), MsgIDKeySize)
	}
	key = append([]byte(nil), key...)
	k := &MsgIDKey{}
	k.pool.New = func() any { return &macState{h: hmac.New(sha256.New, key), buf: make([]byte, 0, 256)} }
	return k, nil
}

// ID is the keyed message id of the plain id, KeyedMsgIDLen characters of
// the base64url alphabet.
func (k *MsgIDKey) ID(plain string) string { return k.mac(plain, "", "", false) }

// FeedID is ID(FeedMsgID(sourceID, kind, eventID)), without building the
// plain id.
func (k *MsgIDKey) FeedID(sourceID, kind, eventID string) string {
	return k.mac(sourceID, kind, eventID, true)
}

// mac is the keyed id of a, or of a/b/c when joined (whatever b and c are:
// an empty kind must not make FeedID the id of the source alone).
func (k *MsgIDKey) mac(a, b, c string, joined bool) string {
	st := k.pool.Get().(*macState) // the pool holds nothing else
	buf := append(st.buf[:0], a...)
	if joined {
		buf = append(append(append(append(buf, '/'), b...), '/'), c...)
	}
	st.h.Reset()
	st.h.Write(buf)
	sum := st.h.Sum(st.sum[:0])
	var out [KeyedMsgIDLen]byte
	base64.RawURLEncoding.Encode(out[:], sum[:macBytes])
	if cap(buf) <= 4096 { // one huge id does not keep its buffer
		st.buf = buf
	}
	k.pool.Put(st)
	return string(out[:])
}
