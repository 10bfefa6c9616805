// Command stack starts everything the console's browser tests need and prints one JSON line saying where:
// a real OpenSSH sshd (inventory/sshtest), a local HTTP server speaking the Anthropic Messages streaming
// wire format as the model, and a real `it0 serve` (the binary given by -it0) on embedded SQLite, seeded
// through its API with the sshd as server web-1 and a viewer. With espeak-ng and pocketsphinx installed the
// server talks (IT0_TTS=espeak, IT0_STT=pocketsphinx). Access tokens live one minute, so that the console's
// refresh and a real expiry happen during the run. It runs until stdin closes or a signal; the line
// "restart" on stdin stops the server and starts it again on the same address and data (a deploy), then
// prints {"restarted":true}.
//
// The model follows a script chosen by a marker in the first user message:
//
//	[l1]    proposes an L1 command on web-1 (tee a marker file); after the result, reports what happened
//	[html]  runs an L0 command whose output is HTML, ANSI colours and 41 lines (escaping, folding)
//	[order] drafts a standing order with create_standing_order; after the result, confirms it
//	[many]  streams 10,000 events (alternating thinking and text blocks), the last text "the last event"
//	[voice] answers one line; each later (spoken) turn gets a reply of many sentences, long enough to be
//	        talked over
//	else    answers with one line of text
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/it0/it0/internal/inventory/sshtest"
)

const (
	modelKey    = "sk-ant-e2e"
	adminEmail  = "admin@e2e.example"
	adminPass   = "admin-password-e2e"
	viewerEmail = "viewer@e2e.example"
	viewerPass  = "viewer-password-e2e"
	// L1Marker is what the approved command prints.
	L1Marker = "it0-e2e-approved"
	// HTMLCommand prints markup that must show as text, a red ANSI span and 40 more lines.
	HTMLCommand = `printf '<img src=x onerror=alert(1)>\033[31mred\033[0m\n'; seq 1 40`
)

// Info is the line printed for the test driver.
type Info struct {
	URL       string `json:"url"`
	Admin     Login  `json:"admin"`
	Viewer    Login  `json:"viewer"`
	Server    string `json:"server"`
	L1Command string `json:"l1_command"`
	L1Marker  string `json:"l1_marker"`
	Voice     bool   `json:"voice"` // the server has speech engines
}

