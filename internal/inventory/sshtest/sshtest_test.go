package sshtest_test

import (
	"net"
	"os"
	"strings"
	"testing"

	"github.com/it0/it0/internal/inventory/sshtest"
)

func TestStart(t *testing.T) {
	t.Parallel()

	// Ensure a server listens where it says, speaks SSH, and logs.
	t.Run("OK", func(t *testing.T) {
		t.Parallel()
		s := sshtest.Start(t, sshtest.Options{Addr: "127.0.0.3"})
		if s.Addr != "127.0.0.3" || s.Port == 0 || !strings.HasPrefix(s.HostKey, "ssh-ed25519 ") || s.User == "" {
			t.Fatalf("server %+v", s)
		}
		if !strings.Contains(s.UserKey.Reveal(), "OPENSSH PRIVATE KEY") {
			t.Fatal("UserKey is not a PEM key")
		}
		c, err := net.Dial("tcp", s.HostPort())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		banner := make([]byte, 8)
		if _, err := c.Read(banner); err != nil || string(banner) != "SSH-2.0-" {
			t.Fatalf("banner %q, %v", banner, err)
		}
		if _, err := os.Stat(s.LogPath); err != nil {
			t.Fatal(err)
		}
		if err := s.Stop(); err != nil {
			t.Fatal(err)
		}
		if _, err := net.Dial("tcp", s.HostPort()); err == nil {
			t.Fatal("still listening after Stop")
		}
	})

	// Ensure StartMany spreads servers over processes of at most 16
	// listeners, all on distinct ports.
	t.Run("Many", func(t *testing.T) {
		t.Parallel()
		servers := sshtest.StartMany(t, 40, sshtest.Options{})
		ports := map[int]bool{}
		logs := map[string]int{}
		for _, s := range servers {
			ports[s.Port] = true
			logs[s.LogPath]++
		}
		if len(servers) != 40 || len(ports) != 40 || len(logs) != 3 {
			t.Fatalf("%d servers, %d ports, %d processes", len(servers), len(ports), len(logs))
		}
		for path, n := range logs {
			if n > 16 {
				t.Fatalf("%s serves %d ports", path, n)
			}
		}
	})
}
