package email

import (
	"errors"
	"testing"

	"github.com/wneessen/go-mail/smtp"
)

// TestMechAuthUnencrypted checks the rule the loopback test servers cannot exercise: no password or token
// goes to a remote server over plain text, and auto then takes only CRAM-MD5.
func TestMechAuthUnencrypted(t *testing.T) {
	t.Parallel()
	all := []string{"PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"}
	for _, tc := range []struct {
		name, mode string
		info       smtp.ServerInfo
		wantMech   string // "" = refused
		wantErr    error
	}{
		{"PlainRemote", AuthPlain, smtp.ServerInfo{Name: "smtp.example.com", Auth: all}, "", errUnencrypted},
		{"LoginRemote", AuthLogin, smtp.ServerInfo{Name: "smtp.example.com", Auth: all}, "", errUnencrypted},
		{"XOAUTH2Remote", AuthXOAUTH2, smtp.ServerInfo{Name: "smtp.example.com", Auth: all}, "", errUnencrypted},
		{"CramRemote", AuthCramMD5, smtp.ServerInfo{Name: "smtp.example.com", Auth: all}, "CRAM-MD5", nil},
		{"AutoRemote", AuthAuto, smtp.ServerInfo{Name: "smtp.example.com", Auth: all}, "CRAM-MD5", nil},
		{"AutoRemoteNoCram", AuthAuto, smtp.ServerInfo{Name: "smtp.example.com", Auth: []string{"PLAIN", "LOGIN"}}, "", errUnencrypted},
		{"PlainTLS", AuthPlain, smtp.ServerInfo{Name: "smtp.example.com", TLS: true, Auth: all}, "PLAIN", nil},
		{"AutoTLS", AuthAuto, smtp.ServerInfo{Name: "smtp.example.com", TLS: true, Auth: []string{"login", "cram-md5"}}, "LOGIN", nil},
		{"PlainLoopback", AuthPlain, smtp.ServerInfo{Name: "::1", Auth: all}, "PLAIN", nil},
		{"NotOffered", AuthXOAUTH2, smtp.ServerInfo{Name: "smtp.example.com", TLS: true, Auth: []string{"PLAIN"}}, "", errNotOffered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := &mechAuth{mode: tc.mode, user: "u", secret: "s", host: tc.info.Name}
			mech, _, err := a.Start(&tc.info)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Errorf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil || mech != tc.wantMech {
				t.Errorf("mech %q err %v, want %q", mech, err, tc.wantMech)
			}
		})
	}
}
