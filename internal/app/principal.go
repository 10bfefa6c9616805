package app

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/auth"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/tenant"
)

// servicePrincipalEmail is the reserved address of tenant tid's service principal (.invalid never resolves,
// RFC 2606, so it can receive nothing and collide with no person).
func servicePrincipalEmail(tid string) string {
	return "it0-service@" + strings.ToLower(tid) + ".invalid"
}

// principalUsers is what the service principal needs from auth.
type principalUsers interface {
	Users(ctx context.Context) ([]auth.User, error)
	CreateUser(ctx context.Context, p auth.CreateUserParams) (*auth.User, error)
}

// servicePrincipal returns the user id of the tenant's service principal, creating it on first use: an
// operator named for what it is, whose password is random and never kept, so nobody can sign in as it.
// The sessions the system starts (alerts, events, schedules) run as it, and the audit log shows it.
func servicePrincipal(ctx context.Context, users principalUsers) (string, error) {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return "", err
	}
	email := servicePrincipalEmail(tid)
	find := func() (string, error) {
		list, err := users.Users(ctx)
		if err != nil {
			return "", err
		}
		for _, u := range list {
			if u.Email == email {
				return u.ID, nil
			}
		}
		return "", nil
	}
	if id, err := find(); id != "" || err != nil {
		return id, err
	}
	pw := make([]byte, 32)
	rand.Read(pw)
	u, err := users.CreateUser(audit.WithActor(ctx, audit.Actor{Type: audit.ActorSystem, ID: "service-principal"}), auth.CreateUserParams{
		Email: email, Name: "IT0 service principal (alerts, events, schedules)", Password: hex.EncodeToString(pw), Role: auth.RoleOperator})
	if errs.Is(err, errs.Conflict) {
		return find() // created concurrently
	}
	if err != nil {
		return "", fmt.Errorf("create the service principal: %w", err)
	}
	return u.ID, nil
}
