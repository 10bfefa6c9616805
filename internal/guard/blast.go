package guard

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Target is one server a command is about to run on, as blast-radius rules
// see it.
type Target struct {
	// Environment is the server's environment (dev, staging, prod …).
	Environment string
	// Role is the server's role in its cluster or fleet (control-plane,
	// etcd, db-primary, web …).
	Role string
}

// BlastRule raises the level of a command by the set of servers it runs on:
// when the command is at least Level and more than MoreThan of its targets
// are in one of Environments and have one of Roles (an empty list matches
// any), the command needs RaiseTo.
type BlastRule struct {
	ID           string   `json:"id"`
	Level        Level    `json:"level"`
	Environments []string `json:"environments,omitempty"`
	Roles        []string `json:"roles,omitempty"`
	MoreThan     int      `json:"more_than"`
	RaiseTo      Level    `json:"raise_to"`
	Reason       string   `json:"reason"`
}

// rawBlast is one blast_radius entry of a rules file.
type rawBlast struct {
	ID           string   `yaml:"id"`
	Level        string   `yaml:"level"`
	Environments []string `yaml:"environments"`
	Roles        []string `yaml:"roles"`
	MoreThan     *int     `yaml:"more_than"`
	RaiseTo      string   `yaml:"raise_to"`
	Reason       string   `yaml:"reason"`
}

// compileBlast appends the file's blast-radius rules. Rules only ever raise,
// so a tenant's rules are simply added after the shipped ones: a tenant
// tightens a threshold by adding a rule with a lower more_than.
func (b *builder) compileBlast(raw []rawBlast) {
	for i, rb := range raw {
		p := fmt.Sprintf("$.blast_radius[%d]", i)
		if rb.ID == "" {
			b.fail(p+".id", "id is required")
		}
		if rb.Reason == "" {
			b.fail(p, "reason is required")
		}
		if rb.MoreThan == nil || *rb.MoreThan < 0 {
			b.fail(p+".more_than", "more_than is required: the number of matching servers (0 or more) above which the rule raises")
			continue
		}
		r := BlastRule{ID: rb.ID, Level: b.level(p+".level", rb.Level), RaiseTo: b.level(p+".raise_to", rb.RaiseTo),
			MoreThan: *rb.MoreThan, Reason: rb.Reason}
		if b.tenant {
			r.ID = "tenant:" + r.ID
		}
		if r.RaiseTo <= r.Level {
			b.fail(p+".raise_to", "raise_to (%s) must be above level (%s)", r.RaiseTo, r.Level)
		}
		for _, e := range rb.Environments {
			r.Environments = append(r.Environments, strings.ToLower(e))
		}
		for _, e := range rb.Roles {
			r.Roles = append(r.Roles, strings.ToLower(e))
		}
		b.r.blast = append(b.r.blast, r)
	}
}

// BlastRules returns the blast-radius rules in the order they apply.
func (r *Rules) BlastRules() []BlastRule { return slices.Clone(r.blast) }

// Raise applies the blast-radius rules to a verdict for a command about to
// run on targets, in order, each seeing the level the previous ones left.
// A raised verdict says why in Raised and at the head of Reason (what the
// approval card shows). L3 stays L3; L0 is raised only by a rule for L0.
func (c *Classifier) Raise(v Verdict, targets []Target) Verdict {
	var why []string
	from := v.Level
	for _, r := range c.rules.blast {
		if v.Level < r.Level || v.Level >= r.RaiseTo {
			continue
		}
		n := 0
		for _, t := range targets {
			if matchAny(r.Environments, t.Environment) && matchAny(r.Roles, t.Role) {
				n++
			}
		}
		if n <= r.MoreThan {
			continue
		}
		v.Level = r.RaiseTo
		why = append(why, fmt.Sprintf("%s (%d %s; rule %s)", r.Reason, n, describe(r), r.ID))
	}
	if len(why) == 0 {
		return v
	}
	v.Raised = fmt.Sprintf("raised from %s to %s by the blast radius: %s", from, v.Level, strings.Join(why, "; "))
	v.Reason = v.Raised + " — " + v.Reason
	return v
}

func describe(r BlastRule) string {
	what := "servers"
	if len(r.Environments) > 0 {
		what = strings.Join(r.Environments, "/") + " " + what
	}
	if len(r.Roles) > 0 {
		what += " with role " + strings.Join(r.Roles, "/")
	}
	return fmt.Sprintf("%s, more than %d", what, r.MoreThan)
}

func matchAny(list []string, v string) bool {
	if len(list) == 0 {
		return true
	}
	v = strings.ToLower(v)
	for _, g := range list {
		if globMatch(g, v) {
			return true
		}
	}
	return false
}

// ErrBadTargets is returned by ParseTargets for text that describes no target set.
var ErrBadTargets = errors.New("bad targets")

// maxParsedTargets bounds the target set ParseTargets builds.
const maxParsedTargets = 100000

// ParseTargets reads a target set written ENV[:ROLE][=COUNT],… (for example "prod:web=12,prod:db"):
// COUNT servers (default 1) in environment ENV with role ROLE. It returns ErrBadTargets for anything else.
func ParseTargets(s string) ([]Target, error) {
	var out []Target
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		spec, count, hasCount := strings.Cut(part, "=")
		env, role, _ := strings.Cut(spec, ":")
		n := 1
		if hasCount {
			var err error
			if n, err = strconv.Atoi(count); err != nil || n < 1 {
				return nil, fmt.Errorf("%w: %q: the count after = must be a positive number", ErrBadTargets, part)
			}
		}
		if env == "" || len(out)+n > maxParsedTargets {
			return nil, fmt.Errorf("%w: %q (want ENV[:ROLE][=COUNT],…, at most %d servers, e.g. prod:web=12)", ErrBadTargets, part, maxParsedTargets)
		}
		for range n {
			out = append(out, Target{Environment: env, Role: role})
		}
	}
	return out, nil
}
