package wecom_test

import (
	"crypto/aes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/it0/it0/internal/comm/wecom"
	"github.com/it0/it0/internal/comm/wecom/wecomtest"
)

// WeCom's published sample ("加解密方案说明"): its token, key and CorpID, a URL check and a POSTed message.
var official = wecom.CallbackConfig{Token: "QDG6eK", EncodingAESKey: "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", ReceiverID: "wx5823bf96d3bd56c7"}

func at(sec int64) func() time.Time { return func() time.Time { return time.Unix(sec, 0) } }

// TestOfficialSample opens WeCom's own sample requests, so the crypto matches WeCom's and not only itself.
func TestOfficialSample(t *testing.T) {
	t.Parallel()
	// Ensure the sample URL check decrypts to its echo.
	t.Run("VerifyURL", func(t *testing.T) {
		t.Parallel()
		cfg := official
		cfg.Now = at(1409659589)
		cb, err := wecom.NewCallback(cfg)
		if err != nil {
			t.Fatal(err)
		}
		echo, err := cb.VerifyURL(wecom.Query{Signature: "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3", Timestamp: "1409659589", Nonce: "263014780"},
			"P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==")
		if err != nil || string(echo) != "1616140317555161061" {
			t.Errorf("echo %q, %v", echo, err)
		}
	})
	// Ensure the sample POST decrypts to its text message.
	t.Run("Message", func(t *testing.T) {
		t.Parallel()
		cfg := official
		cfg.Now = at(1409659813)
		cb, _ := wecom.NewCallback(cfg)
		body, err := os.ReadFile("testdata/official_post.xml")
		if err != nil {
			t.Fatal(err)
		}
		m, err := cb.Open(wecom.Query{Signature: "477715d11cdb4164915debcba66cb864d751f3e6", Timestamp: "1409659813", Nonce: "1372623149"}, body)
		if err != nil {
			t.Fatal(err)
		}
		if m.FromUserName != "mycreate" || m.MsgType != "text" || m.Content != "hello" || m.MsgID != "4561255354251345929" || m.AgentID != "218" {
			t.Errorf("message %+v", m)
		}
	})
}

func setup(t *testing.T) (*wecom.Callback, *wecomtest.Client) {
	t.Helper()
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	c := wecomtest.New(t, "", func() time.Time { return now })
	cb, err := wecom.NewCallback(c.Config())
	if err != nil {
		t.Fatal(err)
	}
	return cb, c
}

func query(r *wecomtest.Request) wecom.Query {
	return wecom.Query{Signature: r.Signature, Timestamp: r.Timestamp, Nonce: r.Nonce}
}

