package checks

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/inventory"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
)

// maxProbeBody bounds how much of an HTTP answer a check reads and matches.
const maxProbeBody = 1 << 20

// prober runs one probe of each type. It holds what is shared between runs: HTTP transports, the ICMP
// capability of this host, and the inventory for SSH.
type prober struct {
	now      func() time.Time
	inv      Inventory
	rootCAs  *x509.CertPool
	noICMP   bool // Config.DisableICMP
	initOnce sync.Once
	verify   *http.Transport // verifies certificates

	icmpOnce sync.Once
	icmpNet  string // "udp4" (unprivileged ping socket), "ip4:icmp" (raw, needs CAP_NET_RAW) or ""
	icmpWhy  string // why ICMP is unavailable
}

// probe runs c once and fills r (Status, Message and the type's details). It never returns an error: a
// failure to probe is a down result that says why.
func (p *prober) probe(ctx context.Context, c *Check, r *Result) {
	ctx, cancel := context.WithTimeout(ctx, c.Timeout())
	defer cancel()
	r.Status = Down
	switch c.Type {
	case TypeHTTP:
		p.probeHTTP(ctx, c, r)
	case TypeTCP:
		probeTCP(ctx, c.Target, r)
	case TypePing:
		p.probePing(ctx, c, r)
	case TypeSSH:
		p.probeSSH(ctx, c, r)
	case TypeCustom:
		p.probeCustom(ctx, c, r)
	default:
		r.Message = fmt.Sprintf("unknown check type %q", c.Type)
	}
	if ctx.Err() != nil && r.Status == Down && !strings.Contains(r.Message, "timeout") {
		r.Message = fmt.Sprintf("timeout after %ds: %s", c.TimeoutSeconds, r.Message)
	}
}

func (p *prober) transport() *http.Transport {
	p.initOnce.Do(func() {
		p.verify = &http.Transport{
			Proxy: http.ProxyFromEnvironment,
			// Every run opens a fresh connection: a check must see DNS, connect and handshake failures,
			// which a pooled connection would hide.
			DisableKeepAlives:   true,
			TLSHandshakeTimeout: 10 * time.Second,
			// Certificates are verified at the checker's clock, so expiry and validity agree with it.
			TLSClientConfig: &tls.Config{RootCAs: p.rootCAs, Time: p.now},
		}
	})
	return p.verify
}

func (p *prober) probeHTTP(ctx context.Context, c *Check, r *Result) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Target, nil)
	if err != nil {
		r.Message = "bad URL: " + err.Error()
		return
	}
	req.Header.Set("User-Agent", "IT0-health-check/1")
	client := &http.Client{Transport: p.transport(),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		r.Message = "request failed: " + unwrapURLError(err)
		return
	}
	defer resp.Body.Close()
	r.StatusCode = resp.StatusCode
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxProbeBody))
	if err != nil {
		r.Message = fmt.Sprintf("HTTP %d, reading the body failed: %v", resp.StatusCode, err)
		return
	}
	switch {
	case c.ExpectedStatus != 0 && resp.StatusCode != c.ExpectedStatus:
		r.Message = fmt.Sprintf("HTTP %d, want %d", resp.StatusCode, c.ExpectedStatus)
		return
	case c.ExpectedStatus == 0 && (resp.StatusCode < 200 || resp.StatusCode > 399):
		r.Message = fmt.Sprintf("HTTP %d, want 200–399", resp.StatusCode)
		return
	case c.BodyContains != "" && !strings.Contains(string(body), c.BodyContains):
		r.Message = fmt.Sprintf("HTTP %d, body does not contain %q", resp.StatusCode, clipText(c.BodyContains, 80))
		return
	case c.BodyRegex != "" && !regexp.MustCompile(c.BodyRegex).Match(body):
		r.Message = fmt.Sprintf("HTTP %d, body does not match /%s/", resp.StatusCode, clipText(c.BodyRegex, 80))
		return
	}
	r.Status, r.Message = Up, fmt.Sprintf("HTTP %d", resp.StatusCode)
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		leaf := resp.TLS.PeerCertificates[0]
		days := int(leaf.NotAfter.Sub(p.now()) / (24 * time.Hour))
		r.TLSDaysLeft = &days
		if c.TLSExpiryDays > 0 && days < c.TLSExpiryDays {
			msg := fmt.Sprintf("TLS certificate %s expires in %d days (%s), under the %d-day threshold", leaf.Subject.CommonName,
				days, leaf.NotAfter.UTC().Format("2006-01-02"), c.TLSExpiryDays)
			if c.TLSExpiryAction == TLSExpiryWarn {
				r.Warning = msg
			} else {
				r.Status, r.Message = Down, msg
			}
		}
	}
}

