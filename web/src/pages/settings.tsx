import { useState } from 'preact/hooks';
import { ApiError, can, del, get, patch, post, put, type List } from '../api';
import { lang, setLang, t, useT, type Lang } from '../i18n';
import { useStore } from '../state';
import { theme, setTheme } from '../theme';
import { ErrorBox, Field, useLoad } from '../ui';

export function SettingsPage() {
  useT();
  return (
    <div class="page">
      <h1>{t('nav.settings')}</h1>
      <Prefs />
      {can('manage_users') && <Users />}
      <APIKeys />
      {can('switch_engine') && <Engine />}
      <Timeouts />
      <Report />
      {can('manage_settings') && <Rules />}
    </div>
  );
}

function Prefs() {
  const l = useStore(lang);
  const th = useStore(theme);
  return (
    <section class="card form">
      <Field label={t('settings.language')}>
        <select value={l} onChange={(e) => setLang(e.currentTarget.value as Lang)}>
          <option value="en">English</option>
          <option value="zh">中文</option>
        </select>
      </Field>
      <Field label={t('settings.theme')}>
        <select value={th} onChange={(e) => setTheme(e.currentTarget.value as any)}>
          <option value="light">{t('settings.light')}</option>
          <option value="dark">{t('settings.dark')}</option>
        </select>
      </Field>
    </section>
  );
}

