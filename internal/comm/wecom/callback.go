package wecom

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/it0/it0/internal/vault"
)

// WeCom's callback ("接收消息与事件"): every request carries msg_signature, timestamp and nonce in the query;
// the payload (the echostr of the URL check, the <Encrypt> of a POSTed XML envelope) is
//
//	base64(AES-256-CBC(key, iv = key[:16], PKCS#7 to 32 bytes: random(16) ‖ msg_len(4, big-endian) ‖ msg ‖ receiveid))
//
// with key = base64(EncodingAESKey + "="), and msg_signature = hex(sha1(sort(token, timestamp, nonce,
// payload) joined)). receiveid is the CorpID for an enterprise's own app.

// Errors the callback returns; each refuses the request.
var (
	ErrBadSignature = errors.New("wecom callback: bad msg_signature")
	ErrStale        = errors.New("wecom callback: timestamp outside the accepted window")
	ErrReplayed     = errors.New("wecom callback: nonce already used")
	ErrBadPayload   = errors.New("wecom callback: payload does not decrypt") // base64, AES, padding or lengths
	ErrReceiver     = errors.New("wecom callback: payload is for another receiver")
	ErrMalformed    = errors.New("wecom callback: malformed request")
)

// CallbackConfig configures the callback of a WeCom app ("API 接收消息" in the admin console).
type CallbackConfig struct {
	Token          vault.Secret // the callback Token
	EncodingAESKey vault.Secret // the 43-character EncodingAESKey
	ReceiverID     string       // the CorpID
	// Window bounds how far a request's timestamp may be from now (default 5 minutes); inside it each
	// nonce is taken once.
	Window time.Duration
	Now    func() time.Time
}

// Configured reports whether the callback's settings are present.
func (c CallbackConfig) Configured() bool {
	return !c.Token.IsZero() && !c.EncodingAESKey.IsZero() && c.ReceiverID != ""
}

// AESKey decodes an EncodingAESKey: 43 base64 characters and "=" make the 32-byte key.
func AESKey(encodingAESKey string) ([]byte, error) {
	if len(encodingAESKey) != 43 {
		return nil, fmt.Errorf("EncodingAESKey: want 43 characters, got %d", len(encodingAESKey))
	}
	key, err := base64.StdEncoding.DecodeString(encodingAESKey + "=")
	if err != nil || len(key) != 32 {
		return nil, errors.New("EncodingAESKey: not base64 of a 32-byte key")
	}
	return key, nil
}

// Callback verifies, decrypts and answers WeCom's callback requests.
type Callback struct {
	cfg   CallbackConfig
	block cipher.Block
	iv    []byte

	mu     sync.Mutex
	nonces map[string]time.Time // timestamp+nonce → when it was taken; pruned past the window
}

// maxNonces bounds the replay cache; past it the oldest half is dropped (they are the nearest to leaving
// the window anyway).
const maxNonces = 100_000

