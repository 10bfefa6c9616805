// Package telegram is comm's Telegram Bot API adapter: sendMessage with inline approve/reject buttons,
// answerCallbackQuery, the webhook's secret-token check, and parsing of webhook updates.
package telegram

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/vault"
)

// DefaultBaseURL is the Bot API.
const DefaultBaseURL = "https://api.telegram.org"

// Config configures the bot. An empty Token leaves the channel unavailable; an empty WebhookSecret refuses
// every webhook call.
type Config struct {
	Token         vault.Secret
	WebhookSecret vault.Secret // the secret_token given to setWebhook
	BaseURL       string
	HTTP          *http.Client
}

// Client is one bot.
type Client struct{ cfg Config }

// New returns a client for cfg.
func New(cfg Config) *Client {
	cfg.BaseURL, cfg.HTTP = comm.Endpoint(cfg.BaseURL, DefaultBaseURL, cfg.HTTP)
	return &Client{cfg: cfg}
}

// Channel implements comm.Sender.
func (c *Client) Channel() string { return comm.ChannelTelegram }

// Available implements comm.Sender.
func (c *Client) Available() error {
	if c.cfg.Token.IsZero() {
		return comm.Unavailable(comm.ChannelTelegram, "IT0_TELEGRAM_BOT_TOKEN")
	}
	return nil
}

// CheckSecret reports whether token (the X-Telegram-Bot-Api-Secret-Token header) is the webhook's secret,
// in constant time.
func (c *Client) CheckSecret(token string) bool {
	want := c.cfg.WebhookSecret.Reveal()
	return want != "" && subtle.ConstantTimeCompare([]byte(token), []byte(want)) == 1
}

type button struct {
	Text         string `json:"text"`
	CallbackData string `json:"callback_data,omitempty"`
	URL          string `json:"url,omitempty"`
}

type sendMessage struct {
	ChatID      int64  `json:"chat_id"`
	Text        string `json:"text"`
	ParseMode   string `json:"parse_mode"`
	ReplyMarkup *struct {
		InlineKeyboard [][]button `json:"inline_keyboard"`
	} `json:"reply_markup,omitempty"`
}

// Send implements comm.Sender: sendMessage in HTML with one row of buttons, one per action (callback data
// up to 64 bytes).
func (c *Client) Send(ctx context.Context, m comm.OutboundMessage) (string, error) {
	chat, err := strconv.ParseInt(m.To, 10, 64)
	if err != nil {
		return "", fmt.Errorf("telegram chat id %q is not a number", m.To)
	}
	text := html.EscapeString(m.Text)
	if m.Subject != "" {
		text = "<b>" + html.EscapeString(m.Subject) + "</b>\n" + text
	}
	if r := []rune(text); len(r) > 4096 {
		text = string(r[:4095]) + "…"
	}
	req := sendMessage{ChatID: chat, Text: text, ParseMode: "HTML"}
	var row []button
	for _, a := range m.Actions {
		if a.Data != "" && len(a.Data) <= 64 {
			row = append(row, button{Text: a.Label, CallbackData: a.Data})
		}
	}
	if len(row) > 0 {
		req.ReplyMarkup = &struct {
			InlineKeyboard [][]button `json:"inline_keyboard"`
		}{[][]button{row}}
	}
	var res struct {
		MessageID int64 `json:"message_id"`
	}
	if err := c.call(ctx, "sendMessage", req, &res); err != nil {
		return "", err
	}
	return strconv.FormatInt(res.MessageID, 10), nil
}

// AnswerCallback calls answerCallbackQuery, which stops the pressed button's spinner and shows text.
func (c *Client) AnswerCallback(ctx context.Context, callbackID, text string) error {
	return c.call(ctx, "answerCallbackQuery", map[string]any{"callback_query_id": callbackID, "text": text, "show_alert": false}, nil)
}

// call POSTs req as JSON to method and decodes the result into out.
func (c *Client) call(ctx context.Context, method string, req, out any) error {
	if err := c.Available(); err != nil {
		return err
	}
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	// The token is part of the path: errors below never include the URL.
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.BaseURL+"/bot"+c.cfg.Token.Reveal()+"/"+method, bytes.NewReader(b))
	if err != nil {
		return errors.New("telegram: bad base URL")
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := c.cfg.HTTP.Do(hreq)
	if err != nil {
		return comm.NetError("telegram "+method, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var r struct {
		OK          bool            `json:"ok"`
		Result      json.RawMessage `json:"result"`
		ErrorCode   int             `json:"error_code"`
		Description string          `json:"description"`
		Parameters  struct {
			RetryAfter int `json:"retry_after"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		if resp.StatusCode/100 != 2 {
			return comm.HTTPError(resp, 0, fmt.Errorf("telegram %s: HTTP %d", method, resp.StatusCode))
		}
		return fmt.Errorf("telegram %s: unexpected answer", method)
	}
	if !r.OK {
		return comm.HTTPError(resp, time.Duration(r.Parameters.RetryAfter)*time.Second, fmt.Errorf("telegram %s: %d %s", method, r.ErrorCode, r.Description))
	}
	if out != nil {
		return json.Unmarshal(r.Result, out)
	}
	return nil
}

// Update is the part of a webhook update comm acts on.
type Update struct {
	UpdateID int64
	// A text message.
	ChatID string
	FromID string
	Text   string
	// A button press (callback_query); FromID is the presser.
	CallbackID   string
	CallbackData string
}

// ErrBadUpdate is returned for a body that is not a Telegram update.
var ErrBadUpdate = errors.New("telegram: not an update")

// ParseUpdate reads a webhook body (one JSON Update). Updates other than messages and callback queries
// parse with empty fields.
func ParseUpdate(body []byte) (Update, error) {
	var u struct {
		UpdateID *int64 `json:"update_id"`
		Message  *struct {
			From *struct {
				ID int64 `json:"id"`
			} `json:"from"`
			Chat struct {
				ID int64 `json:"id"`
			} `json:"chat"`
			Text string `json:"text"`
		} `json:"message"`
		CallbackQuery *struct {
			ID   string `json:"id"`
			From struct {
				ID int64 `json:"id"`
			} `json:"from"`
			Data string `json:"data"`
		} `json:"callback_query"`
	}
	if len(body) > 1<<20 {
		return Update{}, ErrBadUpdate
	}
	if err := json.Unmarshal(body, &u); err != nil || u.UpdateID == nil {
		return Update{}, ErrBadUpdate
	}
	out := Update{UpdateID: *u.UpdateID}
	if m := u.Message; m != nil {
		out.ChatID, out.Text = strconv.FormatInt(m.Chat.ID, 10), m.Text
		if m.From != nil {
			out.FromID = strconv.FormatInt(m.From.ID, 10)
		}
	}
	if q := u.CallbackQuery; q != nil {
		out.CallbackID, out.CallbackData, out.FromID = q.ID, q.Data, strconv.FormatInt(q.From.ID, 10)
	}
	return out, nil
}
