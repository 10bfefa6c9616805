// Package validate checks the deployment assets offline, with the real libraries behind the tools: the
// kustomize manifests are built with sigs.k8s.io/kustomize/api (what `kubectl apply -k` runs) and every
// object is decoded strictly into the Kubernetes API types; docker-compose.yml is loaded with
// compose-go (what `docker compose config` runs), schema validation and interpolation included; kong.yml
// is validated by Kong's own decK (`deck validate`, offline; Debian's deck package) and decoded strictly
// into the subset of Kong's declarative format it uses. It is a module of its own so
// the server's build does not carry these dependencies; .ci/run runs it.
package validate

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// TestKustomize builds deploy/k8s and checks what a cluster would receive.
func TestKustomize(t *testing.T) {
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "../k8s")
	if err != nil {
		t.Fatalf("kustomize build: %v", err)
	}
	var (
		deps     []appsv1.Deployment
		svcs     []corev1.Service
		ings     []networkingv1.Ingress
		pdbs     []policyv1.PodDisruptionBudget
		cms      []corev1.ConfigMap
		decodeAs = func(y []byte, into any) {
			t.Helper()
			if err := yaml.UnmarshalStrict(y, into); err != nil {
				t.Fatalf("strict decode: %v\n%s", err, y)
			}
		}
	)
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		switch r.GetKind() {
		case "Deployment":
			var d appsv1.Deployment
			decodeAs(y, &d)
			deps = append(deps, d)
		case "Service":
			var s corev1.Service
			decodeAs(y, &s)
			svcs = append(svcs, s)
		case "Ingress":
			var i networkingv1.Ingress
			decodeAs(y, &i)
			ings = append(ings, i)
		case "PodDisruptionBudget":
			var p policyv1.PodDisruptionBudget
			decodeAs(y, &p)
			pdbs = append(pdbs, p)
		case "ConfigMap":
			var c corev1.ConfigMap
			decodeAs(y, &c)
			cms = append(cms, c)
		default:
			t.Errorf("unexpected kind %s", r.GetKind())
		}
	}
	if len(deps) == 0 || len(svcs) == 0 || len(ings) != 1 || len(pdbs) == 0 || len(cms) != 1 {
		t.Fatalf("got %d deployments, %d services, %d ingresses, %d PDBs, %d config maps", len(deps), len(svcs), len(ings), len(pdbs), len(cms))
	}
	// One Deployment per deploy target (IT0_TARGET), together every target.
	targetOf := map[string]string{} // deployment → its target
	for _, d := range deps {
		for _, c := range d.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.Name == "IT0_TARGET" {
					targetOf[d.Name] = e.Value
				}
			}
		}
	}
	for _, want := range []string{"api", "agent", "ops", "monitor", "comm", "voice"} {
		var n int
		for _, got := range targetOf {
			for _, t := range strings.Split(got, ",") {
				if strings.TrimSpace(t) == want || strings.TrimSpace(t) == "all" {
					n++
				}
			}
		}
		if n == 0 {
			t.Errorf("no Deployment runs the %s target (IT0_TARGET): %v", want, targetOf)
		}
	}
	for _, d := range deps {
		pod := d.Spec.Template
		if sc := pod.Spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s: pods must run as non-root", d.Name)
		}
		sel, err := metav1LabelSelector(d.Spec.Selector)
		if err != nil || !sel.Matches(labels.Set(pod.Labels)) {
			t.Errorf("%s: the selector does not match the pod labels (%v)", d.Name, err)
		}
		for _, c := range pod.Spec.Containers {
			if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("%s/%s: readiness probe must be GET /readyz", d.Name, c.Name)
			}
			if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
				t.Errorf("%s/%s: liveness probe must be GET /healthz", d.Name, c.Name)
			}
			if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
				t.Errorf("%s/%s: the root filesystem must be read-only", d.Name, c.Name)
			}
			// Secrets by reference only: no secret-looking variable with a literal value.
			for _, e := range c.Env {
				if e.Value != "" && isSecretName(e.Name) {
					t.Errorf("%s/%s: %s has a literal value; take it from a Secret", d.Name, c.Name, e.Name)
				}
			}
			if !slices.ContainsFunc(c.EnvFrom, func(e corev1.EnvFromSource) bool { return e.SecretRef != nil }) {
				t.Errorf("%s/%s: no Secret referenced for the credentials", d.Name, c.Name)
			}
			if !slices.ContainsFunc(c.EnvFrom, func(e corev1.EnvFromSource) bool {
				return e.ConfigMapRef != nil && e.ConfigMapRef.Name == cms[0].Name
			}) {
				t.Errorf("%s/%s: does not reference the generated config map %s", d.Name, c.Name, cms[0].Name)
			}
		}
		covered := slices.ContainsFunc(pdbs, func(p policyv1.PodDisruptionBudget) bool {
			s, err := metav1LabelSelector(p.Spec.Selector)
			return err == nil && s.Matches(labels.Set(pod.Labels))
		})
		if !covered {
			t.Errorf("%s: no PodDisruptionBudget selects its pods", d.Name)
		}
	}
	for _, s := range svcs {
		if !slices.ContainsFunc(deps, func(d appsv1.Deployment) bool {
			return labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels))
		}) {
			t.Errorf("service %s selects no deployment's pods", s.Name)
		}
	}
	ing := ings[0]
	for _, key := range []string{"nginx.ingress.kubernetes.io/proxy-read-timeout", "nginx.ingress.kubernetes.io/proxy-send-timeout"} {
		if v, _ := strconv.Atoi(ing.Annotations[key]); v < 3600 {
			t.Errorf("ingress %s = %q: WebSocket streams need at least 3600 s", key, ing.Annotations[key])
		}
	}
	// Each path goes to a Service whose pods run the target that serves it (internal/app targets.go).
	servedBy := map[string]string{"/api/v1": "api", "/ws": "api", "/ws/voice": "voice", "/api/v1/twilio/media": "voice", "/api/v1/voice": "voice"}
	runs := func(svc, target string) bool {
		for _, s := range svcs {
			if s.Name != svc {
				continue
			}
			for _, d := range deps {
				if !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
					continue
				}
				for _, t := range strings.Split(targetOf[d.Name], ",") {
					if t = strings.TrimSpace(t); t == target || t == "all" {
						return true
					}
				}
			}
		}
		return false
	}
	var paths []string
	for _, r := range ing.Spec.Rules {
		for _, p := range r.HTTP.Paths {
			paths = append(paths, p.Path)
			if p.Backend.Service == nil {
				t.Errorf("ingress path %s has no service", p.Path)
				continue
			}
			if want, ok := servedBy[p.Path]; ok && !runs(p.Backend.Service.Name, want) {
				t.Errorf("ingress path %s goes to service %s, whose pods do not run the %s target", p.Path, p.Backend.Service.Name, want)
			}
		}
	}
	for want := range servedBy {
		if !slices.Contains(paths, want) {
			t.Errorf("ingress has no path %s (has %v)", want, paths)
		}
	}
}