// NewCallback returns a callback for cfg.
func NewCallback(cfg CallbackConfig) (*Callback, error) {
	if !cfg.Configured() {
		return nil, errors.New("wecom callback: the token, EncodingAESKey and CorpID are required")
	}
	key, err := AESKey(cfg.EncodingAESKey.Reveal())
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if cfg.Window <= 0 {
		cfg.Window = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Callback{cfg: cfg, block: block, iv: key[:16], nonces: map[string]time.Time{}}, nil
}

// Signature is WeCom's msg_signature of a payload.
func Signature(token, timestamp, nonce, payload string) string {
	parts := []string{token, timestamp, nonce, payload}
	slices.Sort(parts)
	h := sha1.New()
	for _, p := range parts {
		io.WriteString(h, p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Query is the signed part of a callback's URL.
type Query struct {
	Signature string // msg_signature
	Timestamp string
	Nonce     string
}

// check verifies the signature over payload, the timestamp window and that the nonce is new, and takes
// the nonce. The signature goes first, so that no unsigned request can use up a nonce.
func (c *Callback) check(q Query, payload string) error {
	if q.Signature == "" || q.Timestamp == "" || q.Nonce == "" || payload == "" {
		return fmt.Errorf("%w: msg_signature, timestamp, nonce and the payload are required", ErrMalformed)
	}
	want := Signature(c.cfg.Token.Reveal(), q.Timestamp, q.Nonce, payload)
	if subtle.ConstantTimeCompare([]byte(want), []byte(q.Signature)) != 1 {
		return ErrBadSignature
	}
	sec, err := strconv.ParseInt(q.Timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp %q is not Unix seconds", ErrMalformed, q.Timestamp)
	}
	now := c.cfg.Now()
	if d := now.Sub(time.Unix(sec, 0)); d > c.cfg.Window || d < -c.cfg.Window {
		return ErrStale
	}
	key := q.Timestamp + "/" + q.Nonce
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, seen := c.nonces[key]; seen {
		return ErrReplayed
	}
	if len(c.nonces) >= maxNonces {
		c.prune(now)
	}
	c.nonces[key] = now
	return nil
}

// prune drops the nonces whose timestamps left the window, and the oldest half when that was not enough.
func (c *Callback) prune(now time.Time) {
	for k, at := range c.nonces {
		if now.Sub(at) > 2*c.cfg.Window {
			delete(c.nonces, k)
		}
	}
	if len(c.nonces) < maxNonces {
		return
	}
	ats := make([]time.Time, 0, len(c.nonces))
	for _, at := range c.nonces {
		ats = append(ats, at)
	}
	slices.SortFunc(ats, func(a, b time.Time) int { return a.Compare(b) })
	cut := ats[len(ats)/2]
	for k, at := range c.nonces {
		if at.Before(cut) {
			delete(c.nonces, k)
		}
	}
}

// Release gives back the nonce of q, so that WeCom's retry of a request that failed on our side (a 5xx)
// is taken. The message id keeps a retry of a request that succeeded from answering twice.
func (c *Callback) Release(q Query) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.nonces, q.Timestamp+"/"+q.Nonce)
}

// VerifyURL answers the URL check (GET with echostr): it returns the decrypted echostr, which the
// handler writes back as the plain-text body.
func (c *Callback) VerifyURL(q Query, echostr string) ([]byte, error) {
	if err := c.check(q, echostr); err != nil {
		return nil, err
	}
	return c.open(echostr)
}

// envelope is the XML WeCom POSTs.
type envelope struct {
	ToUserName string `xml:"ToUserName"`
	AgentID    string `xml:"AgentID"`
	Encrypt    string `xml:"Encrypt"`
}

// maxEnvelope bounds a POSTed envelope; WeCom's messages are a few kilobytes.
const maxEnvelope = 256 << 10

// EventCard is the event of a template card's button press.
const EventCard = "template_card_event"

// Message is a decrypted callback message: a user's text, or an event (a template card's button).
type Message struct {
	ToUserName   string `xml:"ToUserName"`   // the CorpID
	FromUserName string `xml:"FromUserName"` // the sender's UserID
	CreateTime   int64  `xml:"CreateTime"`
	MsgType      string `xml:"MsgType"` // text, event, image, voice…
	Content      string `xml:"Content"`
	MsgID        string `xml:"MsgId"`
	AgentID      string `xml:"AgentID"`
	Event        string `xml:"Event"`    // with MsgType event: template_card_event, click, enter_agent…
	EventKey     string `xml:"EventKey"` // the button's key
	TaskID       string `xml:"TaskId"`   // the template card's task id
}

// Open verifies and decrypts a POSTed callback body.
func (c *Callback) Open(q Query, body []byte) (*Message, error) {
	if len(body) > maxEnvelope {
		return nil, fmt.Errorf("%w: body over %d bytes", ErrMalformed, maxEnvelope)
	}
	var env envelope
	if err := xml.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: the body is not WeCom's XML envelope", ErrMalformed)
	}
	if err := c.check(q, env.Encrypt); err != nil {
		return nil, err
	}
	plain, err := c.open(env.Encrypt)
	if err != nil {
		return nil, err
	}
	var m Message
	if err := xml.Unmarshal(plain, &m); err != nil {
		return nil, fmt.Errorf("%w: the decrypted message is not XML", ErrMalformed)
	}
	if m.FromUserName == "" {
		return nil, fmt.Errorf("%w: the message has no FromUserName", ErrMalformed)
	}
	return &m, nil
}

// open decrypts a payload and checks its receiver.
func (c *Callback) open(payload string) ([]byte, error) {
	msg, receiver, err := Decrypt(c.block, c.iv, payload)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(receiver), []byte(c.cfg.ReceiverID)) != 1 {
		return nil, ErrReceiver
	}
	return msg, nil
}

