package app

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestCommConfig: IT0_* variables reach the comm config, bad values are reported by name, and no secret
// shows when the config is logged.
func TestCommConfig(t *testing.T) {
	t.Parallel()
	env := map[string]string{"IT0_TWILIO_ACCOUNT_SID": "AC1", "IT0_TWILIO_AUTH_TOKEN": "twilio-token-x", "IT0_TWILIO_PHONE_NUMBER": "5550006",
		"IT0_SMTP_PORT": "99999", "IT0_SMTP_TLS": "ssl", "IT0_SMTP_PASSWORD": "smtp-pass-x", "IT0_TELEGRAM_BOT_TOKEN": "tg-token-x",
		"IT0_WECOM_AGENT_ID": "abc", "IT0_WECOM_SECRET": "wecom-secret-x", "IT0_FCM_CREDENTIALS_FILE": "/nonexistent.json"}
	var c CommConfig
	c.load(func(k string) string { return env[k] })
	if c.TwilioAccountSID != "AC1" || c.TwilioAuthToken.Reveal() != "twilio-token-x" || c.FCMCredentialsFile != "/nonexistent.json" {
		t.Errorf("loaded %+v", c)
	}
	err := errors.Join(c.validate()...)
	for _, name := range []string{"IT0_SMTP_PORT", "IT0_SMTP_TLS", "IT0_WECOM_AGENT_ID", "IT0_TWILIO_PHONE_NUMBER"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("validation lacks %s: %v", name, err)
		}
	}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", slog.Any("comm", c))
	if strings.Contains(buf.String(), "-x") {
		t.Errorf("a secret leaked: %s", buf.String())
	}
	if string(linkSecret("a")) == string(linkSecret("b")) || len(linkSecret("a")) != 32 {
		t.Error("link secret derivation")
	}
}
