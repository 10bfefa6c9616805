package audit

import (
	"bytes"
	"testing"
	"time"
)

func TestSumCoversEveryField(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{1}, 32)
	base := Entry{Seq: 1, TenantID: "t", ActionType: "a", ActorType: "user", ActorID: "u", ResourceType: "r", ResourceID: "1",
		Description: "d", Detail: []byte(`{"x":1}`), IPAddress: "127.0.0.1", RequestID: "req", CreatedAt: time.Unix(100, 0)}
	want := Sum(key, []byte("prev"), &base)
	edits := map[string]func(e *Entry){
		"seq": func(e *Entry) { e.Seq = 2 }, "tenant": func(e *Entry) { e.TenantID = "u" }, "action": func(e *Entry) { e.ActionType = "b" },
		"actor_type": func(e *Entry) { e.ActorType = "agent" }, "actor": func(e *Entry) { e.ActorID = "v" },
		"resource_type": func(e *Entry) { e.ResourceType = "s" }, "resource": func(e *Entry) { e.ResourceID = "2" },
		"description": func(e *Entry) { e.Description = "e" }, "detail": func(e *Entry) { e.Detail = []byte(`{"x":2}`) },
		"ip": func(e *Entry) { e.IPAddress = "::1" }, "request": func(e *Entry) { e.RequestID = "r2" },
		"time": func(e *Entry) { e.CreatedAt = e.CreatedAt.Add(time.Microsecond) },
		// Moving bytes between adjacent fields must change the MAC too (length prefixes).
		"shift": func(e *Entry) { e.ResourceType, e.ResourceID = "r1", "" },
	}
	for name, edit := range edits {
		e := base
		edit(&e)
		if bytes.Equal(Sum(key, []byte("prev"), &e), want) {
			t.Errorf("editing %s does not change the MAC", name)
		}
	}
	if bytes.Equal(Sum(key, []byte("other"), &base), want) || bytes.Equal(Sum(bytes.Repeat([]byte{2}, 32), []byte("prev"), &base), want) {
		t.Error("MAC ignores the previous link or the key")
	}
	e := base
	e.ID = 99
	if !bytes.Equal(Sum(key, []byte("prev"), &e), want) {
		t.Error("the database id must not be covered (it is assigned on insert)")
	}
}