// Decrypt opens a payload with the AES block and IV: it returns msg and the receiveid after it.
func Decrypt(block cipher.Block, iv []byte, payload string) (msg []byte, receiver string, err error) {
	ct, err := base64.StdEncoding.DecodeString(payload)
	if err != nil {
		return nil, "", fmt.Errorf("%w: not base64", ErrBadPayload)
	}
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, "", fmt.Errorf("%w: %d bytes is not whole AES blocks", ErrBadPayload, len(ct))
	}
	plain := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(plain, ct)
	// PKCS#7 to a 32-byte block (WeCom's choice, not AES's 16): the pad is 1 to 32 bytes of its length.
	pad := int(plain[len(plain)-1])
	if pad < 1 || pad > 32 || pad > len(plain) {
		return nil, "", fmt.Errorf("%w: bad padding", ErrBadPayload)
	}
	for _, b := range plain[len(plain)-pad:] {
		if int(b) != pad {
			return nil, "", fmt.Errorf("%w: bad padding", ErrBadPayload)
		}
	}
	plain = plain[:len(plain)-pad]
	if len(plain) < 20 {
		return nil, "", fmt.Errorf("%w: too short", ErrBadPayload)
	}
	n := binary.BigEndian.Uint32(plain[16:20])
	if uint64(n) > uint64(len(plain)-20) {
		return nil, "", fmt.Errorf("%w: msg_len %d past the end", ErrBadPayload, n)
	}
	return plain[20 : 20+n], string(plain[20+n:]), nil
}

// Encrypt seals msg for receiver the way WeCom does, with random as the 16 leading bytes (nil: fresh
// random bytes).
func Encrypt(block cipher.Block, iv, random, msg []byte, receiver string) (string, error) {
	if random == nil {
		random = make([]byte, 16)
		if _, err := rand.Read(random); err != nil {
			return "", err
		}
	}
	if len(random) != 16 {
		return "", errors.New("wecom: the random prefix is 16 bytes")
	}
	var b bytes.Buffer
	b.Write(random)
	binary.Write(&b, binary.BigEndian, uint32(len(msg)))
	b.Write(msg)
	b.WriteString(receiver)
	pad := 32 - b.Len()%32
	b.Write(bytes.Repeat([]byte{byte(pad)}, pad))
	ct := make([]byte, b.Len())
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(ct, b.Bytes())
	return base64.StdEncoding.EncodeToString(ct), nil
}

// cdata is an XML element whose text is written as CDATA, as WeCom writes its own.
type cdata struct {
	Text string `xml:",cdata"`
}

// replyMessage is a passive reply's plain XML: a text message, or (to a card's button) the new text of the
// pressed button ("update_button"), which also makes the card's buttons unclickable.
type replyMessage struct {
	XMLName      xml.Name `xml:"xml"`
	ToUserName   cdata
	FromUserName cdata
	CreateTime   int64
	MsgType      cdata
	Content      *cdata `xml:",omitempty"`
	Button       *struct {
		ReplaceName cdata
	} `xml:",omitempty"`
}

// maxButtonText bounds the replacement text of a pressed button, which shows in place of the buttons.
const maxButtonText = 32

// Reply is the passive reply to a callback POST: text to the sender, or for a template card's button
// press the button's new caption, encrypted and signed.
func (c *Callback) Reply(to *Message, text string) ([]byte, error) {
	now := c.cfg.Now()
	rm := replyMessage{ToUserName: cdata{to.FromUserName}, FromUserName: cdata{c.cfg.ReceiverID}, CreateTime: now.Unix()}
	if to.Event == EventCard {
		if r := []rune(text); len(r) > maxButtonText {
			text = string(r[:maxButtonText-1]) + "…"
		}
		rm.MsgType = cdata{"update_button"}
		rm.Button = &struct{ ReplaceName cdata }{cdata{text}}
	} else {
		rm.MsgType, rm.Content = cdata{"text"}, &cdata{text}
	}
	inner, err := xml.Marshal(rm)
	if err != nil {
		return nil, err
	}
	enc, err := Encrypt(c.block, c.iv, nil, inner, c.cfg.ReceiverID)
	if err != nil {
		return nil, err
	}
	nb := make([]byte, 8)
	rand.Read(nb)
	nonce := strconv.FormatUint(binary.BigEndian.Uint64(nb)%1e10, 10)
	ts := strconv.FormatInt(now.Unix(), 10)
	return xml.Marshal(struct {
		XMLName      xml.Name `xml:"xml"`
		Encrypt      cdata
		MsgSignature cdata
		TimeStamp    string
		Nonce        cdata
	}{Encrypt: cdata{enc}, MsgSignature: cdata{Signature(c.cfg.Token.Reveal(), ts, nonce, enc)}, TimeStamp: ts, Nonce: cdata{nonce}})
}
