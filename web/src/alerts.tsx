import { useEffect, useState } from 'preact/hooks';
import { ApiError, can, post, session } from './api';
import { t, useT } from './i18n';
import { navigate } from './router';
import { Store, useStore } from './state';
import { ErrorBox } from './ui';
import { VoiceButton } from './voice/button';
import { Socket } from './ws';

// The in-app alert feed: /ws/comm pushes (escalations, approvals, notices). An escalation takes the whole
// screen until someone acts on it; in a background tab a browser notification is shown too.
export interface AppEvent {
  seq: number;
  type: string;
  subject?: string;
  text: string;
  data?: Record<string, string>;
}

export const feed = new Store<AppEvent[]>([]);
const urgent = new Store<AppEvent | null>(null);

export function startFeed(): () => void {
  const s = new Socket(
    '/ws/comm',
    () => ({}),
    (data) => {
      if (typeof data !== 'string') return;
      let e: AppEvent;
      try {
        e = JSON.parse(data);
      } catch {
        return;
      }
      if (!e || e.type === 'hello' || typeof e.text !== 'string') return;
      feed.update((f) => [e, ...f].slice(0, 50));
      // Only an escalation takes the screen; an approval notice waits in the feed (its card is in the chat).
      if (e.data?.kind === 'escalation' || (e.type === 'escalation' && !e.data?.kind)) urgent.set(e);
      if (document.hidden && 'Notification' in window && Notification.permission === 'granted') {
        new Notification(e.subject || 'IT0', { body: e.text.slice(0, 200), tag: 'it0-' + (e.data?.approval_id ?? e.seq) });
      }
    },
  );
  if ('Notification' in window && Notification.permission === 'default') Notification.requestPermission().catch(() => {});
  return () => s.close();
}

export function AlertFeed() {
  useT();
  const items = useStore(feed);
  const [open, setOpen] = useState(false);
  return (
    <div class="feed">
      <button type="button" aria-expanded={open} onClick={() => setOpen(!open)} aria-label={t('alert.feed')}>
        <BellIcon />
        {items.length > 0 && <span class="count">{items.length}</span>}
      </button>
      {open && (
        <ul class="feed-list" role="list">
          {items.length === 0 && <li class="muted">{t('common.none')}</li>}
          {items.map((e) => (
            <li key={e.seq}>
              <strong>{e.subject || e.type}</strong>
              <div class="small">{e.text}</div>
              {e.data?.session_id && (
                <button type="button" class="link" onClick={() => (setOpen(false), navigate('/chat/' + e.data!.session_id))}>
                  {t('alert.openChat')}
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

// EscalationOverlay is the full-screen card: what, where, the proposed action; approve / reject / chat / talk.
export function EscalationOverlay() {
  useT();
  const e = useStore(urgent);
  const me = useStore(session);
  const [reason, setReason] = useState('');
  const [err, setErr] = useState<ApiError | null>(null);
  useEffect(() => setErr(null), [e]);
  if (!e || !me) return null;
  const id = e.data?.approval_id ?? '';
  const answer = async (decision: 'approve' | 'reject') => {
    try {
      await post(`/api/v1/comm/escalations/${encodeURIComponent(id)}/answer`, { decision, text: reason || undefined });
      urgent.set(null);
    } catch (x) {
      setErr(x as ApiError);
    }
  };
  const sessionId = e.data?.session_id ?? '';
  return (
    <div class="overlay" role="alertdialog" aria-modal="true" aria-labelledby="esc-title">
      <div class={'overlay-card sev-' + (e.data?.severity ?? 'critical')}>
        <h2 id="esc-title">
          {t('alert.escalation')}
          {e.data?.ref ? ' · ' + e.data.ref : ''}
        </h2>
        {e.subject && <p class="subject">{e.subject}</p>}
        <p class="text">{e.text}</p>
        {can('approve_l1') && id && (
          <>
            <input aria-label={t('approval.reason')} placeholder={t('approval.reason')} value={reason} onInput={(x) => setReason(x.currentTarget.value)} />
            <div class="overlay-actions">
              <button type="button" class="primary big" onClick={() => answer('approve')}>
                {t('approval.approve')}
              </button>
              <button type="button" class="danger big" onClick={() => answer('reject')}>
                {t('approval.reject')}
              </button>
            </div>
          </>
        )}
        <div class="overlay-actions">
          {sessionId && (
            <button type="button" onClick={() => (urgent.set(null), navigate('/chat/' + sessionId))}>
              {t('alert.openChat')}
            </button>
          )}
          {sessionId && <VoiceButton sessionId={sessionId} />}
          <button type="button" onClick={() => urgent.set(null)}>
            {t('alert.dismiss')}
          </button>
        </div>
        <ErrorBox error={err} />
      </div>
    </div>
  );
}

function BellIcon() {
  return (
    <svg width="18" height="18" viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" stroke-linejoin="round">
      <path d="M18 8a6 6 0 0 0-12 0c0 7-3 9-3 9h18s-3-2-3-9" />
      <path d="M13.7 21a2 2 0 0 1-3.4 0" />
    </svg>
  );
}
