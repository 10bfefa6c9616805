import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiError, can, get, post, type List } from '../api';
import { fmtTime, t, useT } from '../i18n';
import { navigate, onLink, useRoute } from '../router';
import { addUser, emptyView, parseFrame, reduce, type Item, type ToolItem, type View } from '../stream';
import { ApprovalCard, ErrorBox, Output, OrderSummary, RiskBadge, VirtualList, useLoad, type Approval } from '../ui';
import { Socket } from '../ws';
import { VoiceButton } from '../voice/button';

interface AgentSession {
  id: string;
  title: string;
  status: string;
  engine: string;
  skill?: string;
  created_at: string;
}

const ORDER_TOOL = 'create_standing_order';

// useAgentStream follows one session's events over /ws/agent, resuming after the last seq on reconnect.
function useAgentStream(sid: string | undefined) {
  const [view, setView] = useState<View>(emptyView);
  const [connected, setConnected] = useState(true);
  const ref = useRef(view);
  ref.current = view;
  useEffect(() => {
    const fresh = emptyView();
    setView(fresh);
    ref.current = fresh;
    if (!sid) return;
    const s = new Socket(
      '/ws/agent',
      () => ({ session: sid, after: ref.current.lastSeq }),
      (data) => {
        if (typeof data !== 'string') return;
        const next = reduce(ref.current, parseFrame(data));
        ref.current = next;
        setView(next);
      },
      setConnected,
    );
    return () => s.close();
  }, [sid]);
  return { view, setView: (f: (v: View) => View) => setView((ref.current = f(ref.current))), connected };
}

