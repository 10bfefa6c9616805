import { useMemo, useState } from 'preact/hooks';
import { ApiError, can, get, post, type List } from '../api';
import { fmtTime, t, useT } from '../i18n';
import { onLink } from '../router';
import { ApprovalCard, ErrorBox, Loading, type Approval, useLoad } from '../ui';

// The approval queue across sessions: filters by level, server and standing order; bulk reject.
export function ApprovalsPage() {
  useT();
  const [status, setStatus] = useState('pending');
  const [level, setLevel] = useState('');
  const [server, setServer] = useState('');
  const [order, setOrder] = useState('');
  const q = useLoad(() => get<List<Approval>>('/api/v1/ops/approvals?status=' + status), [status]);
  const [override, setOverride] = useState<Record<string, Approval>>({});
  const [picked, setPicked] = useState<Set<string>>(new Set());
  const [err, setErr] = useState<ApiError | null>(null);
  const items = useMemo(
    () =>
      (q.data?.items ?? [])
        .map((a) => override[a.id] ?? a)
        .filter((a) => (level === '' || String(a.risk_level) === level) && (!server || JSON.stringify(a.tool_input ?? '').includes(server) || a.command.includes(server)) && (!order || (a.reason + a.command).includes(order))),
    [q.data, override, level, server, order],
  );
  const bulk = async () => {
    setErr(null);
    for (const id of picked) {
      try {
        const a = await post<Approval>(`/api/v1/ops/approvals/${encodeURIComponent(id)}/reject`, { reason: 'bulk reject' });
        setOverride((m) => ({ ...m, [a.id]: a }));
      } catch (e) {
        setErr(e as ApiError);
      }
    }
    setPicked(new Set());
  };
  const toggle = (id: string) =>
    setPicked((s) => {
      const n = new Set(s);
      n.has(id) ? n.delete(id) : n.add(id);
      return n;
    });
  return (
    <div class="page">
      <h1>{t('approval.queue')}</h1>
      <div class="filters">
        <label>
          {t('common.status')}
          <select value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
            {['pending', 'approved', 'rejected', 'expired', 'all'].map((s) => (
              <option value={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          {t('approval.level')}
          <select value={level} onChange={(e) => setLevel(e.currentTarget.value)}>
            <option value="">{t('common.all')}</option>
            <option value="1">L1</option>
            <option value="2">L2</option>
          </select>
        </label>
        <label>
          {t('approval.server')}
          <input value={server} onInput={(e) => setServer(e.currentTarget.value)} />
        </label>
        <label>
          {t('approval.order')}
          <input value={order} placeholder="SO-…" onInput={(e) => setOrder(e.currentTarget.value)} />
        </label>
        <button type="button" onClick={q.reload}>
          {t('common.refresh')}
        </button>
        {can('approve_l1') && picked.size > 0 && (
          <button type="button" class="danger" onClick={bulk}>
            {t('approval.bulkReject', { n: picked.size })}
          </button>
        )}
      </div>
      <ErrorBox error={q.error ?? err} />
      <Loading when={q.loading && !q.data}>
        {items.length === 0 && <p class="muted">{t('common.none')}</p>}
        <div class="cards">
          {items.map((a) => (
            <div class="queue-item" key={a.id}>
              {can('approve_l1') && a.status === 'pending' && (
                <input type="checkbox" aria-label={a.command} checked={picked.has(a.id)} onChange={() => toggle(a.id)} />
              )}
              <ApprovalCard a={a} onDecided={(x) => setOverride((m) => ({ ...m, [x.id]: x }))} />
              <div class="muted small">
                {t('approval.session')}:{' '}
                <a href={'/chat/' + a.session_id} onClick={onLink}>
                  {a.session_id}
                </a>{' '}
                · {fmtTime(a.created_at)}
              </div>
            </div>
          ))}
        </div>
      </Loading>
    </div>
  );
}
