import { useState } from 'preact/hooks';
import { ApiError, can, del, get, post, put, session, type List } from '../api';
import { fmtTime, t, useT } from '../i18n';
import { onLink } from '../router';
import { ErrorBox, Field, Loading, useLoad } from '../ui';

const CHANNELS = ['app', 'push', 'sms', 'phone', 'email', 'telegram', 'wecom'];
const AUDIENCES = ['primary', 'backup', 'managers'];

interface Contact {
  id: string;
  name: string;
  audience: string;
  user_id?: string;
  phone?: string;
  email?: string;
  telegram_chat_id?: string;
  wecom_user_id?: string;
  fcm_token?: string;
  preferred_channel?: string;
  enabled: boolean;
}
interface Step {
  delay_seconds: number;
  channels: string[];
  audience: string;
}
interface Policy {
  severity: string;
  steps: Step[];
}
interface Message {
  id: string;
  channel: string;
  status: string;
  error?: string;
}

// addressOf is where a contact is reached on a channel (as the server's Contact.Address).
function addressOf(c: Contact, ch: string): string {
  switch (ch) {
    case 'sms':
    case 'phone':
      return c.phone ?? '';
    case 'email':
      return c.email ?? '';
    case 'telegram':
      return c.telegram_chat_id ?? '';
    case 'wecom':
      return c.wecom_user_id ?? '';
    case 'push':
      return c.fcm_token ?? '';
    case 'app':
      return c.user_id ?? '';
  }
  return '';
}

export function EscalationsPage() {
  useT();
  const [status, setStatus] = useState('active');
  const esc = useLoad(() => get<List<any>>('/api/v1/comm/escalations?status=' + status), [status]);
  return (
    <div class="page">
      <h1>{t('esc.live')}</h1>
      <div class="filters">
        <select aria-label={t('common.status')} value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
          {['active', 'answered', 'closed'].map((s) => (
            <option value={s}>{s}</option>
          ))}
        </select>
      </div>
      <ErrorBox error={esc.error} />
      <Loading when={esc.loading && !esc.data}>
        {esc.data?.items.length === 0 && <p class="muted">{t('common.none')}</p>}
        {esc.data?.items.map((e) => (
          <EscalationCard key={e.id} e={e} />
        ))}
      </Loading>
      <Contacts />
      <Policies />
    </div>
  );
}

