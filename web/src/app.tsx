import { useEffect, useState } from 'preact/hooks';
import { ApiError, login, session, signOut, signOutReason } from './api';
import { AlertFeed, EscalationOverlay, startFeed } from './alerts';
import { lang, setLang, t, useT } from './i18n';
import { navigate, onLink, useRoute } from './router';
import { useStore } from './state';
import { ErrorBox } from './ui';
import { ApprovalsPage } from './pages/approvals';
import { AuditPage } from './pages/audit';
import { ChatPage } from './pages/chat';
import { EscalationsPage } from './pages/escalations';
import { FleetPage } from './pages/fleet';
import { MonitoringPage } from './pages/monitoring';
import { OrdersPage } from './pages/orders';
import { SettingsPage } from './pages/settings';

const PAGES: { path: string; key: any; perm?: string; page: () => any }[] = [
  { path: 'chat', key: 'nav.chat', page: ChatPage },
  { path: 'approvals', key: 'nav.approvals', page: ApprovalsPage },
  { path: 'orders', key: 'nav.orders', page: OrdersPage },
  { path: 'fleet', key: 'nav.fleet', page: FleetPage },
  { path: 'monitoring', key: 'nav.monitoring', page: MonitoringPage },
  { path: 'escalations', key: 'nav.escalations', page: EscalationsPage },
  { path: 'audit', key: 'nav.audit', perm: 'view_audit', page: AuditPage },
  { path: 'settings', key: 'nav.settings', page: SettingsPage },
];

export function App() {
  const s = useStore(session);
  useStore(lang);
  useEffect(() => (s ? startFeed() : undefined), [!!s]);
  if (!s) return <Login />;
  return <Shell />;
}

function Shell() {
  useT();
  const { parts } = useRoute();
  const me = useStore(session)!.me;
  const cur = PAGES.find((p) => p.path === parts[0]);
  useEffect(() => {
    if (!cur) navigate('/chat', true);
  }, [cur]);
  const Page = (cur ?? PAGES[0]).page;
  const l = useStore(lang);
  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <strong class="brand">IT0</strong>
        <nav aria-label={t('nav.menu')}>
          {PAGES.filter((p) => !p.perm || me.permissions.includes(p.perm)).map((p) => (
            <a href={'/' + p.path} onClick={onLink} aria-current={p === cur ? 'page' : undefined}>
              {t(p.key)}
            </a>
          ))}
        </nav>
        <div class="who">
          <AlertFeed />
          <button type="button" class="small" onClick={() => setLang(l === 'zh' ? 'en' : 'zh')} aria-label={t('settings.language')}>
            {l === 'zh' ? 'EN' : '中文'}
          </button>
          <span class="muted small" data-role={me.role}>
            {me.user.email} · {me.role}
          </span>
          <button type="button" class="small" onClick={() => signOut()}>
            {t('nav.signout')}
          </button>
        </div>
      </header>
      <main id="main">
        <Page />
      </main>
      <EscalationOverlay />
    </div>
  );
}

function Login() {
  useT();
  const reason = useStore(signOutReason);
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<ApiError | null>(null);
  const l = useStore(lang);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErr(null);
    try {
      await login(email, password);
      setPassword('');
    } catch (x) {
      setErr(x as ApiError);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="login">
      <form class="card form" onSubmit={submit}>
        <h1>{t('login.title')}</h1>
        {reason && <p class="banner">{t('login.expired', { reason })}</p>}
        <label class="field">
          <span>{t('login.email')}</span>
          <input type="email" name="email" autocomplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
        </label>
        <label class="field">
          <span>{t('login.password')}</span>
          <input type="password" name="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        </label>
        <button type="submit" class="primary" disabled={busy}>
          {t('login.submit')}
        </button>
        <ErrorBox error={err} />
        <button type="button" class="link" onClick={() => setLang(l === 'zh' ? 'en' : 'zh')}>
          {l === 'zh' ? 'English' : '中文'}
        </button>
      </form>
    </main>
  );
}