func TestCallback(t *testing.T) {
	t.Parallel()
	// Ensure a text message and a card button press from WeCom's side open to their fields.
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		cb, c := setup(t)
		r := c.Text("zhangsan", "Y 批准 a1b2", 7001)
		m, err := cb.Open(query(r), r.Body)
		if err != nil || m.FromUserName != "zhangsan" || m.Content != "Y 批准 a1b2" || m.MsgID != "7001" || m.MsgType != "text" {
			t.Fatalf("%+v %v", m, err)
		}
		r = c.CardEvent("lisi", "y:0d9a", "task-1")
		m, err = cb.Open(query(r), r.Body)
		if err != nil || m.Event != "template_card_event" || m.EventKey != "y:0d9a" || m.TaskID != "task-1" {
			t.Fatalf("%+v %v", m, err)
		}
		echo, err := cb.VerifyURL(query(c.VerifyURL("8812345")), c.VerifyURL("x").Echostr)
		if !errors.Is(err, wecom.ErrBadSignature) { // the echostr of another request
			t.Errorf("mixed request: %q %v", echo, err)
		}
		v := c.VerifyURL("8812345")
		if echo, err := cb.VerifyURL(query(v), v.Echostr); err != nil || string(echo) != "8812345" {
			t.Errorf("echo %q %v", echo, err)
		}
	})
	// Ensure a message whose length is a multiple of 32 (a whole block of padding) opens.
	t.Run("FullPadding", func(t *testing.T) {
		t.Parallel()
		cb, c := setup(t)
		for n := range 40 {
			v := c.VerifyURL(strings.Repeat("7", n+1))
			if echo, err := cb.VerifyURL(query(v), v.Echostr); err != nil || len(echo) != n+1 {
				t.Fatalf("length %d: %q %v", n+1, echo, err)
			}
		}
	})
	// Ensure a wrong or missing signature is refused before anything is decrypted.
	t.Run("ErrBadSignature", func(t *testing.T) {
		t.Parallel()
		cb, c := setup(t)
		r := c.Text("zhangsan", "Y", 7002)
		q := query(r)
		q.Signature = strings.Repeat("0", 40)
		if _, err := cb.Open(q, r.Body); !errors.Is(err, wecom.ErrBadSignature) {
			t.Errorf("err = %v", err)
		}
		// The signature covers the timestamp: moving it breaks the signature.
		q = query(r)
		q.Timestamp = "1"
		if _, err := cb.Open(q, r.Body); !errors.Is(err, wecom.ErrBadSignature) {
			t.Errorf("err = %v", err)
		}
		q = query(r)
		q.Signature = ""
		if _, err := cb.Open(q, r.Body); !errors.Is(err, wecom.ErrMalformed) {
			t.Errorf("err = %v", err)
		}
		// Refused requests take no nonce: the genuine one still opens.
		if _, err := cb.Open(query(r), r.Body); err != nil {
			t.Errorf("genuine after forgeries: %v", err)
		}
	})
	// Ensure a payload signed with the token but encrypted under another key fails to decrypt.
	t.Run("ErrBadPayload", func(t *testing.T) {
		t.Parallel()
		cb, c := setup(t)
		other := wecomtest.New(t, "", c.Now)
		other.Token = c.Token
		r := other.Text("zhangsan", "Y", 7003)
		if _, err := cb.Open(query(r), r.Body); !errors.Is(err, wecom.ErrBadPayload) && !errors.Is(err, wecom.ErrReceiver) {
			t.Errorf("err = %v", err)
		}
		// Not base64, or not whole blocks.
		for _, payload := range []string{"not base64!", base64.StdEncoding.EncodeToString([]byte("short"))} {
			q := wecom.Query{Timestamp: strconv.FormatInt(c.Now().Unix(), 10), Nonce: payload[:3]}
			q.Signature = wecomtest.Sign(c.Token, q.Timestamp, q.Nonce, payload)
			if _, err := cb.VerifyURL(q, payload); !errors.Is(err, wecom.ErrBadPayload) {
				t.Errorf("%q: err = %v", payload, err)
			}
		}
	})
	// Ensure a payload for another corp is refused.
	t.Run("ErrReceiver", func(t *testing.T) {
		t.Parallel()
		cb, c := setup(t)
		c.CorpID = "ww-another-corp"
		r := c.Text("zhangsan", "Y", 7004)
		if _, err := cb.Open(query(r), r.Body); !errors.Is(err, wecom.ErrReceiver) {
			t.Errorf("err = %v", err)
		}
	})
	// Ensure a timestamp outside the window is refused, either side of now.
	t.Run("ErrStale", func(t *testing.T) {
		t.Parallel()
		cb, c := setup(t)
		base := c.Now()
		for _, d := range []time.Duration{-6 * time.Minute, 6 * time.Minute} {
			c.Now = func() time.Time { return base.Add(d) }
			r := c.Text("zhangsan", "Y", 7005)
			if _, err := cb.Open(query(r), r.Body); !errors.Is(err, wecom.ErrStale) {
				t.Errorf("%v: err = %v", d, err)
			}
		}
		c.Now = func() time.Time { return base.Add(-4 * time.Minute) }
		r := c.Text("zhangsan", "Y", 7006)
		if _, err := cb.Open(query(r), r.Body); err != nil {
			t.Errorf("inside the window: %v", err)
		}
	})
	// Ensure a request is taken once; Release lets WeCom's retry of a failed one in.
	t.Run("ErrReplayed", func(t *testing.T) {
		t.Parallel()
		cb, c := setup(t)
		r := c.Text("zhangsan", "Y", 7007)
		if _, err := cb.Open(query(r), r.Body); err != nil {
			t.Fatal(err)
		}
		if _, err := cb.Open(query(r), r.Body); !errors.Is(err, wecom.ErrReplayed) {
			t.Errorf("replay: %v", err)
		}
		cb.Release(query(r))
		if _, err := cb.Open(query(r), r.Body); err != nil {
			t.Errorf("after release: %v", err)
		}
	})
	// Ensure concurrent copies of one request are taken exactly once.
	t.Run("ReplayRace", func(t *testing.T) {
		t.Parallel()
		cb, c := setup(t)
		r := c.Text("zhangsan", "Y", 7008)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for range 16 {
			wg.Go(func() {
				if _, err := cb.Open(query(r), r.Body); err == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if ok != 1 {
			t.Errorf("%d copies taken", ok)
		}
	})
	// Ensure bodies that are not the envelope are malformed.
	t.Run("ErrMalformed", func(t *testing.T) {
		t.Parallel()
		cb, c := setup(t)
		for _, body := range []string{"", "{}", "<xml><Encrypt></Encrypt></xml>", strings.Repeat("<a>", 100_000)} {
			r := c.Text("zhangsan", "Y", 7009)
			if _, err := cb.Open(query(r), []byte(body)); !errors.Is(err, wecom.ErrMalformed) && !errors.Is(err, wecom.ErrBadSignature) {
				t.Errorf("%.20q: err = %v", body, err)
			}
		}
		r := c.Seal("<xml><MsgType>text</MsgType></xml>") // no sender
		if _, err := cb.Open(query(r), r.Body); !errors.Is(err, wecom.ErrMalformed) {
			t.Errorf("no sender: %v", err)
		}
	})
	// Ensure the passive reply opens on WeCom's side, addressed to the sender.
	t.Run("Reply", func(t *testing.T) {
		t.Parallel()
		cb, c := setup(t)
		r := c.Text("zhangsan", "Y", 7010)
		m, err := cb.Open(query(r), r.Body)
		if err != nil {
			t.Fatal(err)
		}
		body, err := cb.Reply(m, "已批准 <ok> & done")
		if err != nil {
			t.Fatal(err)
		}
		rep, err := c.OpenReply(body)
		if err != nil {
			t.Fatal(err)
		}
		if rep.ToUserName != "zhangsan" || rep.FromUserName != wecomtest.CorpID || rep.MsgType != "text" || rep.Content != "已批准 <ok> & done" {
			t.Errorf("reply %+v", rep)
		}
		// A card's button press is answered by the button's new caption, clipped.
		r = c.CardEvent("zhangsan", "y:0d9a", "task-2")
		if m, err = cb.Open(query(r), r.Body); err != nil {
			t.Fatal(err)
		}
		body, _ = cb.Reply(m, "Thanks: your answer (approved) was recorded.")
		rep, err = c.OpenReply(body)
		if err != nil || rep.MsgType != "update_button" || rep.ReplaceName != "Thanks: your answer (approved) …" || rep.Content != "" {
			t.Errorf("button reply %+v %v", rep, err)
		}
	})
}

func TestAESKey(t *testing.T) {
	t.Parallel()
	for _, k := range []string{"", "short", strings.Repeat("!", 43), official.EncodingAESKey.Reveal() + "A"} {
		if _, err := wecom.AESKey(k); err == nil {
			t.Errorf("%q accepted", k)
		}
	}
	if key, err := wecom.AESKey(official.EncodingAESKey.Reveal()); err != nil || len(key) != 32 {
		t.Errorf("official key: %d bytes, %v", len(key), err)
	}
	if _, err := wecom.NewCallback(wecom.CallbackConfig{Token: "t", EncodingAESKey: "x", ReceiverID: "c"}); err == nil {
		t.Error("a bad key built a callback")
	}
}

// FuzzDecrypt feeds arbitrary payloads to Decrypt: no panic, and whatever opens re-seals to the same.
func FuzzDecrypt(f *testing.F) {
	body, _ := os.ReadFile("testdata/official_post.xml")
	f.Add(string(body))
	f.Add("P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==")
	f.Add("")
	f.Add(base64.StdEncoding.EncodeToString(make([]byte, 32)))
	key, _ := wecom.AESKey(official.EncodingAESKey.Reveal())
	block, _ := aes.NewCipher(key)
	f.Fuzz(func(t *testing.T, payload string) {
		msg, receiver, err := wecom.Decrypt(block, key[:16], payload)
		if err != nil {
			if !errors.Is(err, wecom.ErrBadPayload) {
				t.Fatalf("error %v is not ErrBadPayload", err)
			}
			return
		}
		enc, err := wecom.Encrypt(block, key[:16], nil, msg, receiver)
		if err != nil {
			t.Fatal(err)
		}
		msg2, receiver2, err := wecom.Decrypt(block, key[:16], enc)
		if err != nil || string(msg2) != string(msg) || receiver2 != receiver {
			t.Fatalf("round trip: %q %q %v", msg2, receiver2, err)
		}
	})
}

// FuzzOpen feeds arbitrary bodies to Open with a valid signature over whatever Encrypt they hold.
func FuzzOpen(f *testing.F) {
	body, _ := os.ReadFile("testdata/official_post.xml")
	f.Add(body)
	f.Add([]byte("<xml><Encrypt><![CDATA[AAAA]]></Encrypt></xml>"))
	f.Add([]byte("<xml>"))
	cfg := official
	cfg.Now = at(1409659813)
	f.Fuzz(func(t *testing.T, body []byte) {
		cb, _ := wecom.NewCallback(cfg)
		var env struct {
			Encrypt string `xml:"Encrypt"`
		}
		_ = xml.Unmarshal(body, &env)
		q := wecom.Query{Timestamp: "1409659813", Nonce: "1", Signature: wecom.Signature(cfg.Token.Reveal(), "1409659813", "1", env.Encrypt)}
		m, err := cb.Open(q, body)
		if err == nil && m.FromUserName == "" {
			t.Fatal("opened a message without a sender")
		}
	})
}

// BenchmarkOpen measures verifying, replay-checking and decrypting one callback message.
func BenchmarkOpen(b *testing.B) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	c := wecomtest.New(b, "", func() time.Time { return now })
	cfg := c.Config()
	cb, err := wecom.NewCallback(cfg)
	if err != nil {
		b.Fatal(err)
	}
	reqs := make([]*wecomtest.Request, b.N)
	for i := range reqs {
		reqs[i] = c.Text("zhangsan", "Y 482113 只重启 nginx", int64(i))
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := cb.Open(query(reqs[i]), reqs[i].Body); err != nil {
			b.Fatal(err)
		}
	}
}