// Contacts lists who escalations reach; a manager adds and removes them and test-sends one channel of
// one contact, seeing its delivery status (sent, failed with the provider's reason, skipped).
function Contacts() {
  useT();
  const contacts = useLoad(() => get<List<Contact>>('/api/v1/comm/contacts'), []);
  const channels = useLoad(() => get<List<{ channel: string; available: boolean; reason?: string }>>('/api/v1/comm/channels').catch(() => ({ items: [] })), []);
  const [results, setResults] = useState<Record<string, Message | ApiError>>({});
  const [err, setErr] = useState<ApiError | null>(null);
  const [adding, setAdding] = useState(false);
  const manage = can('manage_settings');
  const unavailable = (ch: string) => channels.data?.items.find((x) => x.channel === ch && !x.available);
  const testSend = async (c: Contact, channel: string) => {
    const k = c.id + ':' + channel;
    setResults((r) => {
      const n = { ...r };
      delete n[k];
      return n;
    });
    try {
      const m = await post<Message>('/api/v1/comm/contacts/' + encodeURIComponent(c.id) + '/test', { channel });
      setResults((r) => ({ ...r, [k]: m }));
    } catch (e) {
      setResults((r) => ({ ...r, [k]: e as ApiError }));
    }
  };
  const remove = async (c: Contact) => {
    if (!confirm(t('esc.removeConfirm', { name: c.name }))) return;
    setErr(null);
    try {
      await del('/api/v1/comm/contacts/' + encodeURIComponent(c.id));
      contacts.reload();
    } catch (e) {
      setErr(e as ApiError);
    }
  };
  return (
    <>
      <h2>{t('esc.contacts')}</h2>
      <ErrorBox error={contacts.error ?? err} />
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>{t('common.name')}</th>
              <th>{t('esc.audience')}</th>
              <th>{t('esc.channels')}</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {contacts.data?.items.map((c) => (
              <tr key={c.id} data-contact={c.name}>
                <td>
                  {c.name}
                  {!c.enabled && <span class="muted small"> ({t('esc.disabled')})</span>}
                </td>
                <td>{c.audience}</td>
                <td>
                  <ul class="channels">
                    {CHANNELS.filter((ch) => addressOf(c, ch)).map((ch) => {
                      const r = results[c.id + ':' + ch];
                      const off = unavailable(ch);
                      return (
                        <li key={ch} data-channel={ch}>
                          <strong>{ch}</strong>
                          {ch === c.preferred_channel && <span class="muted small"> ★</span>} <span class="muted small">{ch === 'app' ? t('esc.inApp') : addressOf(c, ch)}</span>
                          {off && <span class="muted small" title={off.reason}> · {t('esc.notConfigured')}</span>}
                          {manage && (
                            <button type="button" class="small" onClick={() => testSend(c, ch)} aria-label={t('esc.testOn', { name: c.name, channel: ch })}>
                              {t('esc.test')}
                            </button>
                          )}
                          {r instanceof ApiError ? (
                            <span class="field-error" role="alert">
                              {r.message}
                              {r.hint && ' — ' + r.hint}
                            </span>
                          ) : (
                            r && (
                              <span class={'delivery status-' + r.status} role="status">
                                {t(('esc.status.' + r.status) as any) || r.status}
                                {r.error && ': ' + r.error}
                              </span>
                            )
                          )}
                        </li>
                      );
                    })}
                  </ul>
                </td>
                <td>
                  {manage && (
                    <button type="button" class="small danger" onClick={() => remove(c)}>
                      {t('common.delete')}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {contacts.data?.items.length === 0 && <p class="muted">{t('common.none')}</p>}
      {manage &&
        (adding ? (
          <ContactForm
            onDone={() => {
              setAdding(false);
              contacts.reload();
            }}
            onCancel={() => setAdding(false)}
          />
        ) : (
          <button type="button" class="primary" onClick={() => setAdding(true)}>
            + {t('esc.addContact')}
          </button>
        ))}
    </>
  );
}

function ContactForm({ onDone, onCancel }: { onDone: () => void; onCancel: () => void }) {
  useT();
  const me = session.get()?.me;
  const [f, setF] = useState({ name: '', audience: 'primary', phone: '', email: '', telegram_chat_id: '', wecom_user_id: '', preferred_channel: '', me: false });
  const [err, setErr] = useState<ApiError | null>(null);
  const save = async (e: Event) => {
    e.preventDefault();
    setErr(null);
    const { me: linkMe, ...rest } = f;
    const body: Record<string, string> = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== ''));
    if (linkMe && me) body.user_id = me.user.id;
    try {
      await post('/api/v1/comm/contacts', body);
      onDone();
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  const at = (field: string) => (err?.field === field ? err.message : undefined);
  const text = (k: 'name' | 'phone' | 'email' | 'telegram_chat_id' | 'wecom_user_id', label: string, placeholder = '') => (
    <Field label={label} error={at(k)}>
      <input value={f[k]} placeholder={placeholder} onInput={(e) => setF({ ...f, [k]: e.currentTarget.value })} />
    </Field>
  );
  return (
    <form class="card form" onSubmit={save} autocomplete="off" aria-label={t('esc.addContact')}>
      <h2>{t('esc.addContact')}</h2>
      {text('name', t('common.name'))}
      <Field label={t('esc.audience')} error={at('audience')}>
        <select value={f.audience} onChange={(e) => setF({ ...f, audience: e.currentTarget.value })}>
          {AUDIENCES.map((a) => (
            <option value={a}>{a}</option>
          ))}
        </select>
      </Field>
      {text('phone', t('esc.phone'), '+8613800001111')}
      {text('email', t('settings.email'))}
      {text('telegram_chat_id', 'Telegram chat id')}
      {text('wecom_user_id', 'WeCom user id')}
      <label class="check">
        <input type="checkbox" checked={f.me} onChange={(e) => setF({ ...f, me: e.currentTarget.checked })} /> {t('esc.linkMe')}
      </label>
      <Field label={t('esc.preferred')} error={at('preferred_channel')}>
        <select value={f.preferred_channel} onChange={(e) => setF({ ...f, preferred_channel: e.currentTarget.value })}>
          <option value="">—</option>
          {CHANNELS.map((c) => (
            <option value={c}>{c}</option>
          ))}
        </select>
      </Field>
      <div class="row">
        <button type="submit" class="primary">
          {t('common.save')}
        </button>
        <button type="button" onClick={onCancel}>
          {t('common.cancel')}
        </button>
      </div>
      {err && !['name', 'audience', 'phone', 'email', 'telegram_chat_id', 'wecom_user_id', 'preferred_channel'].includes(err.field) && <ErrorBox error={err} />}
    </form>
  );
}

// Policies shows each severity's escalation ladder; a manager edits one at a time (steps: after how long,
// on which channels, to whom) and sees the API's validation error at the step field it names.
function Policies() {
  useT();
  const policies = useLoad(() => get<List<Policy>>('/api/v1/comm/escalation-policies'), []);
  const [editing, setEditing] = useState('');
  return (
    <>
      <h2>{t('esc.policies')}</h2>
      <ErrorBox error={policies.error} />
      {policies.data?.items.map((p) =>
        editing === p.severity ? (
          <PolicyForm
            key={p.severity}
            p={p}
            onDone={() => {
              setEditing('');
              policies.reload();
            }}
            onCancel={() => setEditing('')}
          />
        ) : (
          <section class="card policy" key={p.severity} data-severity={p.severity}>
            <header>
              <strong class={'sev sev-' + p.severity}>{p.severity}</strong>
              {can('manage_settings') && (
                <button type="button" class="small" onClick={() => setEditing(p.severity)} aria-label={t('esc.editPolicy', { sev: p.severity })}>
                  {t('orders.edit')}
                </button>
              )}
            </header>
            <ol class="steps">
              {p.steps?.map((s, i) => (
                <li key={i}>{t('esc.stepText', { d: fmtDelay(s.delay_seconds), ch: s.channels?.join(' + ') ?? '', aud: s.audience })}</li>
              ))}
            </ol>
          </section>
        ),
      )}
    </>
  );
}

function fmtDelay(s: number): string {
  if (s === 0) return t('esc.now');
  return s % 60 === 0 ? t('esc.min', { n: s / 60 }) : t('esc.sec', { n: s });
}

function PolicyForm({ p, onDone, onCancel }: { p: Policy; onDone: () => void; onCancel: () => void }) {
  useT();
  const [steps, setSteps] = useState<Step[]>(() => p.steps.map((s) => ({ ...s, channels: [...(s.channels ?? [])] })));
  const [err, setErr] = useState<ApiError | null>(null);
  const set = (i: number, s: Partial<Step>) => setSteps((l) => l.map((x, j) => (j === i ? { ...x, ...s } : x)));
  const save = async (e: Event) => {
    e.preventDefault();
    setErr(null);
    try {
      await put('/api/v1/comm/escalation-policies/' + encodeURIComponent(p.severity), { steps });
      onDone();
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  const at = (i: number, f: string) => (err?.field === `steps[${i}].${f}` ? err.message : undefined);
  return (
    <form class="card form policy" onSubmit={save} aria-label={t('esc.editPolicy', { sev: p.severity })}>
      <h3>{p.severity}</h3>
      {steps.map((s, i) => (
        <fieldset key={i} class="step">
          <legend>{t('esc.step', { n: i + 1 })}</legend>
          <Field label={t('esc.delay')} error={at(i, 'delay_seconds')}>
            <input type="number" min={0} max={86400} value={s.delay_seconds} onInput={(e) => set(i, { delay_seconds: Number(e.currentTarget.value) })} />
          </Field>
          <Field label={t('esc.audience')} error={at(i, 'audience')}>
            <select value={s.audience} onChange={(e) => set(i, { audience: e.currentTarget.value })}>
              {AUDIENCES.map((a) => (
                <option value={a}>{a}</option>
              ))}
            </select>
          </Field>
          <div class={'field' + (at(i, 'channels') ? ' invalid' : '')} role="group" aria-label={t('esc.channels')}>
            <span>{t('esc.channels')}</span>
            <div class="row wrap">
              {CHANNELS.map((c) => (
                <label class="check" key={c}>
                  <input
                    type="checkbox"
                    checked={s.channels.includes(c)}
                    onChange={(e) => set(i, { channels: e.currentTarget.checked ? [...s.channels, c] : s.channels.filter((x) => x !== c) })}
                  />{' '}
                  {c}
                </label>
              ))}
            </div>
            {at(i, 'channels') && <span class="field-error">{at(i, 'channels')}</span>}
          </div>
          <button type="button" class="small link" onClick={() => setSteps((l) => l.filter((_, j) => j !== i))} disabled={steps.length <= 1}>
            {t('esc.removeStep')}
          </button>
        </fieldset>
      ))}
      <button type="button" class="small" onClick={() => setSteps((l) => [...l, { delay_seconds: (l[l.length - 1]?.delay_seconds ?? 0) + 300, channels: ['sms'], audience: 'primary' }])} disabled={steps.length >= 20}>
        + {t('esc.addStep')}
      </button>
      <div class="row">
        <button type="submit" class="primary">
          {t('common.save')}
        </button>
        <button type="button" onClick={onCancel}>
          {t('common.cancel')}
        </button>
      </div>
      {err && !/^steps\[\d+\]\./.test(err.field) && <ErrorBox error={err} />}
    </form>
  );
}

function EscalationCard({ e }: { e: any }) {
  const msgs = useLoad(() => get<List<any>>('/api/v1/comm/messages?escalation_id=' + encodeURIComponent(e.id)), [e.id]);
  return (
    <section class="card">
      <header>
        <strong>
          [{e.severity}] {e.ref}
        </strong>{' '}
        <span class="status">{e.status}</span>{' '}
        <a href={'/chat/' + e.session_id} onClick={onLink}>
          {t('alert.openChat')}
        </a>
      </header>
      <p>{e.summary}</p>
      {e.answered_by && (
        <p class="muted">
          {t('esc.answeredBy')}: {e.answered_by} ({e.answered_channel}) · {e.decision} · {fmtTime(e.answered_at)}
        </p>
      )}
      <ol class="timeline small">
        {msgs.data?.items.map((m) => (
          <li key={m.id}>
            #{m.step} {m.channel} → {m.address || m.contact_id} · {m.status}
            {m.error ? ' · ' + m.error : ''} · {fmtTime(m.created_at ?? m.sent_at)}
          </li>
        ))}
      </ol>
    </section>
  );
}