export function ChatPage() {
  useT();
  const { parts } = useRoute();
  const sid = parts[1];
  const current = useLoad(() => (sid ? get<AgentSession>('/api/v1/agent/sessions/' + encodeURIComponent(sid)) : Promise.resolve(undefined)), [sid]);
  const { view, setView, connected } = useAgentStream(sid);
  const sessions = useLoad(() => get<List<AgentSession>>('/api/v1/agent/sessions?limit=50'), [sid, view.state]);
  const approvalIds = useMemo(() => view.items.map((i) => (i.kind === 'tool' || i.kind === 'approval' ? i.approvalId : undefined)).filter(Boolean).join(','), [view.items]);
  const [approvals, setApprovals] = useState<Record<string, Approval>>({});
  useEffect(() => {
    if (!sid || !approvalIds) return;
    get<List<Approval>>('/api/v1/agent/approvals?session_id=' + encodeURIComponent(sid)).then(
      (l) => setApprovals(Object.fromEntries(l.items.map((a) => [a.id, a]))),
      () => {},
    );
  }, [sid, approvalIds, view.state]);
  const decided = (a: Approval) => setApprovals((m) => ({ ...m, [a.id]: a }));
  const [text, setText] = useState('');
  const [skill, setSkill] = useState('');
  const [err, setErr] = useState<ApiError | null>(null);
  const skills = useLoad(() => get<List<{ name: string; description: string }>>('/api/v1/agent/skills').catch(() => ({ items: [] })), []);
  const input = useRef<HTMLTextAreaElement>(null);
  const mayRun = can('start_inspection');

  const send = async (e?: Event) => {
    e?.preventDefault();
    const msg = text.trim();
    if (!msg) return;
    setErr(null);
    try {
      if (!sid) {
        const r = await post<{ session_id: string }>('/api/v1/agent/tasks', { prompt: msg, skill: skill || undefined });
        setText('');
        navigate('/chat/' + r.session_id);
        pendingFirst = msg;
      } else {
        await post('/api/v1/agent/sessions/' + encodeURIComponent(sid) + '/messages', { message: msg });
        setView((v) => addUser(v, msg));
        setText('');
      }
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  // The first prompt of a new session is shown from the session's title until the stream starts.
  useEffect(() => {
    if (sid && pendingFirst) {
      const m = pendingFirst;
      pendingFirst = '';
      setView((v) => addUser(v, m));
    }
  }, [sid]);
  const cancel = async () => {
    try {
      await post('/api/v1/agent/sessions/' + encodeURIComponent(sid!) + '/cancel');
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  const askEdit = () => {
    setText(t('draft.editPrompt'));
    input.current?.focus();
  };

  const renderItem = (it: Item) => {
    switch (it.kind) {
      case 'user':
        return <div class="msg user">{it.text}</div>;
      case 'text':
        return <div class="msg agent">{it.text}</div>;
      case 'thinking':
        return (
          <details class="msg thinking">
            <summary>{t('chat.thinking')}</summary>
            <p>{it.text}</p>
          </details>
        );
      case 'tool':
        return <ToolCall it={it} approval={it.approvalId ? approvals[it.approvalId] : undefined} onDecided={decided} onEdit={askEdit} />;
      case 'approval': {
        const a = approvals[it.approvalId] ?? pendingApproval(it.approvalId, it.command, it.risk, it.tool, sid!);
        return <ApprovalCard a={a} onDecided={decided} />;
      }
      case 'done':
        return (
          <div class="msg done">
            <strong>{t('chat.done')}</strong> {it.summary.length > 4000 ? it.summary.slice(0, 4000) + '…' : it.summary} <span class="muted">{t('chat.tokens', { n: it.tokens })}</span>
          </div>
        );
      case 'error':
        return (
          <div class="msg error" role="alert">
            {it.code}: {it.message}
          </div>
        );
    }
  };

  const running = view.state === 'running' || view.state === 'waiting';
  // The stream does not echo the person's first prompt: an opened session starts with its title.
  const items = useMemo<Item[]>(
    () => (view.items[0]?.kind === 'user' || !current.data?.title ? view.items : [{ kind: 'user', key: 'title', text: current.data.title }, ...view.items]),
    [view.items, current.data?.title],
  );
  return (
    <div class="chat">
      <aside class="sessions" aria-label={t('chat.sessions')}>
        <a class="button primary" href="/chat" onClick={onLink}>
          + {t('chat.new')}
        </a>
        <ul>
          {sessions.data?.items.map((s) => (
            <li key={s.id} class={s.id === sid ? 'active' : ''}>
              <a href={'/chat/' + s.id} onClick={onLink}>
                <span class="title">{s.title || s.id}</span>
                <span class="muted small">
                  {s.status} · {fmtTime(s.created_at)}
                </span>
              </a>
            </li>
          ))}
        </ul>
      </aside>
      <section class="conversation">
        <header class="bar">
          <strong class="grow">{current.data?.title || t('chat.new')}</strong>
          {current.data && (
            <span class="muted small">
              {t('chat.engine')}: {current.data.engine}
            </span>
          )}
          {sid && <span class={'state state-' + view.state}>{t(('chat.state.' + view.state) as any)}</span>}
          {sid && <VoiceButton sessionId={sid} />}
          {sid && running && mayRun && (
            <button type="button" class="danger" onClick={cancel}>
              {t('chat.cancel')}
            </button>
          )}
        </header>
        {!connected && sid && <div class="banner">{t('chat.reconnecting')}</div>}
        {sid ? (
          <VirtualList class="stream" items={items} keyOf={(i) => i.key} render={renderItem} />
        ) : (
          <div class="stream empty muted">{t('chat.empty')}</div>
        )}
        <ErrorBox error={err} />
        {mayRun && (
          <form class="composer" onSubmit={send}>
            {!sid && (
              <select aria-label={t('chat.skill')} value={skill} onChange={(e) => setSkill(e.currentTarget.value)}>
                <option value="">{t('chat.noSkill')}</option>
                {skills.data?.items.map((s) => (
                  <option key={s.name} value={s.name} title={s.description}>
                    {s.name}
                  </option>
                ))}
              </select>
            )}
            <textarea
              ref={input}
              aria-label={t('chat.placeholder')}
              placeholder={t('chat.placeholder')}
              rows={2}
              value={text}
              onInput={(e) => setText(e.currentTarget.value)}
              onKeyDown={(e) => {
                if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) send(e);
              }}
            />
            <button type="submit" class="primary">
              {t('chat.send')}
            </button>
          </form>
        )}
      </section>
    </div>
  );
}

let pendingFirst = '';

function pendingApproval(id: string, command: string, risk: number, tool: string, sid: string): Approval {
  return { id, session_id: sid, command, risk_level: risk, reason: '', tool, status: 'pending', expires_at: '', created_at: '' };
}

function ToolCall({ it, approval, onDecided, onEdit }: { it: ToolItem; approval?: Approval; onDecided: (a: Approval) => void; onEdit: () => void }) {
  useT();
  const isDraft = it.tool === ORDER_TOOL;
  const a = approval ?? (it.approvalId ? pendingApproval(it.approvalId, it.command ?? '', it.risk ?? 1, it.tool, '') : undefined);
  return (
    <div class="tool" data-tool={it.tool}>
      <div class="tool-head">
        {/* A command that ran without an approval passed the guard as L0. */}
        <RiskBadge level={it.risk ?? (it.done && !it.isError && it.tool === 'run_command' ? 0 : undefined)} />
        <span class="tool-name">{it.tool}</span>
        {it.server && <span class="server">@{it.server}</span>}
        {!it.done && !it.approvalId && <span class="muted small">{t('tool.running')}</span>}
      </div>
      {isDraft ? (
        <section class="card draft" aria-label={t('draft.title')}>
          <header>
            <strong>{t('draft.title')}</strong>
          </header>
          <OrderSummary o={it.input} />
        </section>
      ) : (
        it.command && <code class="cmd">{it.command}</code>
      )}
      {a &&
        (isDraft ? (
          <ApprovalCard a={a} onDecided={onDecided} approveLabel={t('draft.confirm')}>
            <div class="draft-actions">
              {a.status === 'pending' && (
                <button type="button" class="link" onClick={onEdit}>
                  {t('draft.edit')}
                </button>
              )}
            </div>
          </ApprovalCard>
        ) : (
          <ApprovalCard a={a} onDecided={onDecided} hideCommand />
        ))}
      {it.done && <Output text={it.output ?? ''} error={it.isError} />}
    </div>
  );
}
