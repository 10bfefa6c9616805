package httpapi

import (
	"errors"
	"io"
	"log/slog"
	"net/http"

	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/comm/wecom"
	"github.com/it0/it0/internal/errs"
)

// wecomRoutes are WeCom's callback: the URL check (GET) and the encrypted messages (POST) by which WeCom
// users answer escalations, as Telegram users do. Both are public and authenticated by msg_signature, the
// timestamp window and the nonce (package wecom).
func (s *Server) wecomRoutes() []route {
	if s.Comm == nil {
		return nil
	}
	const p = "/api/v1/wecom/callback"
	return []route{
		{method: "GET", path: p, summary: "WeCom callback URL check (msg_signature over echostr): answers the decrypted echostr as text", public: true,
			handler: s.wecomVerify},
		{method: "POST", path: p, summary: "WeCom callback (encrypted XML, msg_signature): replies Y/N/text and card buttons answer escalations", public: true,
			handler: s.wecomMessage},
	}
}

var errWeComOff = errs.New(errs.Forbidden, "the WeCom callback is not configured").
	WithHint("set IT0_WECOM_CORP_ID, IT0_WECOM_CALLBACK_TOKEN and IT0_WECOM_ENCODING_AES_KEY as in the app's API receive settings")

func (s *Server) wecomQuery(r *http.Request) wecom.Query {
	q := r.URL.Query()
	return wecom.Query{Signature: q.Get("msg_signature"), Timestamp: q.Get("timestamp"), Nonce: q.Get("nonce")}
}

// wecomRefused maps a refused callback to the error envelope and logs it: a bad signature or payload is a
// forgery or a misconfiguration, worth a warning either way.
func (s *Server) wecomRefused(r *http.Request, err error) error {
	s.log.WarnContext(r.Context(), "wecom callback refused", slog.String("reason", err.Error()), slog.String("request_id", requestID(r.Context())))
	switch {
	case errors.Is(err, wecom.ErrMalformed):
		return errs.New(errs.Invalid, "%s", err.Error())
	case errors.Is(err, wecom.ErrReplayed):
		return errs.New(errs.Conflict, "%s", err.Error())
	case errors.Is(err, wecom.ErrStale):
		return errs.New(errs.Forbidden, "%s", err.Error()).WithHint("the server's clock must be within 5 minutes of WeCom's")
	}
	// Signature, payload and receiver failures look alike from outside: one message tells a forger nothing.
	return errs.New(errs.Forbidden, "invalid WeCom callback signature or payload").
		WithHint("IT0_WECOM_CALLBACK_TOKEN, IT0_WECOM_ENCODING_AES_KEY and IT0_WECOM_CORP_ID must match the app's API receive settings")
}

// wecomVerify answers the URL check WeCom makes when the callback URL is saved.
func (s *Server) wecomVerify(w http.ResponseWriter, r *http.Request) error {
	if s.WeCom == nil {
		return errWeComOff
	}
	echo, err := s.WeCom.VerifyURL(s.wecomQuery(r), r.URL.Query().Get("echostr"))
	if err != nil {
		return s.wecomRefused(r, err)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(echo)
	return nil
}

// wecomMessage takes a WeCom user's text reply or card button press and answers with an encrypted
// passive reply saying what happened. Anything else (images, entering the app) is acknowledged with an
// empty body, as WeCom expects.
func (s *Server) wecomMessage(w http.ResponseWriter, r *http.Request) error {
	if s.WeCom == nil {
		return errWeComOff
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 256<<10))
	if err != nil {
		return errs.New(errs.TooLarge, "the callback body is too large")
	}
	q := s.wecomQuery(r)
	m, err := s.WeCom.Open(q, body)
	if err != nil {
		return s.wecomRefused(r, err)
	}
	ctx := r.Context()
	var reply string
	switch {
	case m.MsgType == "text":
		key := ""
		if m.MsgID != "" {
			key = "wecom:" + m.MsgID
		}
		reply, err = s.Comm.InboundText(ctx, comm.ChannelWeCom, m.FromUserName, m.Content, key)
	case m.MsgType == "event" && m.Event == wecom.EventCard:
		// A card's buttons carry "y:<approval id>" / "n:<approval id>" like Telegram's; a card answers once.
		reply, err = s.Comm.InboundButton(ctx, comm.ChannelWeCom, m.FromUserName, m.EventKey, "wecom:card:"+m.TaskID+":"+m.FromUserName)
	default:
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if err != nil && reply == "" && !errs.Is(err, errs.Invalid) {
		// Storage trouble: give the nonce back so that WeCom's retry is taken.
		s.WeCom.Release(q)
		return err
	}
	if reply == "" {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	out, err := s.WeCom.Reply(m, reply)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/xml; charset=utf-8")
	w.Write(out)
	return nil
}
