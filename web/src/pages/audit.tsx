import { useEffect, useState } from 'preact/hooks';
import { ApiError, get, session } from '../api';
import { fmtTime, t, useT } from '../i18n';
import { ErrorBox } from '../ui';

interface Entry {
  id: number;
  seq: number;
  action_type: string;
  actor_type: string;
  actor_id: string;
  resource_type: string;
  resource_id: string;
  description: string;
  ip_address?: string;
  created_at: string;
}

const toRFC = (local: string) => (local ? new Date(local).toISOString() : '');

export function AuditPage() {
  useT();
  const [f, setF] = useState({ actor: '', action_type: '', resource_type: '', since: '', until: '' });
  const [rows, setRows] = useState<Entry[]>([]);
  const [cursor, setCursor] = useState('');
  const [err, setErr] = useState<ApiError | null>(null);
  const [verify, setVerify] = useState<{ ok: boolean; checked: number; reason?: string; first_bad_seq?: number } | null>(null);
  const [loaded, setLoaded] = useState(false);
  const query = () => {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(f)) if (v) p.set(k, k === 'since' || k === 'until' ? toRFC(v) : v);
    return p;
  };
  const load = async (more = false) => {
    setErr(null);
    const p = query();
    p.set('limit', '100');
    if (more && cursor) p.set('cursor', cursor);
    try {
      const r = await get<{ items: Entry[]; next_cursor?: string }>('/api/v1/audit/logs?' + p);
      setRows(more ? [...rows, ...r.items] : r.items);
      setCursor(r.next_cursor ?? '');
      setLoaded(true);
    } catch (e) {
      setErr(e as ApiError);
    }
  };
  useEffect(() => {
    load();
  }, []);
  const doVerify = async () => {
    setErr(null);
    try {
      setVerify(await get('/api/v1/audit/verify'));
    } catch (e) {
      setErr(e as ApiError);
    }
  };
  const exportLog = async () => {
    // The export needs the bearer token, so fetch it and hand the browser a blob.
    const resp = await fetch('/api/v1/audit/export?' + query(), { headers: { Authorization: 'Bearer ' + (session.get()?.token ?? '') }, credentials: 'omit' });
    if (!resp.ok) return setErr(new ApiError(resp.status, 'export', resp.statusText));
    const url = URL.createObjectURL(await resp.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = 'audit.jsonl';
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  const set = (k: keyof typeof f) => (e: any) => setF({ ...f, [k]: e.currentTarget.value });
  return (
    <div class="page">
      <h1>{t('audit.title')}</h1>
      <form
        class="filters"
        onSubmit={(e) => {
          e.preventDefault();
          load();
        }}
      >
        <label>
          {t('audit.actor')}
          <input value={f.actor} onInput={set('actor')} />
        </label>
        <label>
          {t('audit.action')}
          <input value={f.action_type} onInput={set('action_type')} />
        </label>
        <label>
          {t('audit.resource')}
          <input value={f.resource_type} onInput={set('resource_type')} />
        </label>
        <label>
          {t('audit.from')}
          <input type="datetime-local" value={f.since} onInput={set('since')} />
        </label>
        <label>
          {t('audit.to')}
          <input type="datetime-local" value={f.until} onInput={set('until')} />
        </label>
        <button type="submit">{t('common.filter')}</button>
        <button type="button" onClick={exportLog}>
          {t('audit.export')}
        </button>
        <button type="button" class="primary" onClick={doVerify}>
          {t('audit.verify')}
        </button>
      </form>
      {verify && (
        <p class={verify.ok ? 'ok verify' : 'error verify'} role="status">
          {verify.ok ? t('audit.verifyOk', { n: verify.checked }) : t('audit.verifyBad', { detail: `#${verify.first_bad_seq ?? '?'} ${verify.reason ?? ''}` })}
        </p>
      )}
      <ErrorBox error={err} />
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>#</th>
              <th>{t('audit.time')}</th>
              <th>{t('audit.actor')}</th>
              <th>{t('audit.action')}</th>
              <th>{t('audit.resource')}</th>
              <th></th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.id}>
                <td>{r.seq}</td>
                <td>{fmtTime(r.created_at)}</td>
                <td>
                  {r.actor_type}:{r.actor_id}
                </td>
                <td>{r.action_type}</td>
                <td>
                  {r.resource_type} {r.resource_id}
                </td>
                <td>{r.description}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {cursor && (
        <button type="button" onClick={() => load(true)}>
          {t('audit.more')}
        </button>
      )}
    </div>
  );
}
