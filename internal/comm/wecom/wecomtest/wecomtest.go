// Package wecomtest plays WeCom's side of an app's callback for tests: it encrypts and signs messages the
// way WeCom's servers do (its own AES and SHA-1 code, not package wecom's, so that a mistake shared by
// wecom's encrypt and decrypt cannot hide), sends them to the callback URL, and opens the passive replies.
package wecomtest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/it0/it0/internal/comm/wecom"
	"github.com/it0/it0/internal/vault"
)

// CorpID is the enterprise the client speaks for.
const CorpID = "ww5823bf96d3bd56c7"

// Client is WeCom calling one app's callback URL.
type Client struct {
	URL            string // the callback URL
	Token          string
	EncodingAESKey string
	CorpID         string
	HTTP           *http.Client
	Now            func() time.Time

	key   []byte
	nonce atomic.Int64
}

// New returns a client with a fresh token and key, calling url (which may be set later).
func New(tb testing.TB, url string, now func() time.Time) *Client {
	tb.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	enc := base64.StdEncoding.EncodeToString(key)
	// An EncodingAESKey is 43 characters: the key's base64 without its "=".
	c := &Client{URL: url, Token: "tok" + hex.EncodeToString(key[:6]), EncodingAESKey: strings.TrimSuffix(enc, "="), CorpID: CorpID,
		HTTP: &http.Client{Timeout: 30 * time.Second}, Now: now}
	if len(c.EncodingAESKey) != 43 {
		tb.Fatalf("EncodingAESKey of %d characters", len(c.EncodingAESKey))
	}
	c.key = key
	c.nonce.Store(time.Now().UnixNano() % 1e9)
	return c
}

// Config is the wecom.CallbackConfig matching the client.
func (c *Client) Config() wecom.CallbackConfig {
	return wecom.CallbackConfig{Token: vault.Secret(c.Token), EncodingAESKey: vault.Secret(c.EncodingAESKey), ReceiverID: c.CorpID, Now: c.Now}
}

// Sign is WeCom's msg_signature: SHA-1 of the sorted token, timestamp, nonce and payload.
func Sign(token, timestamp, nonce, payload string) string {
	parts := []string{token, timestamp, nonce, payload}
	sort.Strings(parts)
	sum := sha1.Sum([]byte(strings.Join(parts, "")))
	return hex.EncodeToString(sum[:])
}

// Encrypt is WeCom's payload: base64 of AES-256-CBC (IV = the key's first 16 bytes) over random(16),
// msg_len (4 bytes, big-endian), msg and receiveid, PKCS#7-padded to a multiple of 32 bytes.
func Encrypt(key, msg []byte, receiveID string) string {
	buf := make([]byte, 16, 16+4+len(msg)+len(receiveID)+32)
	rand.Read(buf)
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(msg)))
	buf = append(buf, msg...)
	buf = append(buf, receiveID...)
	n := 32 - len(buf)%32
	for range n {
		buf = append(buf, byte(n))
	}
	block, _ := aes.NewCipher(key)
	out := make([]byte, len(buf))
	cipher.NewCBCEncrypter(block, key[:16]).CryptBlocks(out, buf)
	return base64.StdEncoding.EncodeToString(out)
}

// Request is one signed callback request, ready to send (or to spoil first).
type Request struct {
	Method    string
	Signature string
	Timestamp string
	Nonce     string
	Echostr   string // GET only
	Body      []byte // POST only
}

// fresh returns a new timestamp and nonce.
func (c *Client) fresh() (string, string) {
	return strconv.FormatInt(c.Now().Unix(), 10), strconv.FormatInt(c.nonce.Add(1), 10)
}

// VerifyURL is the URL check WeCom makes when the callback is saved: echostr carries plain encrypted.
func (c *Client) VerifyURL(plain string) *Request {
	ts, nonce := c.fresh()
	echo := Encrypt(c.key, []byte(plain), c.CorpID)
	return &Request{Method: http.MethodGet, Signature: Sign(c.Token, ts, nonce, echo), Timestamp: ts, Nonce: nonce, Echostr: echo}
}

