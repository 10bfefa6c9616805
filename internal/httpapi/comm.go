package httpapi

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/comm/telegram"
	"github.com/it0/it0/internal/comm/twilio"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/tenant"
)

// commRoutes are the comm module's endpoints: contacts, policies, messages, escalations, the in-app push
// socket, and the public webhooks that take answers (each authenticated by signature, secret or signed
// token instead of a JWT).
func (s *Server) commRoutes() []route {
	if s.Comm == nil {
		return nil
	}
	const c = "/api/v1/comm"
	view, manage := auth.PermViewDashboard, auth.PermManageSettings
	return []route{
		{method: "POST", path: c + "/contacts", summary: "Add a contact (phone numbers in E.164)", perm: manage,
			handler: s.createContact, req: contactFields{}, resp: comm.Contact{}, status: http.StatusCreated},
		{method: "GET", path: c + "/contacts", summary: "List contacts (?audience=primary|backup|managers)", perm: view,
			handler: s.listContacts, resp: listResponse[comm.Contact]{}},
		{method: "GET", path: c + "/contacts/{id}", summary: "Get a contact", perm: view,
			handler: s.getContact, resp: comm.Contact{}},
		{method: "PUT", path: c + "/contacts/{id}", summary: "Replace a contact", perm: manage,
			handler: s.updateContact, req: contactFields{}, resp: comm.Contact{}},
		{method: "DELETE", path: c + "/contacts/{id}", summary: "Remove a contact", perm: manage,
			handler: s.deleteContact, status: http.StatusNoContent},
		{method: "POST", path: c + "/contacts/{id}/test", summary: "Send a contact a test message on one channel (?channel in the body; preferred by default); once per 30 s", perm: manage,
			handler: s.testContact, req: contactTestRequest{}, resp: comm.Message{}, limited: true},
		{method: "GET", path: c + "/escalation-policies", summary: "Escalation policies of every severity (defaults where unset)", perm: view,
			handler: s.listPolicies, resp: listResponse[comm.Policy]{}},
		{method: "PUT", path: c + "/escalation-policies/{severity}", summary: "Replace the escalation policy of a severity", perm: manage,
			handler: s.putPolicy, req: policyRequest{}, resp: comm.Policy{}},
		{method: "GET", path: c + "/messages", summary: "Message log (?escalation_id=&contact_id=&channel=&direction=&limit=)", perm: view,
			handler: s.listMessages, resp: listResponse[comm.Message]{}},
		{method: "GET", path: c + "/escalations", summary: "Escalation chains (?status=active|answered|closed)", perm: view,
			handler: s.listEscalations, resp: listResponse[comm.Escalation]{}},
		{method: "GET", path: c + "/escalations/{id}", summary: "Get an escalation (its id is the approval's)", perm: view,
			handler: s.getEscalation, resp: comm.Escalation{}},
		{method: "POST", path: c + "/escalations/{id}/answer", summary: "Answer an escalation from the app: approve, reject or instruct", perm: auth.PermApproveL1,
			handler: s.answerEscalation, req: answerRequest{}, resp: comm.Answered{}},
		{method: "GET", path: c + "/channels", summary: "Which channels are configured", perm: view,
			handler: s.commChannels, resp: listResponse[comm.ChannelInfo]{}},
		{method: "POST", path: c + "/notices", summary: "Send a notice to an audience now (idempotent by key)", perm: manage,
			handler: s.postNotice, req: noticeRequest{}, status: http.StatusAccepted},
		{method: "GET", path: "/ws/comm", summary: "WebSocket: the signed-in user's in-app pushes (?token=…)", perm: view,
			handler: s.commSocket},
		{method: "POST", path: "/api/v1/twilio/sms", summary: "Twilio inbound SMS webhook (X-Twilio-Signature); replies Y/N/text answer escalations", public: true,
			handler: s.twilioSMS},
		{method: "POST", path: "/api/v1/twilio/voice", summary: "Twilio call keypad webhook (X-Twilio-Signature): 1 approves, 2 rejects", public: true,
			handler: s.twilioVoice},
		{method: "POST", path: c + "/telegram/webhook", summary: "Telegram webhook (X-Telegram-Bot-Api-Secret-Token): buttons and replies", public: true,
			handler: s.telegramWebhook},
		{method: "GET", path: c + "/answer/{token}", summary: "A signed answer link: shows what it will do and asks to confirm", public: true,
			handler: s.answerPage},
		{method: "POST", path: c + "/answer/{token}", summary: "Use a signed answer link (single-use, expiring); form field text = instruction", public: true,
			handler: s.answerLink},
	}
}