// Login is one user's credentials.
type Login struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	bin := flag.String("it0", "", "path of the it0 binary")
	flag.Parse()
	if *bin == "" {
		return errors.New("-it0 is required")
	}
	dir, err := os.MkdirTemp("", "it0-e2e-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	if err := os.MkdirAll(filepath.Join(dir, "sshd"), 0o700); err != nil {
		return err
	}
	sshd, err := sshtest.Launch(filepath.Join(dir, "sshd"), sshtest.Options{})
	if err != nil {
		return fmt.Errorf("start sshd: %w", err)
	}
	defer sshd.Stop()

	suffix := make([]byte, 4)
	rand.Read(suffix)
	l1 := fmt.Sprintf("echo %s | tee %s", L1Marker, filepath.Join(dir, "marker-"+hex.EncodeToString(suffix)))
	model := httptest.NewServer(modelHandler(l1))
	defer model.Close()

	addr, err := freeAddr()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	_, errTTS := exec.LookPath("espeak-ng")
	_, errSTT := exec.LookPath("pocketsphinx_continuous")
	voice := errTTS == nil && errSTT == nil
	env := append(os.Environ(), "IT0_ADDR="+addr, "IT0_DATA_DIR="+filepath.Join(dir, "data"), "IT0_LOG_LEVEL=warn",
		"IT0_DEFAULT_ENGINE=claude_api", "IT0_ANTHROPIC_API_KEY="+modelKey, "IT0_ANTHROPIC_BASE_URL="+model.URL,
		"IT0_BOOTSTRAP_ADMIN_EMAIL="+adminEmail, "IT0_BOOTSTRAP_ADMIN_PASSWORD="+adminPass, "IT0_DATABASE_URL=", "IT0_REDIS_URL=",
		"IT0_TOKEN_TTL=1m")
	if voice {
		env = append(env, "IT0_TTS=espeak", "IT0_STT=pocketsphinx")
	}
	start := func() (*exec.Cmd, chan error, error) {
		cmd := exec.CommandContext(ctx, *bin, "serve")
		cmd.Env = env
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 10 * time.Second
		if err := cmd.Start(); err != nil {
			return nil, nil, fmt.Errorf("start it0 serve: %w", err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		return cmd, done, nil
	}
	cmd, done, err := start()
	if err != nil {
		return err
	}
	url := "http://" + addr
	if err := waitHealthy(url, done); err != nil {
		return err
	}
	if err := seed(url, sshd); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	b, _ := json.Marshal(Info{URL: url, Admin: Login{adminEmail, adminPass}, Viewer: Login{viewerEmail, viewerPass},
		Server: "web-1", L1Command: l1, L1Marker: L1Marker, Voice: voice})
	fmt.Println(string(b))

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for {
		select {
		case <-ctx.Done():
			<-done
			return nil
		case err := <-done:
			return fmt.Errorf("it0 serve exited: %v", err)
		case l, ok := <-lines:
			if !ok {
				stop()
				<-done
				return nil
			}
			if strings.TrimSpace(l) != "restart" {
				continue
			}
			cmd.Process.Signal(syscall.SIGTERM)
			if err := <-done; err != nil {
				log.Printf("it0 serve stopped for the restart: %v", err)
			}
			if cmd, done, err = start(); err != nil {
				return err
			}
			if err := waitHealthy(url, done); err != nil {
				return err
			}
			fmt.Println(`{"restarted":true}`)
		}
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func waitHealthy(url string, done <-chan error) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-done:
			return fmt.Errorf("it0 serve exited during start: %v", err)
		default:
		}
		if resp, err := http.Get(url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("it0 serve did not become healthy within 60s")
}

// call sends one API request and decodes the answer into out.
func call(url, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func seed(url string, sshd *sshtest.Server) error {
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := call(url, "POST", "/api/v1/auth/login", "", map[string]string{"email": adminEmail, "password": adminPass}, &tok); err != nil {
		return err
	}
	var cred struct{ ID string }
	if err := call(url, "POST", "/api/v1/inventory/credentials", tok.AccessToken, map[string]string{"name": "e2e-key", "type": "ssh_key",
		"username": sshd.User, "secret": sshd.UserKey.Reveal()}, &cred); err != nil {
		return err
	}
	var srv struct{ ID string }
	if err := call(url, "POST", "/api/v1/inventory/servers", tok.AccessToken, map[string]any{"name": "web-1", "host": sshd.Addr, "port": sshd.Port,
		"ssh_user": sshd.User, "credential_id": cred.ID, "environment": "dev", "role": "web", "tags": []string{"e2e"},
		"host_key_policy": "pin", "host_key": sshd.HostKey}, &srv); err != nil {
		return err
	}
	// An hour of samples, so the monitoring page draws its charts (disk: one series per mount).
	var samples []map[string]any
	now := time.Now().UTC()
	for i := 60; i >= 0; i-- {
		at := now.Add(-time.Duration(i) * time.Minute)
		x := float64(i)
		samples = append(samples,
			map[string]any{"server_id": srv.ID, "metric_type": "cpu_usage", "value": 20 + math.Mod(x*7, 30), "collected_at": at},
			map[string]any{"server_id": srv.ID, "metric_type": "memory_usage", "value": 55 + math.Mod(x, 5), "collected_at": at},
			map[string]any{"server_id": srv.ID, "metric_type": "disk_usage", "label": "/", "value": 61 + x/60, "collected_at": at},
			map[string]any{"server_id": srv.ID, "metric_type": "disk_usage", "label": "/var", "value": 80 - x/30, "collected_at": at},
			map[string]any{"server_id": srv.ID, "metric_type": "load_1m", "value": 0.5 + math.Mod(x, 3)/3, "collected_at": at})
	}
	if err := call(url, "POST", "/api/v1/monitor/metrics", tok.AccessToken, map[string]any{"samples": samples}, nil); err != nil {
		return err
	}
	return call(url, "POST", "/api/v1/auth/users", tok.AccessToken, map[string]string{"email": viewerEmail, "password": viewerPass, "role": "viewer"}, nil)
}

// orderDraft is the standing order the model drafts for [order].
var orderDraft = map[string]any{
	"name":    "Nightly disk check",
	"trigger": map[string]any{"type": "cron", "cron_expression": "0 2 * * *", "timezone": "UTC"},
	"targets": map[string]any{"all_servers": true},
	"agent_instructions": map[string]any{"prompt": "Check disk usage on every server and report mounts above 80%.",
		"max_risk_level": 0},
	"decision_boundary": map[string]any{"allowed_actions": []string{"read disk usage"},
		"escalate_conditions": []string{"a mount is above 95%"}},
}

// modelHandler answers POST /v1/messages like the Anthropic Messages API with stream=true.
func modelHandler(l1 string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/messages" || r.Header.Get("x-api-key") != modelKey {
			w.WriteHeader(401)
			fmt.Fprint(w, `{"type":"error","error":{"type":"authentication_error","message":"bad path or key"}}`)
			return
		}
		var req struct {
			Model    string `json:"model"`
			Messages []struct {
				Role    string          `json:"role"`
				Content json.RawMessage `json:"content"`
			} `json:"messages"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Messages) == 0 {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"type":"error","error":{"type":"invalid_request_error","message":"bad body"}}`)
			return
		}
		first := string(req.Messages[0].Content)
		last := string(req.Messages[len(req.Messages)-1].Content)
		results := 0
		for _, m := range req.Messages {
			results += strings.Count(string(m.Content), `"type":"tool_result"`)
		}
		var text, tool string
		var input any
		switch {
		case strings.Contains(first, "[l1]") && results == 0:
			text, tool, input = "I will write the marker file on web-1.", "run_command", map[string]string{"server": "web-1", "command": l1}
		case strings.Contains(first, "[html]") && results == 0:
			text, tool, input = "Printing hostile output.", "run_command", map[string]string{"server": "web-1", "command": HTMLCommand}
		case strings.Contains(first, "[order]") && results == 0:
			text, tool, input = "Here is the standing order I propose.", "create_standing_order", orderDraft
		case strings.Contains(first, "[many]"):
			manyEvents(w)
			return
		case strings.Contains(first, "[voice]") && len(req.Messages) > 1:
			text = voiceReply
		case strings.Contains(first, "[voice]"):
			text = "Ready to talk."
		case results > 0 && strings.Contains(strings.ToLower(last), "reject"):
			text = "Understood: the command was rejected, so I did not run it."
		case results > 0:
			text = "Done: the step finished."
		default:
			text = "Hello from the test model."
		}
		w.Header().Set("Content-Type", "text/event-stream")
		ev := func(name string, data any) {
			b, _ := json.Marshal(data)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", name, b)
		}
		ev("message_start", map[string]any{"type": "message_start", "message": map[string]any{"id": fmt.Sprintf("msg_%d", results),
			"type": "message", "role": "assistant", "model": req.Model, "content": []any{}, "stop_reason": nil,
			"usage": map[string]int{"input_tokens": 50, "output_tokens": 1}}})
		ev("content_block_start", map[string]any{"type": "content_block_start", "index": 0, "content_block": map[string]string{"type": "text", "text": ""}})
		ev("content_block_delta", map[string]any{"type": "content_block_delta", "index": 0, "delta": map[string]string{"type": "text_delta", "text": text}})
		ev("content_block_stop", map[string]any{"type": "content_block_stop", "index": 0})
		stop := "end_turn"
		if tool != "" {
			stop = "tool_use"
			args, _ := json.Marshal(input)
			ev("content_block_start", map[string]any{"type": "content_block_start", "index": 1, "content_block": map[string]any{
				"type": "tool_use", "id": fmt.Sprintf("toolu_%d", time.Now().UnixNano()), "name": tool, "input": map[string]any{}}})
			ev("content_block_delta", map[string]any{"type": "content_block_delta", "index": 1, "delta": map[string]string{"type": "input_json_delta", "partial_json": string(args)}})
			ev("content_block_stop", map[string]any{"type": "content_block_stop", "index": 1})
		}
		ev("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": stop, "stop_sequence": nil},
			"usage": map[string]int{"output_tokens": 20}})
		ev("message_stop", map[string]string{"type": "message_stop"})
	})
}

