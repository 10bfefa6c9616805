package guard

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/it0/it0/internal/tenant"
)

// TenantRules classifies with each tenant's overrides (Rules.Override) applied on top of the shipped
// rules. The overrides come from load (storage, injected: this package does no I/O) and are cached per
// tenant for TTL, or until Forget.
type TenantRules struct {
	base *Classifier
	load func(ctx context.Context) ([]byte, error) // the tenant in ctx's override YAML; empty = none
	ttl  time.Duration
	now  func() time.Time

	mu    sync.Mutex
	cache map[string]tenantEntry
}

type tenantEntry struct {
	c  *Classifier
	at time.Time
}

// NewTenantRules returns per-tenant classification over base. A ttl of 0 means 30 s: how long another
// replica may use a tenant's previous overrides.
func NewTenantRules(base *Classifier, load func(ctx context.Context) ([]byte, error), ttl time.Duration) *TenantRules {
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	return &TenantRules{base: base, load: load, ttl: ttl, now: time.Now, cache: map[string]tenantEntry{}}
}

// ErrRulesUnavailable is the reason of the verdict given when a tenant's rules cannot be loaded.
var ErrRulesUnavailable = errors.New("the tenant's risk rules could not be loaded")

// Classify classifies command under the rules of the tenant in ctx (the shipped rules when ctx has no
// tenant or the tenant has no overrides). If the tenant's rules cannot be loaded it fails closed: L3.
func (t *TenantRules) Classify(ctx context.Context, command string) Verdict {
	c, err := t.Classifier(ctx)
	if err != nil {
		return Verdict{Level: L3, Reason: ErrRulesUnavailable.Error() + "; refusing until they can"}
	}
	return c.Classify(command)
}

// Classifier returns the tenant in ctx's classifier.
func (t *TenantRules) Classifier(ctx context.Context) (*Classifier, error) {
	id, err := tenant.ID(ctx)
	if err != nil {
		return t.base, nil
	}
	now := t.now()
	t.mu.Lock()
	e, ok := t.cache[id]
	t.mu.Unlock()
	if ok && now.Sub(e.at) < t.ttl {
		return e.c, nil
	}
	yaml, err := t.load(ctx)
	if err != nil {
		return nil, err
	}
	c := t.base
	if len(yaml) > 0 {
		r, err := t.base.Rules().Override(yaml)
		if err != nil {
			return nil, err
		}
		c = NewClassifier(r)
	}
	t.mu.Lock()
	t.cache[id] = tenantEntry{c: c, at: now}
	t.mu.Unlock()
	return c, nil
}

// Check validates tenant overrides without storing them; the error names the bad line.
func (t *TenantRules) Check(yaml []byte) error {
	_, err := t.base.Rules().Override(yaml)
	return err
}

// Forget drops tenant id's cached rules (after they changed).
func (t *TenantRules) Forget(id string) {
	t.mu.Lock()
	delete(t.cache, id)
	t.mu.Unlock()
}

// ClassifyTargets classifies command under the rules of the tenant in ctx and raises the verdict by the
// blast radius of targets (Classifier.Raise): the servers it is about to run on. It fails closed like
// Classify.
func (t *TenantRules) ClassifyTargets(ctx context.Context, command string, targets []Target) Verdict {
	c, err := t.Classifier(ctx)
	if err != nil {
		return Verdict{Level: L3, Reason: ErrRulesUnavailable.Error() + "; refusing until they can"}
	}
	return c.Raise(c.Classify(command), targets)
}
