// Package audit is IT0's append-only, tamper-evident log. Each entry carries an HMAC-SHA256 over its content
// and the previous entry's MAC, so editing, deleting or reordering any row breaks the chain at that row.
package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Actor types.
const (
	ActorUser   = "user"
	ActorAgent  = "agent"
	ActorSystem = "system"
	ActorAPIKey = "api_key"
)

// Entry is one audit_logs row.
type Entry struct {
	ID           int64           `json:"id"`
	Seq          int64           `json:"seq"` // position in its chain, 1-based, consecutive
	TenantID     string          `json:"tenant_id"`
	ActionType   string          `json:"action_type"`
	ActorType    string          `json:"actor_type"`
	ActorID      string          `json:"actor_id"`
	ResourceType string          `json:"resource_type"`
	ResourceID   string          `json:"resource_id"`
	Description  string          `json:"description"`
	Detail       json.RawMessage `json:"detail,omitempty"`
	IPAddress    string          `json:"ip_address,omitempty"`
	RequestID    string          `json:"request_id,omitempty"`
	CreatedAt    time.Time       `json:"created_at"`
	PrevHash     []byte          `json:"prev_hash"`
	Hash         []byte          `json:"hash"`
}

// Sum computes the chain MAC of e given the previous entry's MAC. It covers every stored field except ID
// (assigned by the database) and Hash itself. Fields are length-prefixed so no two entries share an input.
func Sum(key []byte, prev []byte, e *Entry) []byte {
	m := hmac.New(sha256.New, key)
	var n [8]byte
	put := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		m.Write(n[:])
		m.Write(b)
	}
	binary.BigEndian.PutUint64(n[:], uint64(e.Seq))
	m.Write(n[:])
	put(prev)
	for _, s := range []string{e.TenantID, e.ActionType, e.ActorType, e.ActorID, e.ResourceType, e.ResourceID,
		e.Description, e.IPAddress, e.RequestID} {
		put([]byte(s))
	}
	put(e.Detail)
	binary.BigEndian.PutUint64(n[:], uint64(e.CreatedAt.UTC().UnixMicro()))
	m.Write(n[:])
	return m.Sum(nil)
}

// Head anchors a chain: its newest entry's seq and MAC, with a MAC of its own over the chain id, seq and
// hash. No audit row carries that MAC, so a head for an older row (after deleting the newest ones) cannot
// be made without the key.
type Head struct {
	Chain     string    `json:"chain"`
	Seq       int64     `json:"seq"`
	Hash      []byte    `json:"hash"`
	MAC       []byte    `json:"mac"`
	UpdatedAt time.Time `json:"updated_at"`
}

// HeadMAC computes the MAC of a chain's head.
func HeadMAC(key []byte, chain string, seq int64, hash []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("it0 audit head v1\x00"))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(chain)))
	m.Write(n[:])
	m.Write([]byte(chain))
	binary.BigEndian.PutUint64(n[:], uint64(seq))
	m.Write(n[:])
	m.Write(hash)
	return m.Sum(nil)
}

// KeyFingerprint names a key without revealing it: the first 8 bytes of an HMAC of a fixed label, in hex.
// `it0 audit verify` prints it so an operator can tell which key checked the chains.
func KeyFingerprint(key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("it0 audit key fingerprint v1"))
	return hex.EncodeToString(m.Sum(nil)[:8])
}

// Actor is who did something, carried in the context so every layer can record it.
type Actor struct {
	Type      string
	ID        string
	IP        string
	RequestID string
}

type actorKey struct{}

type authorityKey struct{}

// WithAuthority returns ctx naming the approval or rule that allows what is done in it ("approval <id>
// approved by <who>"), for the audit entry written before a command runs.
func WithAuthority(ctx context.Context, by string) context.Context {
	return context.WithValue(ctx, authorityKey{}, by)
}

// AuthorityFrom returns the authority in ctx, or "".
func AuthorityFrom(ctx context.Context) string {
	by, _ := ctx.Value(authorityKey{}).(string)
	return by
}

// WithActor returns ctx carrying a.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFrom returns the actor in ctx, or the system actor.
func ActorFrom(ctx context.Context) Actor {
	if a, ok := ctx.Value(actorKey{}).(Actor); ok {
		return a
	}
	return Actor{Type: ActorSystem, ID: "it0"}
}
