package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/guard"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/inventory/sshexec"
	"github.com/it0/it0/internal/vault"
)

// serverFields are the writable fields of a server; pointers tell PATCH which ones were sent.
type serverFields struct {
	Name          *string            `json:"name"`
	Host          *string            `json:"host"`
	Port          *int               `json:"port"`
	Environment   *string            `json:"environment"`
	Role          *string            `json:"role"`
	ClusterID     *string            `json:"cluster_id"`
	SSHUser       *string            `json:"ssh_user"`
	CredentialID  *string            `json:"credential_id"`
	NetworkType   *string            `json:"network_type"`
	JumpServerID  *string            `json:"jump_server_id"`
	SSHOptions    *map[string]string `json:"ssh_options"`
	Tags          *[]string          `json:"tags"`
	Status        *string            `json:"status"`
	Description   *string            `json:"description"`
	HostKeyPolicy *string            `json:"host_key_policy"`
	HostKey       *string            `json:"host_key"`
}

// apply copies the fields that were sent onto s.
func (f *serverFields) apply(s *inventory.Server) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	set(&s.Name, f.Name)
	set(&s.Host, f.Host)
	set(&s.Environment, f.Environment)
	set(&s.Role, f.Role)
	set(&s.ClusterID, f.ClusterID)
	set(&s.SSHUser, f.SSHUser)
	set(&s.CredentialID, f.CredentialID)
	set(&s.NetworkType, f.NetworkType)
	set(&s.JumpServerID, f.JumpServerID)
	set(&s.Status, f.Status)
	set(&s.Description, f.Description)
	set(&s.HostKeyPolicy, f.HostKeyPolicy)
	set(&s.HostKey, f.HostKey)
	if f.Port != nil {
		s.Port = *f.Port
	}
	if f.SSHOptions != nil {
		s.SSHOptions = *f.SSHOptions
	}
	if f.Tags != nil {
		s.Tags = *f.Tags
	}
}

func (s *Server) createServer(w http.ResponseWriter, r *http.Request) error {
	var req serverFields
	if err := decode(w, r, &req); err != nil {
		return err
	}
	var srv inventory.Server
	req.apply(&srv)
	if err := s.Inventory.CreateServer(r.Context(), &srv); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, srv)
	return nil
}

func (s *Server) listServers(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	sel := inventory.Selector{Environment: q.Get("environment"), Role: q.Get("role"), ClusterID: q.Get("cluster_id")}
	if t := q.Get("tag"); t != "" {
		sel.Tags = strings.Split(t, ",")
	}
	servers, err := s.Inventory.Servers(r.Context(), sel)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(servers))
	return nil
}

func (s *Server) getServer(w http.ResponseWriter, r *http.Request) error {
	srv, err := s.Inventory.Server(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, srv)
	return nil
}

func (s *Server) updateServer(w http.ResponseWriter, r *http.Request) error {
	var req serverFields
	if err := decode(w, r, &req); err != nil {
		return err
	}
	srv, err := s.Inventory.Server(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	req.apply(srv)
	if err := s.Inventory.UpdateServer(r.Context(), srv); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, srv)
	return nil
}

