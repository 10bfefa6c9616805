package store_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// TestAuditHeadAcrossWriters: on SQLite a process keeps its chain's head in memory. When another process
// appends to the same file meanwhile (an `it0 vault rotate` next to the server), the next append notices,
// reads the head again, and the chain stays intact.
func TestAuditHeadAcrossWriters(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open := func() *store.DB {
		db, err := store.Open(context.Background(), store.Config{DataDir: dir})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	one, two := open(), open()
	tn := storetest.NewTenant(t, one, "head")
	ctx := tenant.WithID(context.Background(), tn.ID)
	key := bytes.Repeat([]byte{7}, 32)
	logOne, _ := audit.New(one, key, nil)
	logTwo, _ := audit.New(two, key, nil)
	for i, l := range []*audit.Log{logOne, logOne, logTwo, logTwo, logOne, logTwo, logOne} {
		e, err := l.Record(ctx, audit.Record{Action: "test.append", ResourceType: "test", Description: "append"})
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if e.Seq < int64(i+1) {
			t.Fatalf("append %d got seq %d", i, e.Seq)
		}
	}
	res, err := logOne.Verify(ctx)
	if err != nil || !res.OK || res.Checked < 7 {
		t.Fatalf("chain after two writers: %+v %v", res, err)
	}
}
