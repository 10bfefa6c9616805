import type { ComponentChildren } from 'preact';
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ansiSegments } from './ansi';
import { FOLD_LINES, foldOutput } from './fold';
import { ApiError, can, post } from './api';
import { fmtDuration, t, useT } from './i18n';

// useLoad runs an async load on mount and whenever deps change; reload() runs it again.
export function useLoad<T>(load: () => Promise<T>, deps: unknown[] = []): { data?: T; error?: ApiError; loading: boolean; reload: () => void } {
  const [st, setSt] = useState<{ data?: T; error?: ApiError; loading: boolean }>({ loading: true });
  const [n, setN] = useState(0);
  useEffect(() => {
    let live = true;
    setSt((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setSt({ data, loading: false }),
      (error) => live && setSt({ error: error instanceof ApiError ? error : new ApiError(0, 'client', String(error)), loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, n]);
  return { ...st, reload: () => setN((x) => x + 1) };
}

// useNow ticks every second (countdowns).
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const id = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(id);
  }, [ms]);
  return now;
}

export function ErrorBox({ error }: { error?: ApiError | null }) {
  if (!error) return null;
  return (
    <div class="error" role="alert">
      <strong>{error.message}</strong>
      {error.hint && <div class="hint">{error.hint}</div>}
    </div>
  );
}

export function Loading({ when, children }: { when: boolean; children?: ComponentChildren }) {
  useT();
  return when ? <p class="muted">{t('common.loading')}</p> : <>{children}</>;
}

export function RiskBadge({ level }: { level?: number }) {
  useT();
  if (level === undefined || level === null) return null;
  const l = Math.max(0, Math.min(3, level));
  return (
    <span class={'risk risk-' + l} title={t(('risk.' + l) as any)}>
      L{l}
    </span>
  );
}

export function Field({ label, error, children }: { label: string; error?: string; children: ComponentChildren }) {
  return (
    <label class={'field' + (error ? ' invalid' : '')}>
      <span>{label}</span>
      {children}
      {error && <span class="field-error">{error}</span>}
    </label>
  );
}

// Output shows tool output folded (see foldOutput): ANSI colours, controls dropped, long output cut to its
// head and tail (10 MB of output never goes into the DOM whole).
export function Output({ text, error }: { text: string; error?: boolean }) {
  useT();
  const [open, setOpen] = useState(false);
  const { shown, lines, cut } = useMemo(() => foldOutput(text, open), [text, open]);
  const segs = useMemo(() => ansiSegments(shown), [shown]);
  const download = () => {
    const url = URL.createObjectURL(new Blob([text], { type: 'text/plain' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = 'output.txt';
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  };
  return (
    <div class={'output' + (error ? ' output-error' : '')}>
      {cut && (
        <p class="muted">
          {t('tool.truncated', { size: (text.length / 1048576).toFixed(1) + ' MB' })}{' '}
          <button type="button" class="link" onClick={download}>
            {t('tool.download')}
          </button>
        </p>
      )}
      <pre>
        {segs.map((s, i) => (s.cls ? <span key={i} class={s.cls}>{s.text}</span> : s.text))}
      </pre>
      {lines > FOLD_LINES && (
        <button type="button" class="link" onClick={() => setOpen(!open)}>
          {open ? t('tool.fold') : t('tool.showAll', { n: lines })}
        </button>
      )}
    </div>
  );
}

export interface Approval {
  id: string;
  session_id: string;
  command: string;
  risk_level: number;
  reason: string;
  tool: string;
  tool_input?: any;
  status: string;
  decided_by?: string;
  decision_reason?: string;
  expires_at: string;
  created_at: string;
}

export function Countdown({ a }: { a: Approval }) {
  const now = useNow();
  useT();
  if (a.status !== 'pending') return null;
  const left = new Date(a.expires_at).getTime() - now;
  if (left <= 0) return <span class="countdown">{t('approval.expired')}</span>;
  const key = a.risk_level <= 1 ? 'approval.autoApprove' : 'approval.autoReject';
  return <span class={'countdown' + (left < 60000 ? ' urgent' : '')}>{t(key, { t: fmtDuration(left) })}</span>;
}

// canDecide says whether the signed-in role may decide an approval of this level (the API checks again).
export function canDecide(level: number): boolean {
  return level >= 2 ? can('approve') : can('approve_l1');
}

export function ApprovalCard({ a, onDecided, children, approveLabel, hideCommand }: { a: Approval; onDecided?: (a: Approval) => void; children?: ComponentChildren; approveLabel?: string; hideCommand?: boolean }) {
  useT();
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<ApiError | null>(null);
  const decide = async (approve: boolean) => {
    setBusy(true);
    setErr(null);
    try {
      const r = await post<Approval>(`/api/v1/agent/approvals/${encodeURIComponent(a.id)}/${approve ? 'approve' : 'reject'}`, reason ? { reason } : undefined);
      onDecided?.(r);
    } catch (e) {
      setErr(e as ApiError);
    } finally {
      setBusy(false);
    }
  };
  const pending = a.status === 'pending';
  return (
    <section class={'card approval' + (pending ? ' pending' : '')} aria-label={t('approval.title')} data-approval={a.id}>
      <header>
        <RiskBadge level={a.risk_level} />
        <strong>{pending ? t('approval.title') : a.status === 'approved' ? t('approval.approved') : a.status === 'rejected' ? t('approval.rejected') : a.status}</strong>
        <Countdown a={a} />
      </header>
      {children ?? (!hideCommand && <code class="cmd">{a.command}</code>)}
      {a.reason && <p class="muted">{a.reason}</p>}
      {!pending && a.decision_reason && <p class="muted">“{a.decision_reason}”</p>}
      {pending &&
        (canDecide(a.risk_level) ? (
          <div class="decide">
            <input aria-label={t('approval.reason')} placeholder={t('approval.reason')} value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
            <button type="button" class="primary" disabled={busy} onClick={() => decide(true)}>
              {approveLabel ?? t('approval.approve')}
            </button>
            <button type="button" class="danger" disabled={busy} onClick={() => decide(false)}>
              {t('approval.reject')}
            </button>
          </div>
        ) : (
          <p class="muted">{a.risk_level >= 2 && can('approve_l1') ? t('approval.needAdmin') : t('approval.viewOnly')}</p>
        ))}
      <ErrorBox error={err} />
    </section>
  );
}

// describeTrigger/Targets put a standing order's trigger and targets in words.
export function describeTrigger(tr: any): string {
  if (!tr) return '';
  switch (tr.type) {
    case 'cron':
      return t('trigger.cron', { expr: tr.cron_expression ?? '', tz: tr.timezone || 'UTC' });
    case 'event':
      return t('trigger.event', { event: tr.event_type ?? '' });
    case 'threshold': {
      const c = tr.threshold_condition ?? {};
      return t('trigger.threshold', { metric: c.metric_type ?? '', op: c.operator ?? '', value: c.value ?? '', d: c.duration_seconds ?? 0 });
    }
  }
  return t('trigger.manual');
}

export function describeTargets(tg: any): string {
  if (!tg) return '';
  const parts: string[] = [];
  if (tg.all_servers) parts.push(t('targets.all'));
  if (tg.server_ids?.length) parts.push(tg.server_ids.join(', '));
  if (tg.cluster_ids?.length) parts.push(tg.cluster_ids.join(', '));
  if (tg.environment_filter) parts.push(t('targets.env', { env: tg.environment_filter }));
  if (tg.tag_filter?.length) parts.push(t('targets.tags', { tags: tg.tag_filter.join(',') }));
  return parts.join(' · ');
}

// OrderSummary is a standing order (or a draft of one) as a person reads it.
export function OrderSummary({ o }: { o: any }) {
  useT();
  if (!o || typeof o !== 'object') return null;
  const b = o.decision_boundary ?? {};
  return (
    <dl class="order-summary">
      <dt>{t('common.name')}</dt>
      <dd>{String(o.name ?? '')}</dd>
      <dt>{t('draft.trigger')}</dt>
      <dd>{describeTrigger(o.trigger)}</dd>
      <dt>{t('draft.targets')}</dt>
      <dd>{describeTargets(o.targets)}</dd>
      <dt>{t('draft.does')}</dt>
      <dd>{String(o.agent_instructions?.prompt ?? '')}</dd>
      <dt>{t('draft.boundary')}</dt>
      <dd>
        {t('draft.maxRisk', { n: o.agent_instructions?.max_risk_level ?? 0 })}
        {b.allowed_actions?.length > 0 && <div>{t('orders.allowed')}: {b.allowed_actions.join('; ')}</div>}
        {b.escalate_conditions?.length > 0 && <div>{t('orders.escalateIf')}: {b.escalate_conditions.join('; ')}</div>}
      </dd>
    </dl>
  );
}

// VirtualList renders only the rows in view (plus some overscan), measuring each row's real height, so a
// chat with 10,000 events scrolls smoothly. It sticks to the bottom while the person is there.
export function VirtualList<T>({ items, keyOf, render, estimate = 72, class: cls }: { items: T[]; keyOf: (t: T) => string; render: (t: T) => ComponentChildren; estimate?: number; class?: string }) {
  const box = useRef<HTMLDivElement>(null);
  const heights = useRef(new Map<string, number>());
  const [scroll, setScroll] = useState({ top: 0, height: 800 });
  const [measured, bump] = useState(0); // bumped when a row's measured height changes
  const stick = useRef(true);
  const offsets = useMemo(() => {
    const o = new Float64Array(items.length + 1);
    for (let i = 0; i < items.length; i++) o[i + 1] = o[i] + (heights.current.get(keyOf(items[i])) ?? estimate);
    return o;
  }, [items, measured]);
  const total = offsets[items.length];
  const over = 600;
  let lo = 0;
  let hi = items.length;
  {
    let a = 0,
      b = items.length;
    while (a < b) {
      const m = (a + b) >> 1;
      if (offsets[m + 1] < scroll.top - over) a = m + 1;
      else b = m;
    }
    lo = a;
    let c = lo;
    while (c < items.length && offsets[c] < scroll.top + scroll.height + over) c++;
    hi = c;
  }
  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    let changed = false;
    for (const row of Array.from(el.querySelectorAll<HTMLElement>('[data-vkey]'))) {
      const k = row.dataset.vkey!;
      const h = row.offsetHeight;
      if (heights.current.get(k) !== h) {
        heights.current.set(k, h);
        changed = true;
      }
    }
    if (changed) bump((x) => x + 1);
    if (stick.current) el.scrollTop = el.scrollHeight;
  });
  const onScroll = () => {
    const el = box.current!;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    setScroll({ top: el.scrollTop, height: el.clientHeight });
  };
  useEffect(() => {
    const el = box.current!;
    setScroll({ top: el.scrollTop, height: el.clientHeight });
    const ro = new ResizeObserver(() => setScroll({ top: el.scrollTop, height: el.clientHeight }));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);
  return (
    <div class={'vlist ' + (cls ?? '')} ref={box} onScroll={onScroll} role="log" aria-live="polite">
      <div style={{ height: total + 'px', position: 'relative' }}>
        <div style={{ transform: `translateY(${offsets[lo]}px)` }}>
          {items.slice(lo, hi).map((it) => (
            <div key={keyOf(it)} data-vkey={keyOf(it)}>
              {render(it)}
            </div>
          ))}
        </div>
      </div>
      {!stick.current && (
        <button
          type="button"
          class="jump"
          onClick={() => {
            stick.current = true;
            box.current!.scrollTop = box.current!.scrollHeight;
          }}
        >
          {t('chat.jump')}
        </button>
      )}
    </div>
  );
}