func isSecretName(name string) bool {
	for _, s := range []string{"SECRET", "KEY", "PASSWORD", "TOKEN", "DATABASE_URL", "REDIS_URL"} {
		if strings.Contains(name, s) {
			return true
		}
	}
	return false
}

// composeEnv is what deploy/.env would hold.
var composeEnv = []string{"POSTGRES_PASSWORD=pw", "IT0_JWT_SECRET=" + strings.Repeat("j", 32), "IT0_AUDIT_KEY=" + strings.Repeat("a", 32),
	"IT0_VAULT_MASTER_KEY=" + strings.Repeat("ab", 32)}

// TestCompose loads docker-compose.yml as `docker compose config` does (schema, interpolation).
func TestCompose(t *testing.T) {
	ctx := context.Background()
	load := func(env []string) error {
		opts, err := cli.NewProjectOptions([]string{"../docker-compose.yml"}, cli.WithEnv(env), cli.WithWorkingDirectory(".."))
		if err != nil {
			return err
		}
		p, err := opts.LoadProject(ctx)
		if err != nil {
			return err
		}
		for _, name := range []string{"it0-1", "it0-2", "postgres", "redis", "kong"} {
			if _, err := p.GetService(name); err != nil {
				t.Errorf("service %s: %v", name, err)
			}
		}
		for _, name := range []string{"it0-1", "it0-2"} {
			s, _ := p.GetService(name)
			for _, k := range []string{"IT0_DATABASE_URL", "IT0_REDIS_URL", "IT0_JWT_SECRET"} {
				if v := s.Environment[k]; v == nil || *v == "" {
					t.Errorf("%s: %s is empty", name, k)
				}
			}
			if s.ReadOnly != true {
				t.Errorf("%s: the container filesystem should be read-only", name)
			}
		}
		kong, _ := p.GetService("kong")
		if v := kong.Environment["KONG_DATABASE"]; v == nil || *v != "off" {
			t.Errorf("kong must run DB-less")
		}
		return nil
	}
	if err := load(composeEnv); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	// A missing secret stops compose with a message naming it, instead of starting with an empty one.
	if err := load(composeEnv[1:]); err == nil || !strings.Contains(err.Error(), "POSTGRES_PASSWORD") {
		t.Errorf("without POSTGRES_PASSWORD: %v", err)
	}
}

// kongConfig is the part of Kong's declarative (DB-less) format that kong.yml uses. Strict decoding
// rejects any key outside it, which catches misspelt fields that Kong would refuse at start.
type kongConfig struct {
	FormatVersion string         `json:"_format_version"`
	Upstreams     []kongUpstream `json:"upstreams"`
	Services      []kongService  `json:"services"`
}

type kongUpstream struct {
	Name      string `json:"name"`
	Algorithm string `json:"algorithm"`
	Targets   []struct {
		Target string `json:"target"`
	} `json:"targets"`
	Healthchecks struct {
		Active struct {
			Type     string `json:"type"`
			HTTPPath string `json:"http_path"`
			Healthy  struct {
				Interval  int `json:"interval"`
				Successes int `json:"successes"`
			} `json:"healthy"`
			Unhealthy struct {
				Interval     int `json:"interval"`
				HTTPFailures int `json:"http_failures"`
				TCPFailures  int `json:"tcp_failures"`
				Timeouts     int `json:"timeouts"`
			} `json:"unhealthy"`
		} `json:"active"`
	} `json:"healthchecks"`
}