// voiceReply is long enough (a dozen sentences, about half a minute of speech) that the person's next
// words land while it is being spoken: a barge-in.
var voiceReply = strings.Repeat("I checked the servers one by one and everything looks healthy. ", 6) +
	strings.Repeat("The disks have room, the load is low and no service restarted overnight. ", 6)

// manyEvents answers with 10,000 content blocks, thinking and text in turn (each one session event that
// does not merge with its neighbour in the chat), the last one the text "the last event".
func manyEvents(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	bw := bufio.NewWriterSize(w, 64<<10)
	ev := func(name string, data any) {
		b, _ := json.Marshal(data)
		fmt.Fprintf(bw, "event: %s\ndata: %s\n\n", name, b)
	}
	ev("message_start", map[string]any{"type": "message_start", "message": map[string]any{"id": "msg_many", "type": "message",
		"role": "assistant", "model": "e2e", "content": []any{}, "stop_reason": nil, "usage": map[string]int{"input_tokens": 50, "output_tokens": 1}}})
	const n = 10000
	for i := 0; i < n; i++ {
		if i%2 == 0 {
			ev("content_block_start", map[string]any{"type": "content_block_start", "index": i, "content_block": map[string]string{"type": "thinking", "thinking": "", "signature": ""}})
			ev("content_block_delta", map[string]any{"type": "content_block_delta", "index": i, "delta": map[string]string{"type": "thinking_delta", "thinking": fmt.Sprintf("considering step %d", i+1)}})
		} else {
			text := fmt.Sprintf("event %d of %d", i+1, n)
			if i == n-1 {
				text = "the last event"
			}
			ev("content_block_start", map[string]any{"type": "content_block_start", "index": i, "content_block": map[string]string{"type": "text", "text": ""}})
			ev("content_block_delta", map[string]any{"type": "content_block_delta", "index": i, "delta": map[string]string{"type": "text_delta", "text": text}})
		}
		ev("content_block_stop", map[string]any{"type": "content_block_stop", "index": i})
	}
	ev("message_delta", map[string]any{"type": "message_delta", "delta": map[string]any{"stop_reason": "end_turn", "stop_sequence": nil},
		"usage": map[string]int{"output_tokens": n}})
	ev("message_stop", map[string]string{"type": "message_stop"})
	bw.Flush()
}