// unwrapURLError drops net/http's `Get "url":` prefix, which repeats the check's target.
func unwrapURLError(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) && ue.Unwrap() != nil {
		return ue.Unwrap().Error()
	}
	return err.Error()
}

// probeTCP connects to addr. The connection is closed with SO_LINGER 0 (a reset): at thousands of checks a
// minute, a polite close would leave a TIME_WAIT socket per run on the checker's side.
func probeTCP(ctx context.Context, addr string, r *Result) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		r.Message = "connect failed: " + dialError(err)
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
	r.Status, r.Message = Up, "connected to "+addr
}

func dialError(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// Ping methods reported in results.
const (
	PingICMP             = "icmp"              // raw ICMP socket (root or CAP_NET_RAW)
	PingICMPUnprivileged = "icmp-unprivileged" // Linux ping socket, allowed by net.ipv4.ping_group_range
	PingTCPFallback      = "tcp-fallback"      // ICMP not permitted here: a TCP connect instead
)

// icmpNetwork finds, once, how this process may send ICMP echo: an unprivileged ping socket when
// net.ipv4.ping_group_range includes our group, else a raw socket when we may open one.
func (p *prober) icmpNetwork() (string, string) {
	p.icmpOnce.Do(func() {
		if p.noICMP {
			p.icmpWhy = "ICMP is disabled in the configuration"
			return
		}
		var whys []string
		for _, network := range []string{"udp4", "ip4:icmp"} {
			c, err := icmp.ListenPacket(network, "0.0.0.0")
			if err == nil {
				c.Close()
				p.icmpNet = network
				return
			}
			whys = append(whys, network+": "+dialError(err))
		}
		p.icmpWhy = "ICMP not permitted (" + strings.Join(whys, "; ") + "; allow it with sysctl net.ipv4.ping_group_range or CAP_NET_RAW)"
	})
	return p.icmpNet, p.icmpWhy
}

func (p *prober) probePing(ctx context.Context, c *Check, r *Result) {
	network, why := p.icmpNetwork()
	var ip net.IP
	if network != "" {
		addrs, err := net.DefaultResolver.LookupIP(ctx, "ip4", c.Target)
		if err != nil || len(addrs) == 0 {
			why = "no IPv4 address for " + c.Target + " (ICMP is sent over IPv4 only)"
			network = ""
		} else {
			ip = addrs[0]
		}
	}
	if network == "" {
		port := c.FallbackPort
		if port == 0 {
			port = 22
		}
		r.Method = PingTCPFallback
		probeTCP(ctx, net.JoinHostPort(c.Target, strconv.Itoa(port)), r)
		r.Message += " (" + why + ")"
		return
	}
	r.Method = PingICMP
	if network == "udp4" {
		r.Method = PingICMPUnprivileged
	}
	rtt, err := pingOnce(ctx, network, ip)
	if err != nil {
		r.Message = "no echo reply from " + ip.String() + ": " + err.Error()
		return
	}
	r.Status, r.Message = Up, fmt.Sprintf("echo reply from %s in %.2f ms", ip, float64(rtt.Microseconds())/1000)
}

// pingOnce sends one ICMP echo request to ip and waits for its reply until ctx ends.
func pingOnce(ctx context.Context, network string, ip net.IP) (time.Duration, error) {
	conn, err := icmp.ListenPacket(network, "0.0.0.0")
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	var b [4]byte
	rand.Read(b[:])
	id, seq := int(binary.BigEndian.Uint16(b[:2])), int(binary.BigEndian.Uint16(b[2:]))
	msg := icmp.Message{Type: ipv4.ICMPTypeEcho, Body: &icmp.Echo{ID: id, Seq: seq, Data: []byte("IT0-health-check")}}
	wb, err := msg.Marshal(nil)
	if err != nil {
		return 0, err
	}
	var dst net.Addr = &net.IPAddr{IP: ip}
	if network == "udp4" {
		dst = &net.UDPAddr{IP: ip}
	}
	start := time.Now()
	if _, err := conn.WriteTo(wb, dst); err != nil {
		return 0, err
	}
	rb := make([]byte, 1500)
	for {
		n, peer, err := conn.ReadFrom(rb)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return 0, errors.New("timeout")
			}
			return 0, err
		}
		m, err := icmp.ParseMessage(1, rb[:n])
		if err != nil || m.Type != ipv4.ICMPTypeEchoReply {
			continue
		}
		echo, ok := m.Body.(*icmp.Echo)
		// A raw socket sees every echo reply to this host; an unprivileged one has its ID rewritten by the
		// kernel, which also delivers it only the replies to itself.
		if !ok || echo.Seq != seq || (network != "udp4" && echo.ID != id) || !peerIs(peer, ip) {
			continue
		}
		return time.Since(start), nil
	}
}