// Seal wraps a message's XML in WeCom's envelope, signed.
func (c *Client) Seal(msg string) *Request {
	ts, nonce := c.fresh()
	enc := Encrypt(c.key, []byte(msg), c.CorpID)
	body := fmt.Sprintf("<xml><ToUserName><![CDATA[%s]]></ToUserName><Encrypt><![CDATA[%s]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>", c.CorpID, enc)
	return &Request{Method: http.MethodPost, Signature: Sign(c.Token, ts, nonce, enc), Timestamp: ts, Nonce: nonce, Body: []byte(body)}
}

// Text is a user's text message to the app.
func (c *Client) Text(from, content string, msgID int64) *Request {
	return c.Seal(fmt.Sprintf("<xml><ToUserName><![CDATA[%s]]></ToUserName><FromUserName><![CDATA[%s]]></FromUserName><CreateTime>%d</CreateTime>"+
		"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[%s]]></Content><MsgId>%d</MsgId><AgentID>1000002</AgentID></xml>",
		c.CorpID, from, c.Now().Unix(), content, msgID))
}

// CardEvent is a user's press of a template card's button (event template_card_event).
func (c *Client) CardEvent(from, eventKey, taskID string) *Request {
	return c.Seal(fmt.Sprintf("<xml><ToUserName><![CDATA[%s]]></ToUserName><FromUserName><![CDATA[%s]]></FromUserName><CreateTime>%d</CreateTime>"+
		"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[template_card_event]]></Event><EventKey><![CDATA[%s]]></EventKey>"+
		"<TaskId><![CDATA[%s]]></TaskId><CardType><![CDATA[button_interaction]]></CardType><ResponseCode><![CDATA[rc-1]]></ResponseCode>"+
		"<AgentID>1000002</AgentID></xml>", c.CorpID, from, c.Now().Unix(), eventKey, taskID))
}

// Do sends r to the callback URL and returns the status and body.
func (c *Client) Do(r *Request) (int, []byte, error) {
	q := url.Values{"msg_signature": {r.Signature}, "timestamp": {r.Timestamp}, "nonce": {r.Nonce}}
	if r.Method == http.MethodGet {
		q.Set("echostr", r.Echostr)
	}
	req, err := http.NewRequest(r.Method, c.URL+"?"+q.Encode(), bytes.NewReader(r.Body))
	if err != nil {
		return 0, nil, err
	}
	if r.Method == http.MethodPost {
		req.Header.Set("Content-Type", "text/xml")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// Reply is a passive reply, opened.
type Reply struct {
	ToUserName   string `xml:"ToUserName"`
	FromUserName string `xml:"FromUserName"`
	MsgType      string `xml:"MsgType"`
	Content      string `xml:"Content"`
	// ReplaceName is the pressed button's new caption (MsgType update_button).
	ReplaceName string `xml:"Button>ReplaceName"`
}

// OpenReply checks a passive reply's signature and receiveid and decrypts it, as WeCom does.
func (c *Client) OpenReply(body []byte) (*Reply, error) {
	var env struct {
		Encrypt      string `xml:"Encrypt"`
		MsgSignature string `xml:"MsgSignature"`
		TimeStamp    string `xml:"TimeStamp"`
		Nonce        string `xml:"Nonce"`
	}
	if err := xml.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("reply envelope: %w", err)
	}
	if Sign(c.Token, env.TimeStamp, env.Nonce, env.Encrypt) != env.MsgSignature {
		return nil, errors.New("reply: bad signature")
	}
	ct, err := base64.StdEncoding.DecodeString(env.Encrypt)
	if err != nil || len(ct)%32 != 0 || len(ct) == 0 {
		return nil, errors.New("reply: not 32-byte blocks of base64")
	}
	block, _ := aes.NewCipher(c.key)
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, c.key[:16]).CryptBlocks(plain, ct)
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > 32 {
		return nil, errors.New("reply: bad padding")
	}
	plain = plain[:len(plain)-pad]
	n := int(binary.BigEndian.Uint32(plain[16:20]))
	if 20+n > len(plain) || string(plain[20+n:]) != c.CorpID {
		return nil, fmt.Errorf("reply: msg_len %d or receiveid %q wrong", n, plain[min(20+n, len(plain)):])
	}
	var r Reply
	if err := xml.Unmarshal(plain[20:20+n], &r); err != nil {
		return nil, fmt.Errorf("reply message: %w", err)
	}
	return &r, nil
}
