package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/inventory"
	"github.com/it0/it0/internal/store"
	"github.com/it0/it0/internal/tenant"
)

// NewServer is a test factory: a server named name in the tenant of ctx, through jump when it is not empty.
func NewServer(tb testing.TB, db *store.DB, ctx context.Context, name, jump string) *inventory.Server {
	tb.Helper()
	tid, _ := tenant.ID(ctx)
	s := &inventory.Server{ID: uuid.NewString(), TenantID: tid, Name: name, Host: "10.0.0.1", Port: 22, Environment: "prod",
		Role: "web", SSHUser: "ops", NetworkType: "direct", JumpServerID: jump, SSHOptions: map[string]string{"Ciphers": "aes256-gcm@openssh.com"},
		Tags: []string{"web", "中文"}, Status: "active", HostKeyPolicy: "tofu", CreatedAt: at, UpdatedAt: at}
	if jump != "" {
		s.NetworkType = "jump"
	}
	if err := db.ServerCreate(ctx, s, 100); err != nil {
		tb.Fatalf("create server %s: %v", name, err)
	}
	return s
}

func runInventory(t *testing.T, open func(testing.TB) *store.DB) {
	t.Run("Servers", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		actx, bctx := twoTenants(t, db, "servers")
		jump := NewServer(t, db, actx, "bastion", "")
		web := NewServer(t, db, actx, "web-1", jump.ID)
		got, err := db.ServerGet(actx, web.ID)
		if err != nil {
			t.Fatal(err)
		}
		// Ensure a server round-trips, maps, lists and optional references included.
		if got.JumpServerID != jump.ID || got.ClusterID != "" || got.SSHOptions["Ciphers"] != "aes256-gcm@openssh.com" ||
			len(got.Tags) != 2 || got.Tags[1] != "中文" || !got.CreatedAt.Equal(at) || got.Port != 22 {
			t.Errorf("round trip: %+v", got)
		}
		if _, err := db.ServerGet(bctx, web.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant get: %v", err)
		}
		// Ensure a server cannot be created into another tenant, names are unique, and the quota holds.
		bid, _ := tenant.ID(bctx)
		foreign := *web
		foreign.ID = uuid.NewString()
		if err := db.ServerCreate(bctx, &foreign, 100); err == nil {
			t.Error("created a server carrying tenant a's id in tenant b")
		}
		dup := *web
		dup.ID = uuid.NewString()
		if err := db.ServerCreate(actx, &dup, 100); !errs.Is(err, errs.Conflict) {
			t.Errorf("duplicate name: %v", err)
		}
		extra := *web
		extra.ID, extra.Name = uuid.NewString(), "web-2"
		if err := db.ServerCreate(actx, &extra, 2); !errs.Is(err, errs.QuotaExceeded) {
			t.Errorf("over quota: %v", err)
		}
		// The same name is free in another tenant.
		other := *web
		other.ID, other.TenantID, other.JumpServerID, other.NetworkType = uuid.NewString(), bid, "", "direct"
		if err := db.ServerCreate(bctx, &other, 100); err != nil {
			t.Errorf("same name in tenant b: %v", err)
		}
		// Ensure an update replaces the fields, and a host key is pinned.
		got.Host, got.Tags, got.UpdatedAt = "10.0.0.2", []string{}, at.Add(time.Minute)
		if err := db.ServerUpdate(actx, got); err != nil {
			t.Fatal(err)
		}
		if err := db.ServerUpdate(bctx, got); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant update: %v", err)
		}
		if err := db.ServerSetHostKey(actx, web.ID, "ssh-ed25519 AAAA", "SHA256:abc"); err != nil {
			t.Fatal(err)
		}
		if err := db.ServerSetHostKey(bctx, web.ID, "ssh-ed25519 BBBB", "SHA256:evil"); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant host key: %v", err)
		}
		got, _ = db.ServerGet(actx, web.ID)
		if got.Host != "10.0.0.2" || len(got.Tags) != 0 || got.HostKey != "ssh-ed25519 AAAA" || got.HostKeyFingerprint != "SHA256:abc" {
			t.Errorf("after update: %+v", got)
		}
		list, err := db.ServerList(actx)
		if err != nil || len(list) != 2 || list[0].Name != "bastion" || list[1].Name != "web-1" {
			t.Fatalf("list by name: %v %+v", err, list)
		}
		// Ensure a jump host in use cannot be deleted, and is once nothing uses it.
		if err := db.ServerDelete(actx, jump.ID); !errs.Is(err, errs.Conflict) {
			t.Errorf("delete jump host in use: %v", err)
		}
		if err := db.ServerDelete(bctx, web.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant delete: %v", err)
		}
		for _, id := range []string{web.ID, jump.ID} {
			if err := db.ServerDelete(actx, id); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.ServerGet(actx, web.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("deleted server: %v", err)
		}
	})

	t.Run("ClustersAndCredentials", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		actx, bctx := twoTenants(t, db, "clusters")
		c := &inventory.Cluster{ID: uuid.NewString(), Name: "prod-k8s", Type: "kubernetes", Environment: "prod",
			Kubeconfig: []byte("sealed-kubeconfig"), CreatedAt: at, UpdatedAt: at}
		if err := db.ClusterCreate(actx, c); err != nil {
			t.Fatal(err)
		}
		if err := db.ClusterCreate(actx, &inventory.Cluster{ID: uuid.NewString(), Name: "prod-k8s", Type: "kubernetes", CreatedAt: at, UpdatedAt: at}); !errs.Is(err, errs.Conflict) {
			t.Errorf("duplicate cluster: %v", err)
		}
		got, err := db.ClusterGet(actx, c.ID)
		if err != nil || !got.HasKubeconfig || string(got.Kubeconfig) != "sealed-kubeconfig" || got.Environment != "prod" {
			t.Fatalf("cluster round trip: %v %+v", err, got)
		}
		if _, err := db.ClusterGet(bctx, c.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant cluster: %v", err)
		}
		got.Description, got.Kubeconfig = "main cluster", nil
		if err := db.ClusterUpdate(actx, got); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.ClusterGet(actx, c.ID); got.Description != "main cluster" {
			t.Errorf("cluster after update: %+v", got)
		}
		cred := &inventory.Credential{ID: uuid.NewString(), Name: "deploy-key", Type: "ssh_key", Username: "deploy", KeyType: "ed25519",
			Fingerprint: "SHA256:xyz", PublicKey: "ssh-ed25519 AAAA", Sealed: []byte("sealed-private-key"), CreatedAt: at, UpdatedAt: at}
		if err := db.CredentialCreate(actx, cred); err != nil {
			t.Fatal(err)
		}
		gotCred, err := db.CredentialGet(actx, cred.ID)
		if err != nil || gotCred.Fingerprint != "SHA256:xyz" || string(gotCred.Sealed) != "sealed-private-key" || gotCred.KeyType != "ed25519" {
			t.Fatalf("credential round trip: %v %+v", err, gotCred)
		}
		if _, err := db.CredentialGet(bctx, cred.ID); !errs.Is(err, errs.NotFound) {
			t.Errorf("cross-tenant credential: %v", err)
		}
		if list, _ := db.CredentialList(bctx); len(list) != 0 {
			t.Errorf("tenant b lists %d credentials", len(list))
		}
		// Ensure a cluster or credential in use by a server cannot be deleted.
		s := NewServer(t, db, actx, "node-1", "")
		s.ClusterID, s.CredentialID = c.ID, cred.ID
		if err := db.ServerUpdate(actx, s); err != nil {
			t.Fatal(err)
		}
		if err := db.ClusterDelete(actx, c.ID); !errs.Is(err, errs.Conflict) {
			t.Errorf("delete cluster in use: %v", err)
		}
		if err := db.CredentialDelete(actx, cred.ID); !errs.Is(err, errs.Conflict) {
			t.Errorf("delete credential in use: %v", err)
		}
		if err := db.ServerDelete(actx, s.ID); err != nil {
			t.Fatal(err)
		}
		if err := db.ClusterDelete(actx, c.ID); err != nil {
			t.Error(err)
		}
		if err := db.CredentialDelete(actx, cred.ID); err != nil {
			t.Error(err)
		}
		if list, _ := db.ClusterList(actx); len(list) != 0 {
			t.Errorf("clusters after delete: %+v", list)
		}
	})

	t.Run("CommandRecords", func(t *testing.T) {
		t.Parallel()
		db := open(t)
		actx, bctx := twoTenants(t, db, "commands")
		for i := range 4 {
			code := i
			r := &inventory.CommandRecord{ID: uuid.NewString(), SessionID: fmt.Sprintf("s%d", i%2), ServerID: fmt.Sprintf("srv-%d", i%2),
				ServerName: "web", Command: "uptime", RiskLevel: 0, Status: "completed", ExitCode: &code, Stdout: "up 3 days",
				DurationMS: 12, ActorType: "agent", ActorID: "s", CreatedAt: at.Add(time.Duration(i) * time.Second)}
			if err := db.CommandRecordCreate(actx, r); err != nil {
				t.Fatal(err)
			}
		}
		list, err := db.CommandRecordList(actx, "", "", 10)
		if err != nil || len(list) != 4 || !list[0].CreatedAt.Equal(at.Add(3*time.Second)) || list[0].ExitCode == nil || *list[0].ExitCode != 3 {
			t.Fatalf("newest first: %v %+v", err, list)
		}
		if list, _ := db.CommandRecordList(actx, "srv-1", "", 10); len(list) != 2 {
			t.Errorf("by server: %d", len(list))
		}
		if list, _ := db.CommandRecordList(actx, "srv-1", "s0", 10); len(list) != 0 {
			t.Errorf("by server and session: %d", len(list))
		}
		if list, _ := db.CommandRecordList(actx, "", "", 3); len(list) != 3 {
			t.Errorf("limit: %d", len(list))
		}
		if list, _ := db.CommandRecordList(bctx, "", "", 10); len(list) != 0 {
			t.Errorf("tenant b lists %d records", len(list))
		}
	})
}
