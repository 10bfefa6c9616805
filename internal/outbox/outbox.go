// Package outbox makes IT0's domain events durable: a state change that other modules react to (an
// approval requested or decided, …) writes its event into the tenant's outbox table in the same
// transaction, and the Relay publishes outbox rows on the bus and deletes them once published.
//
// Delivery is at least once: a relay that dies between publishing and deleting publishes the rows again.
// Rows of a tenant are published in id order by one relay at a time (a PostgreSQL advisory lock when
// replicas share the database), so a stream sees a tenant's events in the order they were written. A bus
// that is down (Redis restarting) only delays events: the rows stay until a publish succeeds.
package outbox

import (
	"context"
	"encoding/json"
	"time"
)

// Event is one outbox row.
type Event struct {
	ID        int64
	TenantID  string
	Stream    string
	Payload   []byte
	CreatedAt time.Time
}

// Envelope is the JSON every domain event is published as.
type Envelope struct {
	// Type names the fact, e.g. "approval.requested".
	Type     string `json:"type"`
	TenantID string `json:"tenant_id"`
	// Subject is the id of the thing the fact is about (an approval id).
	Subject string          `json:"subject"`
	Time    time.Time       `json:"time"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Streams of domain events.
const (
	// StreamApprovals carries approval.requested and approval.decided.
	StreamApprovals = "events.approvals"
)

// Encode marshals an envelope; data may be nil.
func Encode(typ, tenantID, subject string, at time.Time, data any) ([]byte, error) {
	e := Envelope{Type: typ, TenantID: tenantID, Subject: subject, Time: at}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return nil, err
		}
		e.Data = b
	}
	return json.Marshal(e)
}

// Store is what the relay needs from the database.
type Store interface {
	// OutboxRelay hands up to limit of the oldest outbox rows of the tenant in ctx to publish, in id
	// order, and deletes them if publish returns nil (in one transaction). It returns how many rows it
	// published: 0 when the outbox is empty or another relay holds the tenant.
	OutboxRelay(ctx context.Context, limit int, publish func(ctx context.Context, evs []Event) error) (int, error)
	// OutboxWaiting returns, of the tenants ids, those whose outbox holds rows (a cheap probe: the relay
	// visits only them).
	OutboxWaiting(ctx context.Context, ids []string) ([]string, error)
}