type kongService struct {
	Name           string       `json:"name"`
	Host           string       `json:"host"`
	Port           int          `json:"port"`
	Protocol       string       `json:"protocol"`
	ConnectTimeout int          `json:"connect_timeout"`
	ReadTimeout    int          `json:"read_timeout"`
	WriteTimeout   int          `json:"write_timeout"`
	Routes         []kongRoute  `json:"routes"`
	Plugins        []kongPlugin `json:"plugins"`
}

type kongRoute struct {
	Name         string   `json:"name"`
	Paths        []string `json:"paths"`
	StripPath    bool     `json:"strip_path"`
	PreserveHost bool     `json:"preserve_host"`
	Protocols    []string `json:"protocols"`
}

type kongPlugin struct {
	Name   string         `json:"name"`
	Config map[string]any `json:"config"`
}

// TestKong checks kong.yml: routes for /api/v1 and /ws to the replicas' upstream, rate limiting and CORS
// on each, long timeouts for WebSockets, and upstream targets that are compose services.
func TestKong(t *testing.T) {
	b, err := os.ReadFile("../kong/kong.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c kongConfig
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		t.Fatalf("kong.yml: %v", err)
	}
	if c.FormatVersion != "3.0" {
		t.Errorf("_format_version %q, want 3.0", c.FormatVersion)
	}
	if len(c.Upstreams) != 1 || c.Upstreams[0].Healthchecks.Active.HTTPPath != "/readyz" {
		t.Fatalf("want one upstream with active health checks on /readyz: %+v", c.Upstreams)
	}
	var targets []string
	for _, tg := range c.Upstreams[0].Targets {
		targets = append(targets, tg.Target)
	}
	if !slices.Equal(targets, []string{"it0-1:8000", "it0-2:8000"}) {
		t.Errorf("upstream targets %v, want the compose replicas", targets)
	}
	routes := map[string]kongService{}
	for _, s := range c.Services {
		if s.Host != c.Upstreams[0].Name {
			t.Errorf("service %s goes to %s, not the upstream", s.Name, s.Host)
		}
		var plugins []string
		for _, p := range s.Plugins {
			plugins = append(plugins, p.Name)
			if !slices.Contains([]string{"rate-limiting", "cors"}, p.Name) {
				t.Errorf("service %s: plugin %s is not checked here", s.Name, p.Name)
			}
		}
		for _, want := range []string{"rate-limiting", "cors"} {
			if !slices.Contains(plugins, want) {
				t.Errorf("service %s has no %s", s.Name, want)
			}
		}
		for _, r := range s.Routes {
			if r.StripPath {
				t.Errorf("route %s strips its path: IT0 serves under the full path", r.Name)
			}
			for _, p := range r.Paths {
				routes[p] = s
			}
		}
	}
	for _, p := range []string{"/api/v1", "/ws"} {
		if _, ok := routes[p]; !ok {
			t.Errorf("no route for %s", p)
		}
	}
	if ws := routes["/ws"]; ws.ReadTimeout < 3_600_000 || ws.WriteTimeout < 3_600_000 {
		t.Errorf("/ws timeouts %d/%d ms: WebSocket streams need an hour", ws.ReadTimeout, ws.WriteTimeout)
	}
}

// TestKongDeck validates kong.yml with decK, Kong's configuration tool, offline (`deck validate` reads
// the file against Kong's entity schemas and checks the references between entities; it talks to no Kong).
// A copy with a misspelt route field must be refused, so a decK that accepts anything fails the test.
// Under CI=true a missing deck fails the test; elsewhere it skips.
func TestKongDeck(t *testing.T) {
	deck := os.Getenv("IT0_DECK")
	if deck == "" {
		deck, _ = exec.LookPath("deck")
	}
	if deck == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("deck is not installed (apt-get install deck): CI validates kong.yml with it")
		}
		t.Skip("deck is not installed (apt-get install deck)")
	}
	validate := func(path string) (string, error) {
		out, err := exec.Command(deck, "validate", "--no-color", "-s", path).CombinedOutput()
		return string(out), err
	}
	if out, err := validate("../kong/kong.yml"); err != nil {
		t.Fatalf("deck validate kong.yml: %v\n%s", err, out)
	}
	b, err := os.ReadFile("../kong/kong.yml")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(b), "strip_path:", "strip_paths:", 1)
	if bad == string(b) {
		t.Fatal("kong.yml has no strip_path to misspell")
	}
	badPath := filepath.Join(t.TempDir(), "kong.yml")
	if err := os.WriteFile(badPath, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := validate(badPath); err == nil || !strings.Contains(out, "strip_paths") {
		t.Errorf("deck accepted a misspelt field (err %v):\n%s", err, out)
	}
}
