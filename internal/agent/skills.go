package agent

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/it0/it0/internal/agent/skill"
	"github.com/it0/it0/internal/audit"
	"github.com/it0/it0/internal/errs"
	"github.com/it0/it0/internal/tenant"
	shipped "github.com/it0/it0/skills"
)

// SkillRecord is a tenant's skill as stored: the whole SKILL.md, plus bookkeeping.
type SkillRecord struct {
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Content     string    `json:"content"`
	Source      string    `json:"source"` // shipped, custom or directory
	Enabled     bool      `json:"enabled"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// SkillExecution records that a task ran a skill.
type SkillExecution struct {
	ID        string    `json:"id"`
	SkillName string    `json:"skill_name"`
	SessionID string    `json:"session_id"`
	Arguments string    `json:"arguments"`
	Engine    string    `json:"engine"`
	CreatedAt time.Time `json:"created_at"`
}

// SkillStore is the part of storage that holds skills.
type SkillStore interface {
	SkillList(ctx context.Context) ([]SkillRecord, error)
	SkillGet(ctx context.Context, name string) (*SkillRecord, error) // errs.NotFound
	// SkillPut inserts or replaces a skill; maxSkills bounds how many the tenant may have.
	SkillPut(ctx context.Context, s *SkillRecord, maxSkills int) (created bool, err error)
	SkillDelete(ctx context.Context, name string) error
	SkillExecutionCreate(ctx context.Context, e *SkillExecution) error
}

const skillsSeeded = "skills_seeded"

// skillsDir is where the tenant's skills live on disk for Claude Code.
func (s *Service) skillsDir(tenantID string) string {
	if s.cfg.SkillsRoot == nil {
		return ""
	}
	return s.cfg.SkillsRoot(tenantID)
}

// ensureSkills copies the shipped skills into the tenant the first time its skills are used.
func (s *Service) ensureSkills(ctx context.Context) error {
	done, err := s.store.SettingGet(ctx, skillsSeeded)
	if err != nil || done != "" {
		return err
	}
	list, errsList := skill.ReadFS(shipped.FS)
	if len(errsList) > 0 {
		return fmt.Errorf("shipped skills: %w", errsList[0])
	}
	for _, sk := range list {
		if _, err := s.putSkill(ctx, sk, "shipped", 1<<30); err != nil {
			return err
		}
	}
	return s.store.SettingSet(ctx, skillsSeeded, s.now().Format(time.RFC3339))
}

func (s *Service) maxSkills(ctx context.Context) (int, error) {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return 0, err
	}
	t, err := s.tenants.Tenant(ctx, tid)
	if err != nil {
		return 0, err
	}
	return t.MaxSkills, nil
}

func (s *Service) putSkill(ctx context.Context, sk *skill.Skill, source string, max int) (bool, error) {
	now := s.now()
	rec := &SkillRecord{Name: sk.Name, Description: sk.Description, Content: string(sk.Marshal()), Source: source, Enabled: true,
		CreatedAt: now, UpdatedAt: now}
	created, err := s.skillStore.SkillPut(ctx, rec, max)
	if err != nil {
		return false, err
	}
	if dir := s.skillsDir(rec.tenantID(ctx)); dir != "" {
		if err := skill.WriteDir(dir, sk); err != nil {
			return false, fmt.Errorf("write skill %s to the workspace: %w", sk.Name, err)
		}
	}
	return created, nil
}

func (r *SkillRecord) tenantID(ctx context.Context) string {
	id, _ := tenant.ID(ctx)
	return id
}

// Skills lists the tenant's skills.
func (s *Service) Skills(ctx context.Context) ([]SkillRecord, error) {
	if err := s.ensureSkills(ctx); err != nil {
		return nil, err
	}
	return s.skillStore.SkillList(ctx)
}

// Skill returns one skill.
func (s *Service) Skill(ctx context.Context, name string) (*SkillRecord, error) {
	if err := s.ensureSkills(ctx); err != nil {
		return nil, err
	}
	return s.skillStore.SkillGet(ctx, name)
}

// SaveSkill validates a SKILL.md and stores it under name (creating or replacing), within max_skills.
func (s *Service) SaveSkill(ctx context.Context, name, content string) (*SkillRecord, bool, error) {
	if err := s.ensureSkills(ctx); err != nil {
		return nil, false, err
	}
	if len(content) > skill.MaxSize {
		return nil, false, errs.Invalidf("content", "SKILL.md is larger than %d bytes", skill.MaxSize)
	}
	sk, err := skill.Parse(name, []byte(content))
	if err != nil {
		return nil, false, errs.Invalidf("content", "invalid SKILL.md: %v", err).WithHint("see the frontmatter rules in the Agent Skills spec: name, description, allowed-tools")
	}
	max, err := s.maxSkills(ctx)
	if err != nil {
		return nil, false, err
	}
	created, err := s.putSkill(ctx, sk, "custom", max)
	if err != nil {
		return nil, false, err
	}
	action := "skill.updated"
	if created {
		action = "skill.created"
	}
	if _, err := s.audit.Record(ctx, audit.Record{Action: action, ResourceType: "skill", ResourceID: sk.Name,
		Description: action + " " + sk.Name}); err != nil {
		return nil, false, err
	}
	rec, err := s.skillStore.SkillGet(ctx, sk.Name)
	return rec, created, err
}

// DeleteSkill removes a skill from the database and the workspace.
func (s *Service) DeleteSkill(ctx context.Context, name string) error {
	if err := s.skillStore.SkillDelete(ctx, name); err != nil {
		return err
	}
	if tid, _ := tenant.ID(ctx); s.skillsDir(tid) != "" {
		if err := skill.RemoveDir(s.skillsDir(tid), name); err != nil {
			return err
		}
	}
	_, err := s.audit.Record(ctx, audit.Record{Action: "skill.deleted", ResourceType: "skill", ResourceID: name, Description: "skill " + name + " deleted"})
	return err
}

// SyncResult reports a directory ↔ database sync.
type SyncResult struct {
	Imported []string `json:"imported"`
	Exported []string `json:"exported"`
	Errors   []string `json:"errors"`
}

// SyncSkills makes the workspace directory and the database agree: skills found only (or newer) on disk
// are imported, every database skill is written to disk.
func (s *Service) SyncSkills(ctx context.Context) (*SyncResult, error) {
	tid, err := tenant.ID(ctx)
	if err != nil {
		return nil, err
	}
	dir := s.skillsDir(tid)
	if dir == "" {
		return nil, errs.New(errs.Unavailable, "no skills directory is configured")
	}
	if err := s.ensureSkills(ctx); err != nil {
		return nil, err
	}
	res := &SyncResult{Imported: []string{}, Exported: []string{}, Errors: []string{}}
	onDisk, bad := skill.ReadDir(dir)
	for _, e := range bad {
		res.Errors = append(res.Errors, e.Error())
	}
	inDB, err := s.skillStore.SkillList(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]SkillRecord{}
	for _, r := range inDB {
		byName[r.Name] = r
	}
	max, err := s.maxSkills(ctx)
	if err != nil {
		return nil, err
	}
	for _, sk := range onDisk {
		if r, ok := byName[sk.Name]; ok && r.Content == string(sk.Marshal()) {
			continue
		}
		if _, err := s.putSkill(ctx, sk, "directory", max); err != nil {
			res.Errors = append(res.Errors, sk.Name+": "+err.Error())
			continue
		}
		res.Imported = append(res.Imported, sk.Name)
		delete(byName, sk.Name)
	}
	for name, r := range byName {
		sk, err := skill.Parse(name, []byte(r.Content))
		if err != nil {
			res.Errors = append(res.Errors, name+": "+err.Error())
			continue
		}
		if err := skill.WriteDir(dir, sk); err != nil {
			res.Errors = append(res.Errors, name+": "+err.Error())
			continue
		}
		res.Exported = append(res.Exported, name)
	}
	return res, nil
}

// skillPrompt renders the skills section of the system prompt.
func (s *Service) skillPrompt(ctx context.Context, locale string) (string, error) {
	recs, err := s.Skills(ctx)
	if err != nil {
		return "", err
	}
	var list []*skill.Skill
	for _, r := range recs {
		if !r.Enabled {
			continue
		}
		if sk := s.parsedSkill(r); sk != nil {
			list = append(list, sk)
		}
	}
	return skill.PromptSection(list, locale), nil
}

// parsedSkill parses a valid SKILL.md once per content: every system prompt lists the skills, and
// parsing their YAML each time was a fifth of the CPU of resuming many sessions at once.
func (s *Service) parsedSkill(r SkillRecord) *skill.Skill {
	key := sha256.Sum256([]byte(r.Name + "\x00" + r.Content))
	if v, ok := s.skillCache.Load(key); ok {
		return v.(*skill.Skill)
	}
	sk, err := skill.Parse(r.Name, []byte(r.Content))
	if err != nil {
		return nil
	}
	s.skillCache.Store(key, sk)
	return sk
}

// invokeSkill turns a task that names a skill into the prompt the engine gets, and records the execution.
// Claude Code loads the skill itself from the workspace (a "/name args" prompt); API engines get its body.
func (s *Service) invokeSkill(ctx context.Context, sess *Session, name, args, prompt string) (string, error) {
	rec, err := s.Skill(ctx, name)
	if errs.Is(err, errs.NotFound) {
		return "", errs.Invalidf("skill", "skill %q does not exist; list them with GET /api/v1/agent/skills", name)
	}
	if err != nil {
		return "", err
	}
	sk, err := skill.Parse(rec.Name, []byte(rec.Content))
	if err != nil {
		return "", err
	}
	if err := s.skillStore.SkillExecutionCreate(ctx, &SkillExecution{ID: uuid.NewString(), SkillName: name, SessionID: sess.ID,
		Arguments: args, Engine: sess.Engine, CreatedAt: s.now()}); err != nil {
		return "", err
	}
	if sess.Engine == EngineClaudeCode {
		return strings.TrimSpace("/" + name + " " + args + "\n\n" + prompt), nil
	}
	tid, _ := tenant.ID(ctx)
	t, err := s.tenants.Tenant(ctx, tid)
	if err != nil {
		return "", err
	}
	rendered := sk.Render(args, sess.ID, s.skillsDir(tid)+"/"+name)
	return strings.TrimSpace(skill.InvokedSection(sk, rendered, t.Locale) + "\n\n" + prompt), nil
}