func (s *Server) deleteServer(w http.ResponseWriter, r *http.Request) error {
	if err := s.Inventory.DeleteServer(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) checkServer(w http.ResponseWriter, r *http.Request) error {
	hops, err := s.Inventory.Check(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	ok := true
	for _, h := range hops {
		ok = ok && h.OK
	}
	writeJSON(w, http.StatusOK, checkResponse{OK: ok, Hops: hops})
	return nil
}

type checkResponse struct {
	OK   bool                `json:"ok"`
	Hops []sshexec.HopResult `json:"hops"`
}

func (s *Server) commandRecords(w http.ResponseWriter, r *http.Request) error {
	limit, err := queryInt(r, "limit", 50, 1, 1000)
	if err != nil {
		return err
	}
	recs, err := s.Inventory.CommandRecords(r.Context(), r.URL.Query().Get("server_id"), r.URL.Query().Get("session_id"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(recs))
	return nil
}

type clusterRequest struct {
	Name        *string `json:"name"`
	Type        *string `json:"type"`
	Environment *string `json:"environment"`
	Description *string `json:"description"`
	Kubeconfig  string  `json:"kubeconfig,omitempty"` // write-only; sealed
}

func (req *clusterRequest) apply(c *inventory.Cluster) {
	for _, f := range []struct {
		dst *string
		v   *string
	}{{&c.Name, req.Name}, {&c.Type, req.Type}, {&c.Environment, req.Environment}, {&c.Description, req.Description}} {
		if f.v != nil {
			*f.dst = *f.v
		}
	}
}

func (s *Server) createCluster(w http.ResponseWriter, r *http.Request) error {
	var req clusterRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	var c inventory.Cluster
	req.apply(&c)
	if err := s.Inventory.CreateCluster(r.Context(), &c, req.Kubeconfig); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *Server) listClusters(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.Inventory.Clusters(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(cs))
	return nil
}

func (s *Server) getCluster(w http.ResponseWriter, r *http.Request) error {
	c, err := s.Inventory.Cluster(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) updateCluster(w http.ResponseWriter, r *http.Request) error {
	var req clusterRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	c, err := s.Inventory.Cluster(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	req.apply(c)
	if err := s.Inventory.UpdateCluster(r.Context(), c, req.Kubeconfig); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) deleteCluster(w http.ResponseWriter, r *http.Request) error {
	if err := s.Inventory.DeleteCluster(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type credentialRequest struct {
	Name       string       `json:"name"`
	Type       string       `json:"type"`
	Username   string       `json:"username,omitempty"`
	Secret     vault.Secret `json:"secret"`
	Passphrase vault.Secret `json:"passphrase,omitempty"`
}

func (s *Server) createCredential(w http.ResponseWriter, r *http.Request) error {
	var req credentialRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	c, err := s.Inventory.CreateCredential(r.Context(), inventory.CredentialInput{Name: req.Name, Type: req.Type,
		Username: req.Username, Secret: req.Secret, Passphrase: req.Passphrase})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *Server) listCredentials(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.Inventory.Credentials(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, list(cs))
	return nil
}

func (s *Server) getCredential(w http.ResponseWriter, r *http.Request) error {
	c, err := s.Inventory.Credential(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *Server) deleteCredential(w http.ResponseWriter, r *http.Request) error {
	if err := s.Inventory.DeleteCredential(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type execRequest struct {
	ServerIDs      []string            `json:"server_ids,omitempty"`
	Selector       *inventory.Selector `json:"selector,omitempty"`
	Command        string              `json:"command"`
	TimeoutSeconds int                 `json:"timeout_seconds,omitempty"`
	Parallelism    int                 `json:"parallelism,omitempty"`
}

type execResponse struct {
	Results []inventory.ExecResult `json:"results"`
	Summary inventory.Summary      `json:"summary"`
}

// execStreamLine is one NDJSON line: a result, or the closing summary.
type execStreamLine struct {
	Type    string                `json:"type"` // "result" or "summary"
	Result  *inventory.ExecResult `json:"result,omitempty"`
	Summary *inventory.Summary    `json:"summary,omitempty"`
}

func (s *Server) exec(w http.ResponseWriter, r *http.Request) error {
	var req execRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	sel := inventory.Selector{ServerIDs: req.ServerIDs}
	if req.Selector != nil {
		sel = *req.Selector
		sel.ServerIDs = append(sel.ServerIDs, req.ServerIDs...)
	}
	if req.TimeoutSeconds < 0 {
		return errs.Invalidf("timeout_seconds", "timeout_seconds must be positive")
	}
	er := inventory.ExecRequest{Selector: sel, Command: req.Command, Timeout: time.Duration(req.TimeoutSeconds) * time.Second,
		Parallelism: req.Parallelism, AllowLevel: guard.L0}
	if strings.Contains(r.Header.Get("Accept"), "application/x-ndjson") {
		return s.execStream(w, r, er)
	}
	var resp execResponse
	sum, err := s.Inventory.Exec(r.Context(), er, func(res inventory.ExecResult) { resp.Results = append(resp.Results, res) })
	if err != nil {
		return err
	}
	resp.Summary = sum
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// execStream answers with one JSON line per server as each finishes, then the summary.
func (s *Server) execStream(w http.ResponseWriter, r *http.Request, er inventory.ExecRequest) error {
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	started := false
	start := func() {
		if !started {
			w.Header().Set("Content-Type", "application/x-ndjson")
			w.WriteHeader(http.StatusOK)
			started = true
		}
	}
	sum, err := s.Inventory.Exec(r.Context(), er, func(res inventory.ExecResult) {
		start()
		enc.Encode(execStreamLine{Type: "result", Result: &res})
		rc.Flush()
	})
	if err != nil && !started {
		return err
	}
	start()
	enc.Encode(execStreamLine{Type: "summary", Summary: &sum})
	rc.Flush()
	return nil
}

type importRequest struct {
	Format       string `json:"format"` // yaml, json or ssh_config
	Content      string `json:"content"`
	CredentialID string `json:"credential_id,omitempty"` // for hosts that name no credential
	Environment  string `json:"environment,omitempty"`
	DryRun       bool   `json:"dry_run,omitempty"`
	// Identities maps ssh_config IdentityFile paths to credentials the CLI uploaded for them.
	Identities map[string]string `json:"identities,omitempty"`
}

func (s *Server) importServers(w http.ResponseWriter, r *http.Request) error {
	var req importRequest
	if err := decode(w, r, &req); err != nil {
		return err
	}
	res, err := s.Inventory.Import(r.Context(), inventory.ImportRequest{Format: req.Format, Content: req.Content,
		CredentialID: req.CredentialID, Environment: req.Environment, DryRun: req.DryRun, Identities: req.Identities})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}
