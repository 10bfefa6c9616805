import { useState } from 'preact/hooks';
import { ApiError, can, get, patch, post, type List } from '../api';
import { fmtTime, t, useT } from '../i18n';
import { onLink, useRoute } from '../router';
import { ErrorBox, Field, Loading, OrderSummary, describeTargets, describeTrigger, useLoad } from '../ui';

interface Order {
  id: string;
  name: string;
  status: string;
  trigger: any;
  targets: any;
  agent_instructions: any;
  decision_boundary: any;
  escalation_policy_id?: string;
  updated_at: string;
}

interface Execution {
  id: string;
  status: string;
  trigger_type: string;
  session_id?: string;
  summary?: string;
  actions_taken?: any;
  error?: string;
  escalation?: any;
  human_response?: any;
  started_at: string;
  finished_at?: string;
}

export function OrdersPage() {
  const { parts } = useRoute();
  return parts[1] ? <OrderDetail id={parts[1]} /> : <OrderList />;
}

function OrderList() {
  useT();
  const [status, setStatus] = useState('');
  const list = useLoad(() => get<List<Order>>('/api/v1/ops/standing-orders' + (status ? '?status=' + status : '')), [status]);
  return (
    <div class="page">
      <h1>{t('orders.title')}</h1>
      <div class="filters">
        <label>
          {t('common.status')}
          <select value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
            <option value="">{t('common.all')}</option>
            {['active', 'paused', 'archived'].map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
      </div>
      <ErrorBox error={list.error} />
      <Loading when={list.loading && !list.data}>
        {list.data?.items.length === 0 && <p class="muted">{t('common.none')}</p>}
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th>ID</th>
                <th>{t('common.name')}</th>
                <th>{t('common.status')}</th>
                <th>{t('draft.trigger')}</th>
                <th>{t('orders.next')}</th>
                <th>{t('orders.last')}</th>
              </tr>
            </thead>
            <tbody>
              {list.data?.items.map((o) => (
                <OrderRow key={o.id} o={o} />
              ))}
            </tbody>
          </table>
        </div>
      </Loading>
    </div>
  );
}

function OrderRow({ o }: { o: Order }) {
  const ex = useLoad(() => get<List<Execution>>(`/api/v1/ops/standing-orders/${encodeURIComponent(o.id)}/executions`), [o.id]);
  const last = ex.data?.items[0];
  return (
    <tr data-order={o.id}>
      <td>
        <a href={'/orders/' + o.id} onClick={onLink}>
          {o.id}
        </a>
      </td>
      <td>{o.name}</td>
      <td>
        <span class={'status status-' + o.status}>{o.status}</span>
      </td>
      <td>{describeTrigger(o.trigger)}</td>
      <td>{o.status === 'active' ? nextRun(o.trigger) : '—'}</td>
      <td>{last ? `${last.status} · ${fmtTime(last.finished_at ?? last.started_at)}` : '—'}</td>
    </tr>
  );
}

// nextRun works out the next time of a simple cron trigger (minute hour * * *); others are shown in words.
export function nextRun(tr: any): string {
  if (tr?.type !== 'cron' || !tr.cron_expression) return '—';
  const f = String(tr.cron_expression).trim().split(/\s+/);
  if (f.length !== 5 || !/^\d+$/.test(f[0]) || !/^\d+$/.test(f[1]) || f.slice(2).some((x) => x !== '*')) return tr.cron_expression;
  if (tr.timezone && tr.timezone !== 'UTC') return tr.cron_expression + ' (' + tr.timezone + ')';
  const now = new Date();
  const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), +f[1], +f[0]));
  if (d <= now) d.setUTCDate(d.getUTCDate() + 1);
  return fmtTime(d.toISOString());
}