// contactFields are a contact's editable fields.
type contactFields struct {
	UserID           string `json:"user_id,omitempty"`
	Name             string `json:"name"`
	Audience         string `json:"audience,omitempty"` // default primary
	Phone            string `json:"phone,omitempty"`
	Email            string `json:"email,omitempty"`
	TelegramChatID   string `json:"telegram_chat_id,omitempty"`
	WeComUserID      string `json:"wecom_user_id,omitempty"`
	FCMToken         string `json:"fcm_token,omitempty"`
	PreferredChannel string `json:"preferred_channel,omitempty"`
	Locale           string `json:"locale,omitempty"`
	Enabled          *bool  `json:"enabled,omitempty"` // default true
}

func (f contactFields) contact() *comm.Contact {
	return &comm.Contact{UserID: f.UserID, Name: f.Name, Audience: f.Audience, Phone: f.Phone, Email: f.Email, TelegramChatID: f.TelegramChatID,
		WeComUserID: f.WeComUserID, FCMToken: f.FCMToken, PreferredChannel: f.PreferredChannel, Locale: f.Locale, Enabled: f.Enabled == nil || *f.Enabled}
}

func (s *Server) createContact(w http.ResponseWriter, r *http.Request) error {
	var req contactFields
	if err := decode(w, r, &req); err != nil {
		return err
	}
	c := req.contact()
	if err := s.Comm.CreateContact(r.Context(), c); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *Server) listContacts(w http.ResponseWriter, r *http.Request) error {
	items, err := s.Comm.Contacts(r.Context(), r.URL.Query().Get("audience"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(items))
	return nil
}

func (s *Server) getContact(w http.ResponseWriter, r *http.Request) error {
	c, err := s.Comm.Contact(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) updateContact(w http.ResponseWriter, r *http.Request) error {
	var req contactFields
	if err := decode(w, r, &req); err != nil {
		return err
	}
	c := req.contact()
	c.ID = r.PathValue("id")
	if err := s.Comm.UpdateContact(r.Context(), c); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) deleteContact(w http.ResponseWriter, r *http.Request) error {
	if err := s.Comm.DeleteContact(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listPolicies(w http.ResponseWriter, r *http.Request) error {
	items, err := s.Comm.Policies(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(items))
	return nil
}

type policyRequest struct {
	Steps []comm.Step `json:"steps"`
}

func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) error {
	var req policyRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	p := &comm.Policy{Severity: r.PathValue("severity"), Steps: req.Steps}
	if err := s.Comm.SetPolicy(r.Context(), p); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryInt(r, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if d := q.Get("direction"); d != "" && d != comm.Inbound && d != comm.Outbound {
		return errs.Invalidf("direction", "direction must be inbound or outbound")
	}
	items, err := s.Comm.Messages(r.Context(), comm.MessageFilter{EscalationID: q.Get("escalation_id"), ContactID: q.Get("contact_id"),
		Channel: q.Get("channel"), Direction: q.Get("direction"), Limit: limit})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(items))
	return nil
}

func (s *Server) listEscalations(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryInt(r, "limit", 100, 1, 1000)
	if err != nil {
		return err
	}
	items, err := s.Comm.Escalations(r.Context(), r.URL.Query().Get("status"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(items))
	return nil
}

func (s *Server) getEscalation(w http.ResponseWriter, r *http.Request) error {
	e, err := s.Comm.Escalation(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, e)
	return nil
}

type answerRequest struct {
	Decision string `json:"decision"` // approve, reject or instruct
	Text     string `json:"text,omitempty"`
}

// check checks the decision.
func (a *answerRequest) check() error {
	if !slices.Contains([]string{comm.DecisionApprove, comm.DecisionReject, comm.DecisionInstruct}, a.Decision) {
		return errs.Invalidf("decision", "decision must be approve, reject or instruct")
	}
	if a.Decision == comm.DecisionInstruct && strings.TrimSpace(a.Text) == "" {
		return errs.Invalidf("text", "an instruction needs text")
	}
	if len(a.Text) > 4000 {
		return errs.Invalidf("text", "text is longer than 4000 bytes")
	}
	return nil
}

func (s *Server) answerEscalation(w http.ResponseWriter, r *http.Request) error {
	if _, err := s.Comm.Escalation(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	var req answerRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	if err := req.check(); err != nil {
		return err
	}
	p, _ := auth.PrincipalFrom(r.Context())
	res, err := s.Comm.Answer(r.Context(), comm.Answer{ApprovalID: r.PathValue("id"), UserID: p.UserID, Channel: comm.ChannelApp,
		Decision: req.Decision, Text: req.Text})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) commChannels(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, list(s.Comm.ChannelStatus()))
	return nil
}

type noticeRequest struct {
	Audience string   `json:"audience"`
	Channels []string `json:"channels"`
	Severity string   `json:"severity,omitempty"`
	Subject  string   `json:"subject,omitempty"`
	Body     string   `json:"body"`
	Key      string   `json:"key"`
}

func (s *Server) postNotice(w http.ResponseWriter, r *http.Request) error {
	var req noticeRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	n := comm.Notice(req)
	if err := s.Comm.Notify(r.Context(), n); err != nil {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// commSocket streams the signed-in user's in-app pushes (escalations, approvals, notices) as JSON text
// frames, one event each.
func (s *Server) commSocket(w http.ResponseWriter, r *http.Request) error {
	p, _ := auth.PrincipalFrom(r.Context())
	tid, _ := tenant.ID(r.Context())
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: s.WSOrigins, CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return nil // Accept has answered the client
	}
	defer c.CloseNow()
	sub := s.Comm.Hub().Subscribe(tid, p.UserID)
	defer s.Comm.Hub().Unsubscribe(sub)
	ctx := c.CloseRead(r.Context())
	// Tell the client it is subscribed: nothing published from now on is missed.
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"seq":0,"type":"hello","text":""}`)); err != nil {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			c.Close(websocket.StatusNormalClosure, "")
			return nil
		case b, ok := <-sub.C:
			if !ok {
				c.Close(websocket.StatusTryAgainLater, "too slow; reconnect")
				return nil
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := c.Write(wctx, websocket.MessageText, b)
			cancel()
			if err != nil {
				return nil
			}
		}
	}
}

// webhookURL is the URL a provider called, as it knows it: the public URL when configured (behind a
// proxy the request's own Host is not what the provider signed), else rebuilt from the request.
func (s *Server) webhookURL(r *http.Request) string {
	if base := s.Comm.PublicURL(); base != "" {
		return base + r.URL.RequestURI()
	}
	scheme := "http"
	if r.TLS != nil || (s.TrustProxy && r.Header.Get("X-Forwarded-Proto") == "https") {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}

var errBadSignature = errs.New(errs.Forbidden, "missing or invalid X-Twilio-Signature").
	WithHint("the webhook URL configured in Twilio must match IT0_PUBLIC_URL, and IT0_TWILIO_AUTH_TOKEN the account's token")

// twilioForm parses a Twilio webhook and checks its signature.
func (s *Server) twilioForm(w http.ResponseWriter, r *http.Request) (map[string][]string, error) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		return nil, errs.New(errs.Invalid, "the body is not a form")
	}
	if !s.Comm.ValidTwilio(s.webhookURL(r), r.PostForm, r.Header.Get("X-Twilio-Signature")) {
		s.log.WarnContext(r.Context(), "twilio webhook with a bad signature refused", slog.String("request_id", requestID(r.Context())))
		return nil, errBadSignature
	}
	return r.PostForm, nil
}

func writeTwiML(w http.ResponseWriter, twiml string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	io.WriteString(w, twiml)
}

// twilioSMS takes an SMS answer; the reply tells the sender what happened.
func (s *Server) twilioSMS(w http.ResponseWriter, r *http.Request) error {
	form, err := s.twilioForm(w, r)
	if err != nil {
		return err
	}
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	key := ""
	if sid := get("MessageSid"); sid != "" {
		key = "twilio:" + sid
	}
	reply, err := s.Comm.InboundText(r.Context(), comm.ChannelSMS, get("From"), get("Body"), key)
	if err != nil && reply == "" {
		return err // storage trouble: a 5xx makes Twilio retry
	}
	writeTwiML(w, twilio.Reply(reply, false))
	return nil
}

// twilioVoice takes the keypad digit gathered on an escalation call.
func (s *Server) twilioVoice(w http.ResponseWriter, r *http.Request) error {
	form, err := s.twilioForm(w, r)
	if err != nil {
		return err
	}
	get := func(k string) string {
		if v := form[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	// On a call IT0 placed, To is the contact's number.
	reply, err := s.Comm.InboundDigits(r.Context(), r.URL.Query().Get("escalation"), get("To"), get("Digits"), "twilio:"+get("CallSid")+":digits")
	if err != nil && reply == "" {
		return err
	}
	writeTwiML(w, twilio.Reply(reply, true))
	return nil
}

// telegramWebhook takes button presses and replies; it answers 200 to anything it authenticated, so
// Telegram does not retry refusals.
func (s *Server) telegramWebhook(w http.ResponseWriter, r *http.Request) error {
	if !s.Comm.ValidTelegram(r.Header.Get("X-Telegram-Bot-Api-Secret-Token")) {
		return errs.New(errs.Forbidden, "missing or invalid X-Telegram-Bot-Api-Secret-Token").
			WithHint("setWebhook's secret_token must equal IT0_TELEGRAM_WEBHOOK_SECRET")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
	if err != nil {
		return errs.New(errs.TooLarge, "the update is too large")
	}
	if err := checkBody(body); err != nil {
		return err
	}
	u, err := telegram.ParseUpdate(body)
	if err != nil {
		return errs.New(errs.Invalid, "the body is not a Telegram update")
	}
	key := fmt.Sprintf("telegram:%d", u.UpdateID)
	var reply string
	switch {
	case u.CallbackID != "":
		reply, err = s.Comm.InboundButton(r.Context(), comm.ChannelTelegram, u.FromID, u.CallbackData, key)
		s.Comm.AnswerTelegramCallback(r.Context(), u.CallbackID, reply)
	case u.Text != "":
		reply, err = s.Comm.InboundText(r.Context(), comm.ChannelTelegram, u.FromID, u.Text, key)
	}
	if err != nil && reply == "" && !errs.Is(err, errs.Invalid) {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"result": reply})
	return nil
}

var answerPageTmpl = template.Must(template.New("answer").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>IT0</title></head>
<body style="font-family:sans-serif;max-width:40em;margin:2em auto">
<h2>{{.Title}}</h2>
{{if .Summary}}<pre style="white-space:pre-wrap">{{.Summary}}</pre>{{end}}
{{if .Form}}<form method="post">
<p><label>{{.TextLabel}}<br><textarea name="text" rows="3" cols="50"></textarea></label></p>
<p><button type="submit">{{.Button}}</button></p></form>{{end}}
</body></html>`))

type answerPage struct {
	Title, Summary, TextLabel, Button string
	Form                              bool
}

func renderPage(w http.ResponseWriter, status int, p answerPage) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	answerPageTmpl.Execute(w, p)
}

// answerPage shows what a signed link will do. It changes nothing: mail scanners fetch links, so only the
// confirmation (a POST) answers.
func (s *Server) answerPage(w http.ResponseWriter, r *http.Request) error {
	info, err := s.Comm.PeekLink(r.Context(), r.PathValue("token"))
	var e *errs.Error
	if errors.As(err, &e) {
		renderPage(w, statusOf[e.Code], answerPage{Title: e.Message})
		return nil
	} else if err != nil {
		return err
	}
	verb := comm.T(info.Locale, "approve")
	if info.Decision == comm.DecisionReject {
		verb = comm.T(info.Locale, "reject")
	}
	renderPage(w, http.StatusOK, answerPage{Title: comm.T(info.Locale, "link_confirm") + ": " + verb, Summary: info.Summary,
		TextLabel: "Instruction / reason (optional)", Button: verb, Form: true})
	return nil
}

// answerLink uses a signed link.
func (s *Server) answerLink(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	r.ParseForm()
	res, err := s.Comm.AnswerLink(r.Context(), r.PathValue("token"), r.PostForm.Get("text"))
	var e *errs.Error
	switch {
	case err == nil:
		renderPage(w, http.StatusOK, answerPage{Title: "OK: " + res.Decision})
	case errors.As(err, &e):
		renderPage(w, statusOf[e.Code], answerPage{Title: e.Message})
	default:
		return err
	}
	return nil
}
