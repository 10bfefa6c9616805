package store

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/it0/it0/internal/comm"
	"github.com/it0/it0/internal/errs"
)

var _ comm.Store = (*DB)(nil)

const contactCols = `id, tenant_id, user_id, name, audience, phone, email, telegram_chat_id, wecom_user_id, fcm_token,
	preferred_channel, locale, enabled, created_at, updated_at`

func scanContact(row interface{ Scan(...any) error }) (*comm.Contact, error) {
	var c comm.Contact
	err := row.Scan(&c.ID, &c.TenantID, &c.UserID, &c.Name, &c.Audience, &c.Phone, &c.Email, &c.TelegramChatID, &c.WeComUserID,
		&c.FCMToken, &c.PreferredChannel, &c.Locale, &c.Enabled, &c.CreatedAt, &c.UpdatedAt)
	return &c, err
}

// ContactCreate inserts c.
func (db *DB) ContactCreate(ctx context.Context, c *comm.Contact) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	c.TenantID = sc.tenantID
	_, err = sc.exec(ctx, `INSERT INTO ~contacts (`+contactCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, c.ID, sc.tenantID, c.UserID,
		c.Name, c.Audience, c.Phone, c.Email, c.TelegramChatID, c.WeComUserID, c.FCMToken, c.PreferredChannel, c.Locale, c.Enabled,
		c.CreatedAt, c.UpdatedAt)
	return err
}

// ContactGet returns contact id.
func (db *DB) ContactGet(ctx context.Context, id string) (*comm.Contact, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	c, err := scanContact(sc.queryRow(ctx, `SELECT `+contactCols+` FROM ~contacts WHERE id = ? AND tenant_id = ?`, id, sc.tenantID))
	return c, notFound(err, "contact")
}