func peerIs(a net.Addr, ip net.IP) bool {
	switch x := a.(type) {
	case *net.IPAddr:
		return x.IP.Equal(ip)
	case *net.UDPAddr:
		return x.IP.Equal(ip)
	}
	return false
}

// probeSSH opens an SSH session to the server through its jump chain, hop by hop.
func (p *prober) probeSSH(ctx context.Context, c *Check, r *Result) {
	r.Method = "ssh"
	if p.inv == nil {
		r.Message = "the inventory is not running in this process"
		return
	}
	hops, err := p.inv.Check(ctx, c.ServerID)
	if err != nil {
		r.Message = err.Error()
		return
	}
	for _, h := range hops {
		if !h.OK {
			r.Message = fmt.Sprintf("hop %d (%s) failed", h.Hop, h.Name)
			if h.Stage != "" {
				r.Message += " at " + string(h.Stage)
			}
			r.Message += ": " + h.Error
			return
		}
	}
	if len(hops) == 0 {
		r.Message = "no hops to check"
		return
	}
	last := hops[len(hops)-1]
	r.Status, r.Message = Up, fmt.Sprintf("session established with %s through %d hop(s) in %d ms", last.Name, len(hops),
		last.Latency.Milliseconds())
}

// probeCustom runs the check's command on its server through the inventory, which classifies it again
// (a tenant's rules may have changed since the check was created) and runs it only at L0.
func (p *prober) probeCustom(ctx context.Context, c *Check, r *Result) {
	r.Method = "ssh"
	if p.inv == nil {
		r.Message = "the inventory is not running in this process"
		return
	}
	var got *inventory.ExecResult
	_, err := p.inv.Exec(ctx, inventory.ExecRequest{Selector: inventory.Selector{ServerIDs: []string{c.ServerID}}, Command: c.Command,
		Timeout: c.Timeout(), Parallelism: 1, AllowLevel: guard.L0, MaxOutputBytes: maxProbeBody},
		func(er inventory.ExecResult) { got = &er })
	if err != nil {
		r.Message = err.Error()
		return
	}
	if got == nil {
		r.Message = "the command produced no result"
		return
	}
	r.ExitCode = got.ExitCode
	switch {
	case got.Status == inventory.StatusBlocked || got.Status == inventory.StatusApprovalRequired:
		r.Message = fmt.Sprintf("refused: the command is L%d now (%s); custom checks run only L0 commands", got.RiskLevel, got.Reason)
	case got.ExitCode == nil:
		r.Message = got.Status
		if got.Error != "" {
			r.Message += ": " + got.Error
		}
	case *got.ExitCode != c.ExpectedExitCode:
		r.Message = fmt.Sprintf("exit code %d, want %d%s", *got.ExitCode, c.ExpectedExitCode, tail(got.Stderr))
	case c.OutputMatch != "" && !regexp.MustCompile(c.OutputMatch).MatchString(got.Stdout):
		r.Message = fmt.Sprintf("exit code %d, output does not match /%s/%s", *got.ExitCode, clipText(c.OutputMatch, 80), tail(got.Stdout))
	default:
		r.Status, r.Message = Up, fmt.Sprintf("exit code %d%s", *got.ExitCode, tail(got.Stdout))
	}
}

// tail is the end of a command's output for a result message.
func tail(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if len(s) > 200 {
		s = "…" + s[len(s)-200:]
	}
	return ": " + s
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
