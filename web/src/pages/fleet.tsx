import { useMemo, useState } from 'preact/hooks';
import { ApiError, can, del, get, patch, post, session, type List } from '../api';
import { t, useT } from '../i18n';
import { ErrorBox, Field, Loading, Output, RiskBadge, useLoad } from '../ui';

interface Server {
  id: string;
  name: string;
  host: string;
  port: number;
  environment: string;
  role: string;
  tags: string[];
  status: string;
  jump_server_id?: string;
  host_key_fingerprint?: string;
}
interface Hop {
  hop: number;
  name: string;
  ok: boolean;
  stage?: string;
  error?: string;
}
interface ExecResult {
  server_id: string;
  server: string;
  status: string;
  exit_code?: number | null;
  stdout: string;
  stderr: string;
  risk_level: number;
  reason?: string;
  error?: string;
}

export function FleetPage() {
  useT();
  const [tab, setTab] = useState<'servers' | 'clusters' | 'credentials'>('servers');
  return (
    <div class="page">
      <h1>{t('nav.fleet')}</h1>
      <div class="tabs" role="tablist">
        {(['servers', 'clusters', 'credentials'] as const).map((x) => (
          <button type="button" role="tab" aria-selected={tab === x} class={tab === x ? 'active' : ''} onClick={() => setTab(x)}>
            {t(('fleet.' + x) as any)}
          </button>
        ))}
      </div>
      {tab === 'servers' && <Servers />}
      {tab === 'clusters' && <Clusters />}
      {tab === 'credentials' && <Credentials />}
    </div>
  );
}