// ContactList returns contacts (of one audience when given), by name.
func (db *DB) ContactList(ctx context.Context, audience string) ([]comm.Contact, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT `+contactCols+` FROM ~contacts WHERE tenant_id = ? AND (? = '' OR audience = ?) ORDER BY name, id`,
		sc.tenantID, audience, audience)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []comm.Contact
	for rows.Next() {
		c, err := scanContact(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *c)
	}
	return out, rows.Err()
}

// ContactFind returns the enabled contact whose address on channel is addr.
func (db *DB) ContactFind(ctx context.Context, channel, addr string) (*comm.Contact, error) {
	col := map[string]string{comm.ChannelSMS: "phone", comm.ChannelPhone: "phone", comm.ChannelEmail: "email",
		comm.ChannelTelegram: "telegram_chat_id", comm.ChannelWeCom: "wecom_user_id", comm.ChannelPush: "fcm_token"}[channel]
	if col == "" || addr == "" {
		return nil, errs.New(errs.NotFound, "contact not found")
	}
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	c, err := scanContact(sc.queryRow(ctx, `SELECT `+contactCols+` FROM ~contacts WHERE tenant_id = ? AND `+col+` = ? AND enabled = ?
		ORDER BY created_at, id LIMIT 1`, sc.tenantID, addr, true))
	return c, notFound(err, "contact")
}

// ContactUpdate saves c.
func (db *DB) ContactUpdate(ctx context.Context, c *comm.Contact) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	res, err := sc.exec(ctx, `UPDATE ~contacts SET user_id = ?, name = ?, audience = ?, phone = ?, email = ?, telegram_chat_id = ?,
		wecom_user_id = ?, fcm_token = ?, preferred_channel = ?, locale = ?, enabled = ?, updated_at = ? WHERE id = ? AND tenant_id = ?`,
		c.UserID, c.Name, c.Audience, c.Phone, c.Email, c.TelegramChatID, c.WeComUserID, c.FCMToken, c.PreferredChannel, c.Locale,
		c.Enabled, c.UpdatedAt, c.ID, sc.tenantID)
	if err != nil {
		return err
	}
	return mustAffect(res, "contact")
}

// ContactDelete removes contact id.
func (db *DB) ContactDelete(ctx context.Context, id string) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	res, err := sc.exec(ctx, `DELETE FROM ~contacts WHERE id = ? AND tenant_id = ?`, id, sc.tenantID)
	if err != nil {
		return err
	}
	return mustAffect(res, "contact")
}

const messageCols = `id, tenant_id, direction, channel, contact_id, address, escalation_id, step, subject, body, status, provider_id,
	error, attempts, idempotency_key, created_at, updated_at`

func scanMessage(row interface{ Scan(...any) error }) (*comm.Message, error) {
	var m comm.Message
	err := row.Scan(&m.ID, &m.TenantID, &m.Direction, &m.Channel, &m.ContactID, &m.Address, &m.EscalationID, &m.Step, &m.Subject,
		&m.Body, &m.Status, &m.ProviderID, &m.Error, &m.Attempts, &m.IdempotencyKey, &m.CreatedAt, &m.UpdatedAt)
	return &m, err
}

// MessageCreate inserts m; errs.Conflict when its idempotency key is taken.
func (db *DB) MessageCreate(ctx context.Context, m *comm.Message) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	m.TenantID = sc.tenantID
	_, err = sc.exec(ctx, `INSERT INTO ~messages (`+messageCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, m.ID, sc.tenantID,
		m.Direction, m.Channel, m.ContactID, m.Address, m.EscalationID, m.Step, m.Subject, m.Body, m.Status, m.ProviderID, m.Error,
		m.Attempts, m.IdempotencyKey, m.CreatedAt, m.UpdatedAt)
	if isUniqueViolation(err) {
		return errs.New(errs.Conflict, "a message with idempotency key %q exists", m.IdempotencyKey)
	}
	return err
}

// MessageByKey returns the message recorded under idempotency key.
func (db *DB) MessageByKey(ctx context.Context, key string) (*comm.Message, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	m, err := scanMessage(sc.queryRow(ctx, `SELECT `+messageCols+` FROM ~messages WHERE tenant_id = ? AND idempotency_key = ?`, sc.tenantID, key))
	return m, notFound(err, "message")
}

// MessageGet returns message id.
func (db *DB) MessageGet(ctx context.Context, id string) (*comm.Message, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	m, err := scanMessage(sc.queryRow(ctx, `SELECT `+messageCols+` FROM ~messages WHERE id = ? AND tenant_id = ?`, id, sc.tenantID))
	return m, notFound(err, "message")
}

// MessageUpdate saves m's delivery state.
func (db *DB) MessageUpdate(ctx context.Context, m *comm.Message) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	res, err := sc.exec(ctx, `UPDATE ~messages SET status = ?, provider_id = ?, error = ?, attempts = ?, updated_at = ? WHERE id = ? AND tenant_id = ?`,
		m.Status, m.ProviderID, m.Error, m.Attempts, m.UpdatedAt, m.ID, sc.tenantID)
	if err != nil {
		return err
	}
	return mustAffect(res, "message")
}

// MessageList returns messages matching f, newest first.
func (db *DB) MessageList(ctx context.Context, f comm.MessageFilter) ([]comm.Message, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	rows, err := sc.query(ctx, `SELECT `+messageCols+` FROM ~messages WHERE tenant_id = ? AND (? = '' OR escalation_id = ?)
		AND (? = '' OR contact_id = ?) AND (? = '' OR channel = ?) AND (? = '' OR direction = ?)
		ORDER BY created_at DESC, id DESC LIMIT ?`, sc.tenantID, f.EscalationID, f.EscalationID, f.ContactID, f.ContactID,
		f.Channel, f.Channel, f.Direction, f.Direction, f.Limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []comm.Message
	for rows.Next() {
		m, err := scanMessage(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *m)
	}
	return out, rows.Err()
}

// PolicyList returns the tenant's own escalation policies.
func (db *DB) PolicyList(ctx context.Context) ([]comm.Policy, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT severity, steps, updated_at FROM ~escalation_policies WHERE tenant_id = ? ORDER BY severity`, sc.tenantID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []comm.Policy
	for rows.Next() {
		var p comm.Policy
		var steps string
		if err := rows.Scan(&p.Severity, &steps, &p.UpdatedAt); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(steps), &p.Steps); err != nil {
			return nil, fmt.Errorf("escalation policy %s: %w", p.Severity, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// PolicyPut stores p, replacing the tenant's policy for its severity.
func (db *DB) PolicyPut(ctx context.Context, p *comm.Policy) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	steps, err := json.Marshal(p.Steps)
	if err != nil {
		return err
	}
	return sc.inTx(ctx, func(tx scopeTx) error {
		if _, err := tx.exec(ctx, `DELETE FROM ~escalation_policies WHERE tenant_id = ? AND severity = ?`, sc.tenantID, p.Severity); err != nil {
			return err
		}
		_, err := tx.exec(ctx, `INSERT INTO ~escalation_policies (tenant_id, severity, steps, updated_at) VALUES (?,?,?,?)`,
			sc.tenantID, p.Severity, string(steps), p.UpdatedAt)
		return err
	})
}

const escalationCols = `id, tenant_id, session_id, severity, status, ref, summary, report, steps, voice_session, started_at, expires_at,
	answered_at, answered_by, answered_channel, decision`

func scanEscalation(row interface{ Scan(...any) error }) (*comm.Escalation, error) {
	var e comm.Escalation
	var steps string
	if err := row.Scan(&e.ID, &e.TenantID, &e.SessionID, &e.Severity, &e.Status, &e.Ref, &e.Summary, &e.Report, &steps, &e.VoiceSession,
		&e.StartedAt, &e.ExpiresAt, &e.AnsweredAt, &e.AnsweredBy, &e.AnsweredChannel, &e.Decision); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(steps), &e.Steps); err != nil {
		return nil, fmt.Errorf("escalation %s steps: %w", e.ID, err)
	}
	return &e, nil
}

// EscalationCreate inserts e; errs.Conflict when the approval has one already.
func (db *DB) EscalationCreate(ctx context.Context, e *comm.Escalation) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	e.TenantID = sc.tenantID
	steps, err := json.Marshal(e.Steps)
	if err != nil {
		return err
	}
	_, err = sc.exec(ctx, `INSERT INTO ~escalations (`+escalationCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, e.ID, sc.tenantID,
		e.SessionID, e.Severity, e.Status, e.Ref, e.Summary, e.Report, string(steps), e.VoiceSession, e.StartedAt, e.ExpiresAt,
		e.AnsweredAt, e.AnsweredBy, e.AnsweredChannel, e.Decision)
	if isUniqueViolation(err) {
		return errs.New(errs.Conflict, "approval %s is escalated already", e.ID)
	}
	return err
}

// EscalationGet returns escalation id.
func (db *DB) EscalationGet(ctx context.Context, id string) (*comm.Escalation, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	e, err := scanEscalation(sc.queryRow(ctx, `SELECT `+escalationCols+` FROM ~escalations WHERE id = ? AND tenant_id = ?`, id, sc.tenantID))
	return e, notFound(err, "escalation")
}

// EscalationByRef returns the active escalation with ref (refs are unique among active escalations).
func (db *DB) EscalationByRef(ctx context.Context, ref string) (*comm.Escalation, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	e, err := scanEscalation(sc.queryRow(ctx, `SELECT `+escalationCols+` FROM ~escalations WHERE tenant_id = ? AND ref = ? AND status = ?
		LIMIT 1`, sc.tenantID, ref, comm.EscalationActive))
	return e, notFound(err, "escalation")
}

// EscalationList returns escalations (with one status when given), newest first.
func (db *DB) EscalationList(ctx context.Context, status string, limit int) ([]comm.Escalation, error) {
	sc, err := db.scope(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := sc.query(ctx, `SELECT `+escalationCols+` FROM ~escalations WHERE tenant_id = ? AND (? = '' OR status = ?)
		ORDER BY started_at DESC, id LIMIT ?`, sc.tenantID, status, status, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []comm.Escalation
	for rows.Next() {
		e, err := scanEscalation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *e)
	}
	return out, rows.Err()
}

// EscalationFinish moves an active escalation to e.Status with its answer; errs.Conflict when it is no
// longer active.
func (db *DB) EscalationFinish(ctx context.Context, e *comm.Escalation) error {
	sc, err := db.scope(ctx)
	if err != nil {
		return err
	}
	res, err := sc.exec(ctx, `UPDATE ~escalations SET status = ?, answered_at = ?, answered_by = ?, answered_channel = ?, decision = ?
		WHERE id = ? AND tenant_id = ? AND status = ?`, e.Status, e.AnsweredAt, e.AnsweredBy, e.AnsweredChannel, e.Decision, e.ID,
		sc.tenantID, comm.EscalationActive)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n == 0 {
		return errs.New(errs.Conflict, "escalation %s is no longer active", e.ID)
	}
	return nil
}
