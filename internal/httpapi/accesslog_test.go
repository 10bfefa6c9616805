package httpapi

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/it0/it0/internal/store/storetest"
)

// Ensure each request writes one access line at info with its request id and tenant, and that an error
// logged while serving it carries the same ids.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	b := setupApp(t, storetest.OpenSQLite)
	const id = "access-log-test-1"
	if r := b.do("GET", "/api/v1/auth/me", b.adminTok, nil, "X-Request-Id", id); r.status != 200 {
		t.Fatalf("me: %d %s", r.status, r.raw)
	}
	b.do("GET", "/healthz", "", nil, "X-Request-Id", "access-log-probe")
	var access, probe map[string]any
	for _, l := range strings.Split(b.logs.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) != nil || m["msg"] != "request" {
			continue
		}
		switch m["request_id"] {
		case id:
			access = m
		case "access-log-probe":
			probe = m
		}
	}
	if access == nil {
		t.Fatalf("no access line for %s in:\n%s", id, b.logs.String())
	}
	if access["level"] != "INFO" || access["tenant_id"] != b.defaultID || access["route"] != "/api/v1/auth/me" ||
		access["status"] != float64(200) {
		t.Errorf("access line: %v", access)
	}
	if probe == nil || probe["level"] != "DEBUG" {
		t.Errorf("probe line (want DEBUG): %v", probe)
	}
}
