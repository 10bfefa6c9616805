package store_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/store/storetest"
	"github.com/it0/it0/internal/tenant"
)

// TestAuditAnchorDetectsTruncation: deleting the newest rows of a chain leaves rows that link up, so only
// the anchored head, kept outside the table with a MAC no row carries, shows they are gone.
func TestAuditAnchorDetectsTruncation(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{3}, 32)
	for _, be := range storetest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			t.Parallel()
			db := be.Open(t)
			tn := storetest.NewTenant(t, db, "anchor")
			log, err := audit.New(db, key, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, chain := range []string{tn.ID, tenant.Platform} {
				ctx := tenant.WithID(context.Background(), chain)
				for i := range 5 {
					if _, err := log.Record(ctx, audit.Record{Action: "test.step", Description: fmt.Sprint(i)}); err != nil {
						t.Fatal(err)
					}
				}
				res, err := log.Verify(ctx)
				if err != nil || !res.OK || res.AnchoredSeq < 5 || res.AnchoredSeq != res.Checked {
					t.Fatalf("%s intact: %+v %v", chain, res, err)
				}
				n := res.Checked
				// Ensure deleting the newest two rows is detected.
				if err := db.TamperAuditForTest(ctx, fmt.Sprintf(`DELETE FROM audit_logs WHERE seq > %d`, n-2)); err != nil {
					t.Fatal(err)
				}
				res, err = log.Verify(ctx)
				if err != nil || res.OK || !strings.Contains(res.Reason, "newest rows were deleted") || res.Checked != n-2 {
					t.Errorf("%s truncated: %+v %v", chain, res, err)
				}
				// Ensure pointing the head at the new last row without the key is detected too.
				if err := db.ExecTenantForTest(ctx, fmt.Sprintf(`UPDATE audit_heads SET seq = %d, hash = (SELECT hash FROM audit_logs WHERE seq = %d)`, n-2, n-2)); err != nil {
					t.Fatal(err)
				}
				res, err = log.Verify(ctx)
				if err != nil || res.OK || !strings.Contains(res.Reason, "anchored head does not match its MAC") {
					t.Errorf("%s forged head: %+v %v", chain, res, err)
				}
			}
		})
	}
}
