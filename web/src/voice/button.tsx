import { useEffect, useRef, useState } from 'preact/hooks';
import { get, post } from '../api';
import { lang, t, useT } from '../i18n';
import { Socket } from '../ws';
import { pcm16ToFloat } from './resample';
import workletURL from './worklet.ts?worker&url';

// Voice talks to the agent over /ws/voice (issue 15): binary frames are 16 kHz PCM16 mono both ways, text
// frames are JSON control (transcript, state, interrupt, error). The button is hidden unless the server
// runs the voice gateway with both speech engines (GET /api/v1/voice/status; a 404 means no gateway).
let voiceReady: Promise<boolean> | undefined;

export function voiceSupport(): Promise<boolean> {
  voiceReady ??= get<{ available: boolean }>('/api/v1/voice/status').then(
    (d) => !!d.available,
    () => {
      voiceReady = undefined; // ask again next time (a network error is not an answer)
      return false;
    },
  );
  return voiceReady;
}

interface Line {
  role: string;
  text: string;
  final: boolean;
}

export function VoiceButton({ sessionId }: { sessionId: string }) {
  useT();
  const [support, setSupport] = useState(false);
  const [on, setOn] = useState(false);
  const [state, setState] = useState('');
  const [lines, setLines] = useState<Line[]>([]);
  const [err, setErr] = useState('');
  const stop = useRef<() => void>();
  useEffect(() => {
    voiceSupport().then(setSupport);
    return () => stop.current?.();
  }, []);
  const [queued, setQueued] = useState(0);
  if (!support) return null;

  const start = async () => {
    setErr('');
    let media: MediaStream;
    try {
      media = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, channelCount: 1 } });
    } catch {
      setErr(t('voice.denied'));
      return;
    }
    let vsid: string;
    try {
      const r = await post<{ id: string }>('/api/v1/voice/sessions', { session_id: sessionId, locale: lang.get() === 'zh' ? 'zh-CN' : 'en' });
      vsid = r.id;
    } catch (e: any) {
      media.getTracks().forEach((tr) => tr.stop());
      setErr(e.message);
      return;
    }
    const ctx = new AudioContext();
    await ctx.audioWorklet.addModule(workletURL);
    const src = ctx.createMediaStreamSource(media);
    const node = new AudioWorkletNode(ctx, 'it0-pcm');
    src.connect(node);
    let playAt = 0;
    const playing = new Set<AudioBufferSourceNode>();
    const flush = () => {
      for (const p of playing) p.stop();
      playing.clear();
      playAt = 0;
      setQueued(0);
    };
    const sock = new Socket(
      '/ws/voice',
      () => ({ voice_session: vsid }),
      (data) => {
        if (typeof data !== 'string') {
          const f = pcm16ToFloat(data);
          if (!f.length) return;
          const b = ctx.createBuffer(1, f.length, 16000);
          b.getChannelData(0).set(f);
          const s = ctx.createBufferSource();
          s.buffer = b;
          s.connect(ctx.destination);
          playAt = Math.max(playAt, ctx.currentTime + 0.05);
          s.start(playAt);
          playAt += b.duration;
          playing.add(s);
          setQueued(playing.size);
          s.onended = () => {
            playing.delete(s);
            setQueued(playing.size);
          };
          return;
        }
        let m: any;
        try {
          m = JSON.parse(data);
        } catch {
          return;
        }
        if (m.type === 'interrupt') flush(); // barge-in: drop what is queued
        else if (m.type === 'state') setState(String(m.state ?? ''));
        else if (m.type === 'error') setErr(String(m.message ?? m.text ?? 'error'));
        else if (m.type === 'transcript')
          setLines((ls) => {
            const l = { role: String(m.role), text: String(m.text ?? ''), final: !!m.final };
            const last = ls[ls.length - 1];
            return last && !last.final && last.role === l.role ? [...ls.slice(0, -1), l] : [...ls.slice(-20), l];
          });
      },
      () => {},
      true,
    );
    node.port.onmessage = (e) => sock.send(e.data as ArrayBuffer);
    stop.current = () => {
      sock.send(JSON.stringify({ type: 'stop' })); // ends the voice session on the server at once
      sock.close();
      flush();
      node.disconnect();
      src.disconnect();
      media.getTracks().forEach((tr) => tr.stop());
      ctx.close();
      setOn(false);
      setState('');
    };
    setOn(true);
  };

  return (
    <span class="voice" data-playing={on && queued > 0 ? 'yes' : 'no'}>
      <button type="button" class={on ? 'danger' : ''} aria-pressed={on} onClick={() => (on ? stop.current?.() : start())} title={on ? t('voice.stop') : t('voice.start')}>
        {on ? t('voice.stop') : t('voice.start')}
      </button>
      {state && <span class="muted small">{t(('voice.' + state) as any) || state}</span>}
      {err && (
        <span class="field-error" role="alert">
          {err}
        </span>
      )}
      {on && lines.length > 0 && (
        <div class="transcript" aria-live="polite">
          {lines.map((l, i) => (
            <div key={i} class={'line ' + l.role + (l.final ? '' : ' partial')}>
              {l.text}
            </div>
          ))}
        </div>
      )}
    </span>
  );
}
