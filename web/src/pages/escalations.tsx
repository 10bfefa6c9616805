import { useState } from 'preact/hooks';
import { ApiError, can, get, post, type List } from '../api';
import { fmtTime, t, useT } from '../i18n';
import { onLink } from '../router';
import { ErrorBox, Loading, useLoad } from '../ui';

export function EscalationsPage() {
  useT();
  const [status, setStatus] = useState('active');
  const esc = useLoad(() => get<List<any>>('/api/v1/comm/escalations?status=' + status), [status]);
  const contacts = useLoad(() => get<List<any>>('/api/v1/comm/contacts'), []);
  const policies = useLoad(() => get<List<any>>('/api/v1/comm/escalation-policies'), []);
  const [note, setNote] = useState('');
  const [err, setErr] = useState<ApiError | null>(null);
  const testSend = async (c: any) => {
    setErr(null);
    setNote('');
    try {
      await post('/api/v1/comm/notices', {
        audience: c.audience,
        channels: [c.preferred_channel || 'app'],
        subject: 'IT0 test',
        body: 'Test message from the IT0 console',
        key: 'test-' + c.id + '-' + Date.now(),
      });
      setNote(t('esc.sent'));
    } catch (e) {
      setErr(e as ApiError);
    }
  };
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
      <h2>{t('esc.contacts')}</h2>
      {note && <p class="ok">{note}</p>}
      <ErrorBox error={contacts.error ?? err} />
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>{t('common.name')}</th>
              <th>audience</th>
              <th>{t('esc.channel')}</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {contacts.data?.items.map((c) => (
              <tr key={c.id}>
                <td>{c.name}</td>
                <td>{c.audience}</td>
                <td>{[c.preferred_channel, c.phone, c.email].filter(Boolean).join(' · ')}</td>
                <td>
                  {can('manage_settings') && (
                    <button type="button" class="small" onClick={() => testSend(c)}>
                      {t('esc.test')}
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h2>{t('esc.policies')}</h2>
      <ul>
        {policies.data?.items.map((p) => (
          <li key={p.severity}>
            <strong>{p.severity}</strong>:{' '}
            {p.steps?.map((s: any, i: number) => (
              <span key={i}>
                {i > 0 && ' → '}+{s.delay_seconds}s {s.channels?.join('/')} ({s.audience})
              </span>
            ))}
          </li>
        ))}
      </ul>
    </div>
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
