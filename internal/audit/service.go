package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/it0/it0/internal/tenant"
)

// Store is what the audit log needs from storage. Every method acts on the tenant in ctx (tenant.Platform
// for the platform chain).
type Store interface {
	// AuditAppend appends e to the chain, setting Seq, PrevHash and Hash (computed by sum) and ID, and in
	// the same transaction moves the chain's head to e with the MAC headMAC computes.
	AuditAppend(ctx context.Context, e *Entry, sum func(prev []byte, e *Entry) []byte, headMAC func(seq int64, hash []byte) []byte) error
	// AuditHead returns the chain's head, or nil when nothing anchored it yet.
	AuditHead(ctx context.Context) (*Head, error)
	// AuditList returns entries matching f, newest first.
	AuditList(ctx context.Context, f Filter) ([]Entry, error)
	// AuditScan calls fn for every entry in chain order.
	AuditScan(ctx context.Context, fn func(*Entry) error) error
}

// Filter narrows an audit query. BeforeSeq is the pagination cursor: entries with a smaller seq.
type Filter struct {
	ActionType   string
	ActorID      string
	ResourceType string
	ResourceID   string
	Since, Until time.Time
	BeforeSeq    int64
	Limit        int
}

// Record is what a caller wants to log; the actor, tenant and time come from the context and the clock.
type Record struct {
	Action       string
	ResourceType string
	ResourceID   string
	Description  string
	Detail       any // marshalled to JSON; must not hold secrets
}

// Log appends records and verifies chains.
type Log struct {
	store Store
	key   []byte
	now   func() time.Time
}

// New returns a Log signing with key (at least 32 bytes). now may be nil.
func New(store Store, key []byte, now func() time.Time) (*Log, error) {
	if len(key) < 32 {
		return nil, errors.New("audit key must be at least 32 bytes")
	}
	if now == nil {
		now = time.Now
	}
	return &Log{store: store, key: key, now: now}, nil
}

// Entry returns r as Record would append it in the tenant in ctx (actor from ctx, time from the clock),
// not yet sealed nor stored: for a store that appends entries itself, in the transaction of the change
// they record, sealing them with Sum and HeadMAC.
func (l *Log) Entry(ctx context.Context, r Record) (*Entry, error) {
	e, err := l.entry(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("audit %s: %w", r.Action, err)
	}
	return e, nil
}

// Sum is the chain MAC of e after prev, with the log's key (see Sum).
func (l *Log) Sum(prev []byte, e *Entry) []byte { return Sum(l.key, prev, e) }

// HeadMAC is the MAC of chain's head at seq, with the log's key (see HeadMAC).
func (l *Log) HeadMAC(chain string, seq int64, hash []byte) []byte {
	return HeadMAC(l.key, chain, seq, hash)
}

// Record appends r to the chain of the tenant in ctx.
func (l *Log) Record(ctx context.Context, r Record) (*Entry, error) {
	e, err := l.entry(ctx, r)
	if err != nil {
		return nil, fmt.Errorf("audit detail: %w", err)
	}
	err = l.store.AuditAppend(ctx, e, func(prev []byte, e *Entry) []byte { return Sum(l.key, prev, e) },
		func(seq int64, hash []byte) []byte { return HeadMAC(l.key, e.TenantID, seq, hash) })
	if err != nil {
		return nil, fmt.Errorf("audit %s: %w", r.Action, err)
	}
	return e, nil
}

func (l *Log) entry(ctx context.Context, r Record) (*Entry, error) {
	a := ActorFrom(ctx)
	e := &Entry{
		ActionType:   r.Action,
		ActorType:    a.Type,
		ActorID:      a.ID,
		ResourceType: r.ResourceType,
		ResourceID:   r.ResourceID,
		Description:  r.Description,
		IPAddress:    a.IP,
		RequestID:    a.RequestID,
		// Microseconds: what PostgreSQL keeps, so the MAC covers exactly what is stored.
		CreatedAt: l.now().UTC().Truncate(time.Microsecond),
	}
	if r.Detail != nil {
		b, err := json.Marshal(r.Detail)
		if err != nil {
			return nil, err
		}
		e.Detail = b
	}
	return e, nil
}