function Servers() {
  useT();
  const [env, setEnv] = useState('');
  const [role, setRole] = useState('');
  const [tag, setTag] = useState('');
  const qs = new URLSearchParams(Object.entries({ environment: env, role, tag }).filter(([, v]) => v)).toString();
  const list = useLoad(() => get<List<Server>>('/api/v1/inventory/servers' + (qs ? '?' + qs : '')), [qs]);
  const [picked, setPicked] = useState<Set<string>>(new Set());
  const [checks, setChecks] = useState<Record<string, { ok: boolean; hops: Hop[] } | ApiError>>({});
  const check = async (id: string) => {
    try {
      const r = await post<{ ok: boolean; hops: Hop[] }>(`/api/v1/inventory/servers/${encodeURIComponent(id)}/check`);
      setChecks((c) => ({ ...c, [id]: r }));
    } catch (e) {
      setChecks((c) => ({ ...c, [id]: e as ApiError }));
    }
  };
  const toggle = (id: string) =>
    setPicked((s) => {
      const n = new Set(s);
      n.has(id) ? n.delete(id) : n.add(id);
      return n;
    });
  return (
    <>
      <div class="filters">
        <label>
          {t('fleet.env')}
          <input value={env} onInput={(e) => setEnv(e.currentTarget.value)} />
        </label>
        <label>
          {t('fleet.role')}
          <input value={role} onInput={(e) => setRole(e.currentTarget.value)} />
        </label>
        <label>
          {t('fleet.tags')}
          <input value={tag} placeholder="a,b" onInput={(e) => setTag(e.currentTarget.value)} />
        </label>
      </div>
      <ErrorBox error={list.error} />
      <Loading when={list.loading && !list.data}>
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th></th>
                <th>{t('common.name')}</th>
                <th>{t('fleet.host')}</th>
                <th>{t('fleet.env')}</th>
                <th>{t('fleet.role')}</th>
                <th>{t('fleet.tags')}</th>
                <th>{t('common.status')}</th>
                <th>{t('fleet.check')}</th>
              </tr>
            </thead>
            <tbody>
              {list.data?.items.map((s) => {
                const c = checks[s.id];
                return (
                  <tr key={s.id}>
                    <td>
                      <input type="checkbox" aria-label={s.name} checked={picked.has(s.id)} onChange={() => toggle(s.id)} />
                    </td>
                    <td>{s.name}</td>
                    <td>
                      {s.host}:{s.port}
                    </td>
                    <td>{s.environment}</td>
                    <td>{s.role}</td>
                    <td>{s.tags?.join(', ')}</td>
                    <td>{s.status}</td>
                    <td>
                      {can('start_inspection') && (
                        <button type="button" class="small" onClick={() => check(s.id)}>
                          {t('fleet.check')}
                        </button>
                      )}
                      {c instanceof ApiError ? (
                        <span class="field-error">{c.message}</span>
                      ) : (
                        c && (
                          <ol class="hops">
                            {c.hops.map((h) => (
                              <li class={h.ok ? 'ok' : 'bad'}>
                                {t('fleet.hop')} {h.hop} {h.name}: {h.ok ? t('fleet.ok') : `${t('fleet.failed')} (${h.stage ?? ''}) ${h.error ?? ''}`}
                              </li>
                            ))}
                          </ol>
                        )
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      </Loading>
      {can('start_inspection') && <RunOnSelection ids={[...picked]} names={Object.fromEntries((list.data?.items ?? []).map((s) => [s.id, s.name]))} />}
      {can('manage_servers') && <Import onDone={list.reload} />}
    </>
  );
}

// RunOnSelection runs a guarded command on the picked servers, streaming per-host results (NDJSON).
function RunOnSelection({ ids, names }: { ids: string[]; names: Record<string, string> }) {
  useT();
  const [cmd, setCmd] = useState('');
  const [results, setResults] = useState<Record<string, ExecResult | 'running'>>({});
  const [err, setErr] = useState<ApiError | null>(null);
  const run = async (e: Event) => {
    e.preventDefault();
    setErr(null);
    setResults(Object.fromEntries(ids.map((id) => [id, 'running' as const])));
    const resp = await fetch('/api/v1/inventory/exec', {
      method: 'POST',
      credentials: 'omit',
      headers: { Authorization: 'Bearer ' + (session.get()?.token ?? ''), 'Content-Type': 'application/json', Accept: 'application/x-ndjson' },
      body: JSON.stringify({ server_ids: ids, command: cmd }),
    });
    if (!resp.ok || !resp.body) {
      const b = await resp.json().catch(() => ({}));
      setResults({});
      return setErr(new ApiError(resp.status, b.error?.code ?? 'exec', b.error?.message ?? resp.statusText, b.error?.hint));
    }
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        try {
          const m = JSON.parse(line);
          if (m.type === 'result' && m.result) setResults((r) => ({ ...r, [m.result.server_id]: m.result }));
        } catch {
          /* a torn line */
        }
      }
    }
  };
  return (
    <form class="card form" onSubmit={run}>
      <h2>{t('fleet.run')}</h2>
      <Field label={t('fleet.command')}>
        <input value={cmd} onInput={(e) => setCmd(e.currentTarget.value)} />
      </Field>
      <button type="submit" class="primary" disabled={!ids.length || !cmd.trim()}>
        {t('fleet.run')} ({ids.length})
      </button>
      <ErrorBox error={err} />
      {Object.entries(results).map(([id, r]) => (
        <div class="exec-result" key={id}>
          <strong>{names[id] ?? id}</strong>{' '}
          {r === 'running' ? (
            <span class="muted">{t('tool.running')}</span>
          ) : (
            <>
              <RiskBadge level={r.risk_level} /> {r.status} {r.exit_code ?? ''} {r.reason ?? ''} {r.error ?? ''}
              {(r.stdout || r.stderr) && <Output text={r.stdout + (r.stderr ? '\n' + r.stderr : '')} error={r.status !== 'ok' && r.status !== 'success'} />}
            </>
          )}
        </div>
      ))}
    </form>
  );
}

function Import({ onDone }: { onDone: () => void }) {
  useT();
  const [content, setContent] = useState('');
  const [res, setRes] = useState<any>(null);
  const [err, setErr] = useState<ApiError | null>(null);
  const go = async (e: Event) => {
    e.preventDefault();
    setErr(null);
    try {
      setRes(await post('/api/v1/inventory/servers/import', { format: 'ssh_config', content }));
      onDone();
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  return (
    <form class="card form" onSubmit={go}>
      <h2>{t('fleet.import')}</h2>
      <p class="muted">{t('fleet.importHint')}</p>
      <input type="file" aria-label={t('fleet.import')} onChange={async (e) => setContent(await (e.currentTarget.files?.[0]?.text() ?? Promise.resolve('')))} />
      <textarea rows={6} aria-label="ssh_config" value={content} onInput={(e) => setContent(e.currentTarget.value)} placeholder={'Host web-1\n  HostName 10.0.0.5\n  User ops'} />
      <button type="submit" class="primary" disabled={!content.trim()}>
        {t('fleet.importDo')}
      </button>
      <ErrorBox error={err} />
      {res && <pre class="small">{JSON.stringify(res, null, 2)}</pre>}
    </form>
  );
}

interface Cluster {
  id: string;
  name: string;
  type: string;
  environment: string;
  description?: string;
  has_kubeconfig: boolean;
}

const CLUSTER_TYPES = ['bare_metal', 'k8s', 'docker_swarm'];
const ENVIRONMENTS = ['dev', 'staging', 'prod'];

// Clusters lists clusters with their servers' count and lets a manager add, edit and remove them. The
// kubeconfig is write-only: the page only says whether one is stored.
function Clusters() {
  useT();
  const list = useLoad(() => get<List<Cluster>>('/api/v1/inventory/clusters'), []);
  const servers = useLoad(() => get<List<Server & { cluster_id?: string }>>('/api/v1/inventory/servers'), []);
  const [editing, setEditing] = useState<Cluster | 'new' | null>(null);
  const [err, setErr] = useState<ApiError | null>(null);
  const manage = can('manage_servers');
  const count = (id: string) => servers.data?.items.filter((s) => s.cluster_id === id).length ?? 0;
  const remove = async (c: Cluster) => {
    if (!confirm(t('fleet.clusterDeleteConfirm', { name: c.name }))) return;
    setErr(null);
    try {
      await del('/api/v1/inventory/clusters/' + encodeURIComponent(c.id));
      list.reload();
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  return (
    <>
      <ErrorBox error={list.error ?? err} />
      <Loading when={list.loading && !list.data}>
        {list.data?.items.length === 0 ? (
          <p class="muted">{t('common.none')}</p>
        ) : (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th>{t('common.name')}</th>
                  <th>{t('fleet.kind')}</th>
                  <th>{t('fleet.env')}</th>
                  <th>{t('fleet.servers')}</th>
                  <th>kubeconfig</th>
                  <th>{t('common.actions')}</th>
                </tr>
              </thead>
              <tbody>
                {list.data?.items.map((c) => (
                  <tr key={c.id} data-cluster={c.name}>
                    <td>
                      {c.name}
                      {c.description && <div class="muted small">{c.description}</div>}
                    </td>
                    <td>{c.type}</td>
                    <td>{c.environment}</td>
                    <td>{count(c.id)}</td>
                    <td>{c.has_kubeconfig ? t('fleet.stored') : '—'}</td>
                    <td>
                      {manage && (
                        <>
                          <button type="button" class="small" onClick={() => setEditing(c)}>
                            {t('orders.edit')}
                          </button>{' '}
                          <button type="button" class="small danger" onClick={() => remove(c)}>
                            {t('common.delete')}
                          </button>
                        </>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Loading>
      {manage &&
        (editing ? (
          <ClusterForm
            key={editing === 'new' ? 'new' : editing.id}
            c={editing === 'new' ? undefined : editing}
            onDone={() => {
              setEditing(null);
              list.reload();
            }}
            onCancel={() => setEditing(null)}
          />
        ) : (
          <button type="button" class="primary" onClick={() => setEditing('new')}>
            + {t('fleet.addCluster')}
          </button>
        ))}
    </>
  );
}

function ClusterForm({ c, onDone, onCancel }: { c?: Cluster; onDone: () => void; onCancel: () => void }) {
  useT();
  const [f, setF] = useState({ name: c?.name ?? '', type: c?.type ?? 'bare_metal', environment: c?.environment ?? 'prod', description: c?.description ?? '', kubeconfig: '' });
  const [err, setErr] = useState<ApiError | null>(null);
  const [busy, setBusy] = useState(false);
  const save = async (e: Event) => {
    e.preventDefault();
    setErr(null);
    setBusy(true);
    const body: Record<string, string> = { name: f.name, type: f.type, environment: f.environment, description: f.description };
    if (f.kubeconfig) body.kubeconfig = f.kubeconfig; // write-only: sent only when replaced
    try {
      if (c) await patch('/api/v1/inventory/clusters/' + encodeURIComponent(c.id), body);
      else await post('/api/v1/inventory/clusters', body);
      setF({ ...f, kubeconfig: '' });
      onDone();
    } catch (x) {
      setErr(x as ApiError);
    } finally {
      setBusy(false);
    }
  };
  const at = (field: string) => (err?.field === field ? err.message : undefined);
  return (
    <form class="card form" onSubmit={save} autocomplete="off" aria-label={c ? t('fleet.editCluster') : t('fleet.addCluster')}>
      <h2>{c ? t('fleet.editCluster') : t('fleet.addCluster')}</h2>
      <Field label={t('common.name')} error={at('name')}>
        <input value={f.name} onInput={(e) => setF({ ...f, name: e.currentTarget.value })} />
      </Field>
      <Field label={t('fleet.kind')} error={at('type')}>
        <select value={f.type} onChange={(e) => setF({ ...f, type: e.currentTarget.value })}>
          {CLUSTER_TYPES.map((x) => (
            <option value={x}>{x}</option>
          ))}
        </select>
      </Field>
      <Field label={t('fleet.env')} error={at('environment')}>
        <select value={f.environment} onChange={(e) => setF({ ...f, environment: e.currentTarget.value })}>
          {ENVIRONMENTS.map((x) => (
            <option value={x}>{x}</option>
          ))}
        </select>
      </Field>
      <Field label={t('fleet.description')} error={at('description')}>
        <input value={f.description} onInput={(e) => setF({ ...f, description: e.currentTarget.value })} />
      </Field>
      <Field label={c?.has_kubeconfig ? t('fleet.kubeconfigReplace') : t('fleet.kubeconfig')} error={at('kubeconfig')}>
        <textarea rows={4} value={f.kubeconfig} onInput={(e) => setF({ ...f, kubeconfig: e.currentTarget.value })} />
      </Field>
      <div class="row">
        <button type="submit" class="primary" disabled={busy}>
          {t('common.save')}
        </button>
        <button type="button" onClick={onCancel}>
          {t('common.cancel')}
        </button>
      </div>
      {err && !err.field && <ErrorBox error={err} />}
    </form>
  );
}

function Credentials() {
  useT();
  const list = useLoad(() => (can('manage_servers') ? get<List<any>>('/api/v1/inventory/credentials') : Promise.resolve({ items: [] })), []);
  const [f, setF] = useState({ name: '', type: 'ssh_key', username: '', secret: '' });
  const [err, setErr] = useState<ApiError | null>(null);
  const add = async (e: Event) => {
    e.preventDefault();
    setErr(null);
    try {
      await post('/api/v1/inventory/credentials', f);
      setF({ ...f, name: '', secret: '' }); // the secret leaves the page as soon as it is stored
      list.reload();
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  const fields = useMemo(() => list.data?.items ?? [], [list.data]);
  return (
    <>
      <ErrorBox error={list.error} />
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>{t('common.name')}</th>
              <th>{t('fleet.kind')}</th>
              <th>{t('fleet.fingerprint')}</th>
            </tr>
          </thead>
          <tbody>
            {fields.map((c) => (
              <tr key={c.id}>
                <td>{c.name}</td>
                <td>
                  {c.type} {c.key_type ?? ''}
                </td>
                <td>
                  <code>{c.fingerprint ?? '—'}</code>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {can('manage_servers') && (
        <form class="card form" onSubmit={add} autocomplete="off">
          <h2>{t('fleet.addCredential')}</h2>
          <Field label={t('common.name')} error={err?.field === 'name' ? err.message : undefined}>
            <input value={f.name} onInput={(e) => setF({ ...f, name: e.currentTarget.value })} />
          </Field>
          <Field label={t('fleet.kind')}>
            <select value={f.type} onChange={(e) => setF({ ...f, type: e.currentTarget.value })}>
              <option value="ssh_key">ssh_key</option>
              <option value="password">password</option>
            </select>
          </Field>
          <Field label="user">
            <input value={f.username} onInput={(e) => setF({ ...f, username: e.currentTarget.value })} />
          </Field>
          <Field label={t('fleet.secret')} error={err?.field === 'secret' ? err.message : undefined}>
            <textarea rows={4} value={f.secret} onInput={(e) => setF({ ...f, secret: e.currentTarget.value })} />
          </Field>
          <button type="submit" class="primary">
            {t('settings.create')}
          </button>
          {err && !err.field && <ErrorBox error={err} />}
        </form>
      )}
    </>
  );
}
