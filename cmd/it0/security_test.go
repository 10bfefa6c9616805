package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var metricsListening = regexp.MustCompile(`"msg":"metrics listening","addr":"([^"]+)"`)

// TestServeHardening runs `it0 serve` on a fresh data dir with IT0_METRICS_ADDR and checks: /metrics is on
// its own listener only, the data dir is owner-only, the audit key next to the data is warned about, and
// `audit verify` names its key and finds the newest rows deleted.
func TestServeHardening(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"IT0_BOOTSTRAP_ADMIN_PASSWORD": "first-password", "IT0_METRICS_ADDR": "127.0.0.1:0"}
	getenv := func(k string) string { return env[k] }
	serr, stop := serveListening(t, dir, getenv)
	logs := serr.String()
	api := listening.FindStringSubmatch(logs)
	met := metricsListening.FindStringSubmatch(logs)
	if api == nil || met == nil {
		t.Fatalf("listen addresses not logged:\n%s", logs)
	}
	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Ensure /metrics moved to its own address and left the API's.
	get("http://" + api[1] + "/healthz")
	if code, body := get("http://" + met[1] + "/metrics"); code != 200 || !strings.Contains(body, "it0_") {
		t.Errorf("metrics listener: %d", code)
	}
	if code, _ := get("http://" + api[1] + "/metrics"); code != 404 {
		t.Errorf("/metrics on the API listener: %d", code)
	}
	if code, _ := get("http://" + met[1] + "/api/v1/auth/me"); code != 404 {
		t.Errorf("the metrics listener serves the API: %d", code)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Ensure the generated audit key is warned about and each chain's head reaches the log.
	for _, want := range []string{`"msg":"audit key next to the data"`, `"msg":"audit head","chain":"_platform"`} {
		if !strings.Contains(serr.String(), want) {
			t.Errorf("log lacks %s", want)
		}
	}

	// Ensure the data dir is owner-only.
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, _ := d.Info()
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			t.Errorf("%s: mode %o, want %o", path, info.Mode().Perm(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Ensure verify names the key it used and warns while it sits in the data dir.
	var out, errOut bytes.Buffer
	if err := run(context.Background(), []string{"audit", "verify", "--data-dir", dir}, getenv, nil, &out, &errOut); err != nil {
		t.Fatalf("verify: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "audit key: "+filepath.Join(dir, "secrets.json")) || !strings.Contains(errOut.String(), "warning: the audit key is kept in") ||
		!strings.Contains(out.String(), "anchored head seq") {
		t.Errorf("verify output:\n%s\n%s", out.String(), errOut.String())
	}
	// With the key in a file outside the data dir, there is nothing to warn about.
	var secrets struct {
		AuditKey string `json:"audit_key"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, "secrets.json"))
	json.Unmarshal(b, &secrets)
	keyFile := filepath.Join(t.TempDir(), "audit.key")
	os.WriteFile(keyFile, []byte(secrets.AuditKey+"\n"), 0o600)
	env["IT0_AUDIT_KEY_FILE"] = keyFile
	out.Reset()
	errOut.Reset()
	if err := run(context.Background(), []string{"audit", "verify", "--data-dir", dir}, getenv, nil, &out, &errOut); err != nil {
		t.Fatalf("verify with key file: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "audit key: "+keyFile) || errOut.Len() != 0 {
		t.Errorf("verify with key file:\n%s\n%s", out.String(), errOut.String())
	}

	// Ensure deleting the newest platform rows is found.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "shared.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"DROP TRIGGER audit_logs_no_delete", "DELETE FROM audit_logs WHERE seq = (SELECT MAX(seq) FROM audit_logs)"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	out.Reset()
	err = run(context.Background(), []string{"audit", "verify", "--data-dir", dir}, getenv, nil, &out, io.Discard)
	if exitCode(err) != 3 || !strings.Contains(out.String(), "newest rows were deleted") {
		t.Errorf("verify truncated chain: exit %d, %v\n%s", exitCode(err), err, out.String())
	}
}
