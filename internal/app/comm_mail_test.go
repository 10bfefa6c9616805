package app

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// TestCommConfigMailAndWeCom: the SMTP AUTH/OAuth2 and WeCom callback settings load, bad combinations are
// reported by name, and none of their secrets shows when the config is logged.
func TestCommConfigMailAndWeCom(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string // setting names the error must name; none = valid
	}{
		{"Valid", map[string]string{"IT0_SMTP_AUTH": "CRAM-MD5", "IT0_SMTP_TLS": "opportunistic",
			"IT0_SMTP_OAUTH2_TOKEN_URL": "https://t.example/token", "IT0_SMTP_OAUTH2_CLIENT_ID": "c", "IT0_SMTP_OAUTH2_REFRESH_TOKEN": "refresh-x",
			"IT0_WECOM_CORP_ID": "ww1", "IT0_WECOM_CALLBACK_TOKEN": "cbtoken-x", "IT0_WECOM_ENCODING_AES_KEY": "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"}, nil},
		{"BadAuth", map[string]string{"IT0_SMTP_AUTH": "ntlm"}, []string{"IT0_SMTP_AUTH"}},
		{"XOAUTH2WithoutSource", map[string]string{"IT0_SMTP_AUTH": "xoauth2"}, []string{"IT0_SMTP_AUTH=xoauth2"}},
		{"OAuth2Incomplete", map[string]string{"IT0_SMTP_OAUTH2_CLIENT_SECRET": "secret-x"}, []string{"IT0_SMTP_OAUTH2_TOKEN_URL", "IT0_SMTP_OAUTH2_CLIENT_ID"}},
		{"OAuth2Several", map[string]string{"IT0_SMTP_OAUTH2_TOKEN_FILE": "/t", "IT0_SMTP_OAUTH2_CREDENTIALS_FILE": "/c"}, []string{"not several"}},
		{"WeComPartial", map[string]string{"IT0_WECOM_CALLBACK_TOKEN": "cbtoken-x"}, []string{"IT0_WECOM_ENCODING_AES_KEY", "IT0_WECOM_CORP_ID"}},
		{"WeComBadKey", map[string]string{"IT0_WECOM_CORP_ID": "ww1", "IT0_WECOM_CALLBACK_TOKEN": "cbtoken-x", "IT0_WECOM_ENCODING_AES_KEY": "short-x"},
			[]string{"IT0_WECOM_ENCODING_AES_KEY", "43 characters"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var c CommConfig
			c.load(func(k string) string { return tc.env[k] })
			err := errors.Join(c.validate()...)
			if len(tc.want) == 0 && err != nil {
				t.Errorf("valid config refused: %v", err)
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("validation lacks %q: %v", w, err)
				}
			}
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("config", slog.Any("comm", c))
			if strings.Contains(buf.String(), "-x") || strings.Contains(buf.String(), "jWmYm7") || (err != nil && strings.Contains(err.Error(), "-x")) {
				t.Errorf("a secret leaked: %s %v", buf.String(), err)
			}
		})
	}
}