function OrderDetail({ id }: { id: string }) {
  useT();
  const o = useLoad(() => get<Order>('/api/v1/ops/standing-orders/' + encodeURIComponent(id)), [id]);
  const ex = useLoad(() => get<List<Execution>>(`/api/v1/ops/standing-orders/${encodeURIComponent(id)}/executions`), [id]);
  const [err, setErr] = useState<ApiError | null>(null);
  const [note, setNote] = useState('');
  const [editing, setEditing] = useState(false);
  const act = async (what: string) => {
    setErr(null);
    setNote('');
    try {
      const r = await post<any>(`/api/v1/ops/standing-orders/${encodeURIComponent(id)}/${what}`);
      if (what === 'run') {
        setNote(t('orders.started', { id: r.id }));
        ex.reload();
      } else o.reload();
    } catch (e) {
      setErr(e as ApiError);
    }
  };
  const manage = can('manage_settings');
  return (
    <div class="page">
      <p>
        <a href="/orders" onClick={onLink}>
          ← {t('orders.title')}
        </a>
      </p>
      <ErrorBox error={o.error} />
      <Loading when={o.loading && !o.data}>
        {o.data && (
          <>
            <h1>
              {o.data.id} <span class={'status status-' + o.data.status}>{o.data.status}</span>
            </h1>
            <OrderSummary o={o.data} />
            {o.data.escalation_policy_id && (
              <p>
                {t('orders.escalation')}: {o.data.escalation_policy_id}
              </p>
            )}
            <div class="actions">
              {manage && o.data.status === 'active' && (
                <button type="button" onClick={() => act('pause')}>
                  {t('orders.pause')}
                </button>
              )}
              {manage && o.data.status === 'paused' && (
                <button type="button" onClick={() => act('resume')}>
                  {t('orders.resume')}
                </button>
              )}
              {can('start_inspection') && o.data.status !== 'archived' && (
                <button type="button" class="primary" onClick={() => act('run')}>
                  {t('orders.run')}
                </button>
              )}
              {manage && o.data.status !== 'archived' && (
                <button type="button" onClick={() => setEditing(!editing)}>
                  {t('orders.edit')}
                </button>
              )}
              {manage && o.data.status !== 'archived' && (
                <button type="button" class="danger" onClick={() => act('archive')}>
                  {t('orders.archive')}
                </button>
              )}
            </div>
            {note && <p class="ok">{note}</p>}
            <ErrorBox error={err} />
            {editing && <OrderEdit o={o.data} onSaved={() => (setEditing(false), o.reload())} />}
          </>
        )}
      </Loading>
      <h2>{t('orders.executions')}</h2>
      <ol class="timeline">
        {ex.data?.items.map((e) => (
          <li key={e.id} class={'exec exec-' + e.status}>
            <div>
              <strong>{e.status}</strong> · {e.trigger_type} · {fmtTime(e.started_at)}
              {e.session_id && (
                <>
                  {' · '}
                  <a href={'/chat/' + e.session_id} onClick={onLink}>
                    {t('nav.chat')}
                  </a>
                </>
              )}
            </div>
            {e.summary && <p>{e.summary}</p>}
            {Array.isArray(e.actions_taken) && e.actions_taken.length > 0 && (
              <ul class="small">
                {e.actions_taken.map((a: any, i: number) => (
                  <li key={i}>{typeof a === 'string' ? a : a.command ?? JSON.stringify(a)}</li>
                ))}
              </ul>
            )}
            {e.escalation && <p class="muted">{t('orders.escalation')}: {JSON.stringify(e.escalation)}</p>}
            {e.error && <p class="field-error">{e.error}</p>}
          </li>
        ))}
      </ol>
    </div>
  );
}

// OrderEdit patches the fields people change most; the API's validation errors are shown at their field.
function OrderEdit({ o, onSaved }: { o: Order; onSaved: () => void }) {
  useT();
  const [name, setName] = useState(o.name);
  const [cron, setCron] = useState(o.trigger?.cron_expression ?? '');
  const [prompt, setPrompt] = useState(o.agent_instructions?.prompt ?? '');
  const [risk, setRisk] = useState(String(o.agent_instructions?.max_risk_level ?? 0));
  const [err, setErr] = useState<ApiError | null>(null);
  const save = async (e: Event) => {
    e.preventDefault();
    setErr(null);
    const body: any = { name, agent_instructions: { prompt, max_risk_level: Number(risk) } };
    if (o.trigger?.type === 'cron') body.trigger = { cron_expression: cron };
    try {
      await patch('/api/v1/ops/standing-orders/' + encodeURIComponent(o.id), body);
      onSaved();
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  // The API names a bad field by JSON pointer (/trigger/cron_expression).
  const at = (f: string) => (err?.field && err.field.replace(/^\//, '').replace(/\//g, '.') === f ? err.message : undefined);
  return (
    <form class="card form" onSubmit={save}>
      <Field label={t('common.name')} error={at('name')}>
        <input value={name} onInput={(e) => setName(e.currentTarget.value)} />
      </Field>
      {o.trigger?.type === 'cron' && (
        <Field label="cron" error={at('trigger.cron_expression')}>
          <input value={cron} onInput={(e) => setCron(e.currentTarget.value)} />
        </Field>
      )}
      <Field label={t('orders.prompt')} error={at('agent_instructions.prompt')}>
        <textarea rows={3} value={prompt} onInput={(e) => setPrompt(e.currentTarget.value)} />
      </Field>
      <Field label="max_risk_level" error={at('agent_instructions.max_risk_level')}>
        <input type="number" value={risk} onInput={(e) => setRisk(e.currentTarget.value)} />
      </Field>
      {err && !err.field && <ErrorBox error={err} />}
      {err?.field && <p class="field-error">{err.message}</p>}
      <button type="submit" class="primary">
        {t('common.save')}
      </button>
    </form>
  );
}
