package comm

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/it0/it0/internal/errs"
)

// TestSendWindow is how often one contact can be sent a test message on one channel: a test-send costs
// money (SMS, calls) and reaches a person's phone, so a double click or a script must not repeat it.
const TestSendWindow = 30 * time.Second

// testText is the test message, per locale.
var testText = map[string][2]string{
	"en":    {"IT0 test message", "This is a test message from IT0 (sent by %s). If you can read it, the %s channel reaches you."},
	"zh-CN": {"IT0 测试消息", "这是一条来自 IT0 的测试消息（由 %s 发送）。能看到它，说明 %s 通道可以联系到您。"},
}

// TestSend sends contact id a short test message on channel (the contact's preferred channel when empty,
// else the first one it has an address for), at once and without falling back to another channel, and
// returns the message with its delivery status: sent, failed (with the provider's error), skipped (the
// channel is not configured) or pending (a temporary failure, retried). by names who asked, for the text.
//
// Returns errs.NotFound for an unknown contact, errs.Invalid for a channel that is not one of Channels or
// on which the contact has no address, and errs.RateLimited (with RetryAfter) when the contact was sent a
// test on the channel less than TestSendWindow ago. The send is audited as comm.contact_tested.
func (s *Service) TestSend(ctx context.Context, id, channel, by string) (*Message, error) {
	c, err := s.store.ContactGet(ctx, id)
	if err != nil {
		return nil, err
	}
	if channel == "" {
		channel = c.PreferredChannel
	}
	if channel == "" {
		for _, ch := range Channels {
			if c.Address(ch) != "" {
				channel = ch
				break
			}
		}
	}
	if !slices.Contains(Channels, channel) {
		return nil, errs.Invalidf("channel", "channel %q is not one of %s", channel, strings.Join(Channels, ", "))
	}
	if c.Address(channel) == "" {
		return nil, errs.Invalidf("channel", "contact %s has no %s address", c.Name, channel)
	}
	// The window is part of the idempotency key: within it, the store refuses a second message, which makes
	// the limit hold across processes without a counter of its own. The limit itself slides: a test in the
	// previous window that is less than TestSendWindow old refuses too (else two sends could straddle a
	// window's edge moments apart).
	now := s.now()
	win := now.Truncate(TestSendWindow)
	key := testSendKey(c.ID, channel, win)
	for _, k := range []string{key, testSendKey(c.ID, channel, win.Add(-TestSendWindow))} {
		prev, err := s.store.MessageByKey(ctx, k)
		if errs.Is(err, errs.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if wait := prev.CreatedAt.Add(TestSendWindow).Sub(now); wait > 0 {
			secs := max(int((wait+time.Second-1)/time.Second), 1)
			return nil, &errs.Error{Code: errs.RateLimited, Message: fmt.Sprintf("a test message was sent to %s on %s moments ago", c.Name, channel),
				Hint: fmt.Sprintf("try again in %d seconds", secs), RetryAfter: time.Duration(secs) * time.Second}
		}
	}
	txt := testText[Locale(c.Locale)]
	m := &Message{Direction: Outbound, Channel: channel, ContactID: c.ID, Address: c.Address(channel), Subject: txt[0],
		Body: fmt.Sprintf(txt[1], by, channel), IdempotencyKey: key}
	out := OutboundMessage{To: m.Address, Subject: m.Subject, Text: m.Body, Speech: m.Body, Language: speechLanguage(c.Locale),
		Data: map[string]string{"kind": "test"}, Key: key}
	if err := s.deliver(ctx, m, out); err != nil {
		return nil, err
	}
	if m.Status == StatusPending && m.Attempts == 0 {
		// Another request recorded a test under the key between the look-up and deliver: that one was sent.
		return nil, &errs.Error{Code: errs.RateLimited, Message: fmt.Sprintf("a test message was sent to %s on %s moments ago", c.Name, channel),
			Hint: "try again in a few seconds", RetryAfter: TestSendWindow}
	}
	if err := s.record(ctx, "comm.contact_tested", "contact", c.ID, fmt.Sprintf("test message to %s on %s: %s", c.Name, channel, m.Status),
		map[string]any{"channel": channel, "message_id": m.ID, "status": m.Status}); err != nil {
		return nil, err
	}
	return m, nil
}

// testSendKey is the idempotency key of a contact's test message on channel in the window starting at win.
func testSendKey(contactID, channel string, win time.Time) string {
	return fmt.Sprintf("test:%s:%s:%d", contactID, channel, win.Unix())
}