function Users() {
  const list = useLoad(() => get<List<any>>('/api/v1/auth/users'), []);
  const [f, setF] = useState({ email: '', password: '', role: 'viewer' });
  const [err, setErr] = useState<ApiError | null>(null);
  const create = async (e: Event) => {
    e.preventDefault();
    setErr(null);
    try {
      await post('/api/v1/auth/users', f);
      setF({ email: '', password: '', role: 'viewer' });
      list.reload();
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  const setRole = async (id: string, role: string) => {
    try {
      await patch('/api/v1/auth/users/' + encodeURIComponent(id), { role });
      list.reload();
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  return (
    <section class="card">
      <h2>{t('settings.users')}</h2>
      <table>
        <tbody>
          {list.data?.items.map((u) => (
            <tr key={u.id}>
              <td>{u.email}</td>
              <td>
                <select aria-label={t('settings.role')} value={u.role} onChange={(e) => setRole(u.id, e.currentTarget.value)}>
                  {['viewer', 'operator', 'admin'].map((r) => (
                    <option value={r}>{r}</option>
                  ))}
                </select>
              </td>
              <td>{u.status}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="form inline" onSubmit={create}>
        <Field label={t('settings.email')} error={err?.field === 'email' ? err.message : undefined}>
          <input type="email" value={f.email} onInput={(e) => setF({ ...f, email: e.currentTarget.value })} />
        </Field>
        <Field label={t('login.password')} error={err?.field === 'password' ? err.message : undefined}>
          <input type="password" autocomplete="new-password" value={f.password} onInput={(e) => setF({ ...f, password: e.currentTarget.value })} />
        </Field>
        <Field label={t('settings.role')}>
          <select value={f.role} onChange={(e) => setF({ ...f, role: e.currentTarget.value })}>
            {['viewer', 'operator', 'admin'].map((r) => (
              <option value={r}>{r}</option>
            ))}
          </select>
        </Field>
        <button type="submit" class="primary">
          {t('settings.create')}
        </button>
      </form>
      {err && !err.field && <ErrorBox error={err} />}
    </section>
  );
}

function APIKeys() {
  const list = useLoad(() => get<List<any>>('/api/v1/auth/api-keys'), []);
  const [name, setName] = useState('');
  const [shown, setShown] = useState('');
  const [err, setErr] = useState<ApiError | null>(null);
  const create = async (e: Event) => {
    e.preventDefault();
    setErr(null);
    try {
      const r = await post<{ key: string }>('/api/v1/auth/api-keys', { name });
      setShown(r.key);
      setName('');
      list.reload();
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  const revoke = async (id: string) => {
    try {
      await del('/api/v1/auth/api-keys/' + encodeURIComponent(id));
      list.reload();
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  return (
    <section class="card">
      <h2>{t('settings.apiKeys')}</h2>
      {shown && (
        <p class="ok">
          {t('settings.keyShown')} <code class="secret">{shown}</code>
        </p>
      )}
      <ul>
        {list.data?.items.map((k) => (
          <li key={k.id}>
            {k.name} <span class="muted">{k.role} {k.prefix ?? ''} {k.revoked_at ? '(revoked)' : ''}</span>{' '}
            {!k.revoked_at && (
              <button type="button" class="small danger" onClick={() => revoke(k.id)}>
                {t('settings.revoke')}
              </button>
            )}
          </li>
        ))}
      </ul>
      <form class="form inline" onSubmit={create}>
        <Field label={t('common.name')}>
          <input value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </Field>
        <button type="submit" class="primary">
          {t('settings.create')}
        </button>
      </form>
      <ErrorBox error={err ?? list.error} />
    </section>
  );
}

function Engine() {
  const list = useLoad(() => get<List<any>>('/api/v1/agent/engines'), []);
  const [err, setErr] = useState<ApiError | null>(null);
  const pick = async (engine: string) => {
    try {
      await post('/api/v1/agent/engine', { engine });
      list.reload();
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  return (
    <section class="card">
      <h2>{t('settings.engine')}</h2>
      <ul>
        {list.data?.items.map((e) => (
          <li key={e.name}>
            <label>
              <input type="radio" name="engine" checked={!!e.active} onChange={() => pick(e.name)} /> {e.name}{' '}
              <span class="muted">{e.healthy === false ? e.error ?? 'unavailable' : ''}</span>
            </label>
          </li>
        ))}
      </ul>
      <ErrorBox error={err} />
    </section>
  );
}

function Timeouts() {
  const cur = useLoad(() => get<any>('/api/v1/ops/approval-timeouts').catch(() => null), []);
  const [v, setV] = useState<any>(null);
  const [msg, setMsg] = useState('');
  const [err, setErr] = useState<ApiError | null>(null);
  const val = v ?? cur.data;
  if (!val) return null;
  const keys = Object.keys(val).filter((k) => typeof val[k] === 'number');
  const save = async (e: Event) => {
    e.preventDefault();
    setErr(null);
    try {
      setV(await put('/api/v1/ops/approval-timeouts', val));
      setMsg(t('common.saved'));
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  return (
    <form class="card form" onSubmit={save}>
      <h2>{t('settings.timeouts')}</h2>
      {keys.map((k) => (
        <Field key={k} label={k} error={err?.field === k ? err.message : undefined}>
          <input type="number" min={0} value={val[k]} disabled={!can('manage_settings')} onInput={(e) => setV({ ...val, [k]: Number(e.currentTarget.value) })} />
        </Field>
      ))}
      {can('manage_settings') && (
        <button type="submit" class="primary">
          {t('common.save')}
        </button>
      )}
      {msg && <span class="ok">{msg}</span>}
      {err && !err.field && <ErrorBox error={err} />}
    </form>
  );
}

function Report() {
  const cur = useLoad(() => get<any>('/api/v1/ops/report-settings').catch(() => null), []);
  const [v, setV] = useState<any>(null);
  const [msg, setMsg] = useState('');
  const [err, setErr] = useState<ApiError | null>(null);
  const val = v ?? cur.data;
  if (!val) return null;
  const save = async (e: Event) => {
    e.preventDefault();
    setErr(null);
    try {
      setV(await put('/api/v1/ops/report-settings', val));
      setMsg(t('common.saved'));
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  return (
    <form class="card form" onSubmit={save}>
      <h2>{t('settings.report')}</h2>
      {Object.keys(val).map((k) =>
        typeof val[k] === 'boolean' ? (
          <label key={k} class="check">
            <input type="checkbox" checked={val[k]} onChange={(e) => setV({ ...val, [k]: e.currentTarget.checked })} /> {k}
          </label>
        ) : (
          <Field key={k} label={k} error={err?.field === k ? err.message : undefined}>
            <input value={String(val[k] ?? '')} onInput={(e) => setV({ ...val, [k]: e.currentTarget.value })} />
          </Field>
        ),
      )}
      {can('manage_settings') && (
        <button type="submit" class="primary">
          {t('common.save')}
        </button>
      )}
      {msg && <span class="ok">{msg}</span>}
      {err && !err.field && <ErrorBox error={err} />}
    </form>
  );
}

function Rules() {
  const cur = useLoad(() => get<{ yaml?: string; rules?: string }>('/api/v1/agent/risk-rules'), []);
  const [text, setText] = useState<string | null>(null);
  const [msg, setMsg] = useState('');
  const [err, setErr] = useState<ApiError | null>(null);
  const field = cur.data && 'rules' in cur.data ? 'rules' : 'yaml';
  const val = text ?? (cur.data as any)?.[field] ?? '';
  const save = async (e: Event) => {
    e.preventDefault();
    setErr(null);
    try {
      await put('/api/v1/agent/risk-rules', { [field]: val });
      setMsg(t('common.saved'));
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  return (
    <form class="card form" onSubmit={save}>
      <h2>{t('settings.rules')}</h2>
      <textarea rows={8} aria-label={t('settings.rules')} value={val} onInput={(e) => setText(e.currentTarget.value)} spellcheck={false} />
      <button type="submit" class="primary">
        {t('common.save')}
      </button>
      {msg && <span class="ok">{msg}</span>}
      <ErrorBox error={err ?? cur.error} />
    </form>
  );
}