// RecordPlatform appends r to the platform chain (tenant lifecycle, unmatched logins). tenantID, if set,
// names the tenant concerned in the entry's detail.
func (l *Log) RecordPlatform(ctx context.Context, r Record) (*Entry, error) {
	return l.Record(tenant.WithID(ctx, tenant.Platform), r)
}

// List returns entries of the tenant in ctx.
func (l *Log) List(ctx context.Context, f Filter) ([]Entry, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	return l.store.AuditList(ctx, f)
}

// VerifyResult is the outcome of checking a chain.
type VerifyResult struct {
	OK         bool   `json:"ok"`
	Checked    int64  `json:"checked"`
	FirstBadID int64  `json:"first_bad_id,omitempty"`
	FirstBad   int64  `json:"first_bad_seq,omitempty"`
	Reason     string `json:"reason,omitempty"`
	// AnchoredSeq is the seq of the chain's anchored head (0: no head yet, a chain written before anchors).
	AnchoredSeq int64 `json:"anchored_seq"`
}

// Verify walks the chain of the tenant in ctx and reports the first row that does not follow from the one
// before it: an edited row fails its own MAC, a deleted row breaks the next row's link, a reordered row
// breaks the sequence. Then it checks the chain reaches its anchored head: deleting the newest rows leaves
// a chain that is consistent in itself but shorter than its head.
func (l *Log) Verify(ctx context.Context) (VerifyResult, error) {
	var res VerifyResult
	// The head is read before the rows: appends that land during the scan only move the head further than
	// what was read, never make an intact chain look short.
	head, err := l.store.AuditHead(ctx)
	if err != nil {
		return res, fmt.Errorf("verify audit: %w", err)
	}
	var headHash []byte
	var prev []byte
	var want int64 = 1
	errStop := errors.New("stop")
	err = l.store.AuditScan(ctx, func(e *Entry) error {
		reason := ""
		switch {
		case e.Seq != want:
			reason = fmt.Sprintf("sequence %d where %d was expected (a row was deleted or reordered)", e.Seq, want)
		case !bytes.Equal(e.PrevHash, prev) && !(len(prev) == 0 && len(e.PrevHash) == 0):
			reason = "link to the previous row does not match (a row before it was deleted, edited or reordered)"
		case !bytes.Equal(e.Hash, Sum(l.key, e.PrevHash, e)):
			reason = "content does not match its MAC (the row was edited, or the audit key is wrong)"
		}
		if reason != "" {
			res.FirstBadID, res.FirstBad, res.Reason = e.ID, e.Seq, reason
			return errStop
		}
		res.Checked++
		prev = append(prev[:0], e.Hash...)
		if head != nil && e.Seq == head.Seq {
			headHash = bytes.Clone(e.Hash)
		}
		want++
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return res, fmt.Errorf("verify audit: %w", err)
	}
	if head != nil && res.Reason == "" {
		res.AnchoredSeq = head.Seq
		chain, _ := tenant.ID(ctx)
		switch {
		case !hmac.Equal(head.MAC, HeadMAC(l.key, chain, head.Seq, head.Hash)):
			res.Reason = "the chain's anchored head does not match its MAC (it was edited, or the audit key is wrong)"
		case headHash == nil:
			res.FirstBad = res.Checked + 1
			res.Reason = fmt.Sprintf("the chain ends at seq %d but its anchored head is seq %d (the newest rows were deleted)",
				res.Checked, head.Seq)
		case !bytes.Equal(headHash, head.Hash):
			res.FirstBad = head.Seq
			res.Reason = fmt.Sprintf("row seq %d is not the row its anchored head names (rows were replaced)", head.Seq)
		}
	}
	res.OK = res.FirstBadID == 0 && res.Reason == ""
	return res, nil
}

// Export writes the chain of the tenant in ctx as JSON Lines, oldest first.
func (l *Log) Export(ctx context.Context, w io.Writer) error {
	enc := json.NewEncoder(w)
	return l.store.AuditScan(ctx, func(e *Entry) error { return enc.Encode(e) })
}
