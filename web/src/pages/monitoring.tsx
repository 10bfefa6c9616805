import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { ApiError, can, get, post, type List } from '../api';
import { fmtTime, t, useT } from '../i18n';
import { ErrorBox, Loading, useLoad } from '../ui';
import { useStore } from '../state';
import { theme } from '../theme';

const METRICS = ['cpu_usage', 'memory_usage', 'disk_usage', 'load_1m', 'network_in', 'network_out'];
const RANGES: Record<string, [number, string]> = { '1h': [3600, '60s'], '24h': [86400, '300s'], '7d': [604800, '3600s'] };

interface Series {
  server_id: string;
  metric_type: string;
  label?: string;
  points: { t: string; v: number }[];
}

export function MonitoringPage() {
  useT();
  return (
    <div class="page">
      <h1>{t('nav.monitoring')}</h1>
      <Checks />
      <Alerts />
      <Metrics />
    </div>
  );
}

function Checks() {
  const list = useLoad(() => get<List<any>>('/api/v1/monitor/checks').catch(() => ({ items: [] })), []);
  return (
    <section>
      <h2>{t('mon.checks')}</h2>
      <Loading when={list.loading && !list.data}>
        {list.data?.items.length === 0 && <p class="muted">{t('common.none')}</p>}
        <ul class="checks">
          {list.data?.items.map((c) => (
            <li key={c.id}>
              <span class={'dot ' + (c.state ?? c.status?.state ?? 'unknown')} aria-hidden="true" /> {c.name}{' '}
              <span class="muted small">
                {c.type} {c.target} · {c.state ?? c.status?.state}
              </span>
              <CheckSpark id={c.id} />
            </li>
          ))}
        </ul>
      </Loading>
    </section>
  );
}

// CheckSpark is a check's recent results as a small uPlot line (1 = up, 0 = down).
function CheckSpark({ id }: { id: string }) {
  const r = useLoad(() => get<List<any>>(`/api/v1/monitor/checks/${encodeURIComponent(id)}/results?limit=50`).catch(() => ({ items: [] })), [id]);
  const items = [...(r.data?.items ?? [])].reverse();
  if (items.length < 2) return null;
  const xs = items.map((x) => new Date(x.checked_at ?? x.at ?? x.time).getTime() / 1000);
  const ys = items.map((x) => (x.status === 'up' ? 1 : 0));
  return <Chart data={[xs, ys]} width={160} height={32} spark />;
}

function Alerts() {
  useT();
  const [status, setStatus] = useState('firing');
  const list = useLoad(() => get<List<any>>('/api/v1/monitor/alerts?status=' + status).catch((e) => Promise.reject(e)), [status]);
  const [err, setErr] = useState<ApiError | null>(null);
  const ack = async (id: string) => {
    try {
      await post(`/api/v1/monitor/alerts/${encodeURIComponent(id)}/acknowledge`);
      list.reload();
    } catch (e) {
      setErr(e as ApiError);
    }
  };
  return (
    <section>
      <h2>{t('mon.alerts')}</h2>
      <div class="filters">
        <select aria-label={t('common.status')} value={status} onChange={(e) => setStatus(e.currentTarget.value)}>
          {['firing', 'acknowledged', 'resolved'].map((s) => (
            <option value={s}>{s}</option>
          ))}
        </select>
      </div>
      <ErrorBox error={list.error ?? err} />
      <ul>
        {list.data?.items.map((a) => (
          <li key={a.id} class={'alert sev-' + a.severity}>
            <strong>{a.rule_name}</strong> {a.server_id} {a.metric_type} {a.operator} {a.threshold} ({a.value}) · {a.severity} · {fmtTime(a.fired_at)}
            {a.status === 'firing' && can('start_inspection') && (
              <button type="button" class="small" onClick={() => ack(a.id)}>
                {t('mon.ack')}
              </button>
            )}
          </li>
        ))}
      </ul>
      {list.data?.items.length === 0 && <p class="muted">{t('common.none')}</p>}
    </section>
  );
}

function Metrics() {
  useT();
  const servers = useLoad(() => get<List<{ id: string; name: string }>>('/api/v1/inventory/servers').catch(() => ({ items: [] })), []);
  const [server, setServer] = useState('');
  const [range, setRange] = useState('1h');
  const sid = server || servers.data?.items[0]?.id || '';
  return (
    <section>
      <h2>{t('mon.metrics')}</h2>
      <div class="filters">
        <label>
          {t('mon.server')}
          <select value={sid} onChange={(e) => setServer(e.currentTarget.value)}>
            {servers.data?.items.map((s) => (
              <option value={s.id}>{s.name}</option>
            ))}
          </select>
        </label>
        <label>
          {t('mon.range')}
          <select value={range} onChange={(e) => setRange(e.currentTarget.value)}>
            {Object.keys(RANGES).map((r) => (
              <option value={r}>{r}</option>
            ))}
          </select>
        </label>
      </div>
      {sid && (
        <div class="charts">
          {METRICS.map((m) => (
            <MetricChart key={m + sid + range} server={sid} metric={m} range={range} />
          ))}
        </div>
      )}
    </section>
  );
}

function MetricChart({ server, metric, range }: { server: string; metric: string; range: string }) {
  const [secs, step] = RANGES[range];
  const to = new Date();
  const from = new Date(to.getTime() - secs * 1000);
  const q = new URLSearchParams({ server_id: server, metric_type: metric, from: from.toISOString(), to: to.toISOString(), step });
  const r = useLoad(() => get<List<Series>>('/api/v1/monitor/metrics?' + q), [server, metric, range]);
  const series = r.data?.items ?? [];
  // One x axis for all series (per mount for disk): the union of timestamps.
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => new Date(p.t).getTime() / 1000)))].sort((a, b) => a - b);
  const ys = series.map((s) => {
    const m = new Map(s.points.map((p) => [new Date(p.t).getTime() / 1000, p.v]));
    return xs.map((x) => m.get(x) ?? null);
  });
  return (
    <figure class="chart">
      <figcaption>{metric}</figcaption>
      <ErrorBox error={r.error} />
      {xs.length ? <Chart data={[xs, ...ys] as any} labels={series.map((s) => s.label || s.metric_type)} /> : !r.loading && <p class="muted">{t('mon.noData')}</p>}
    </figure>
  );
}

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2'];

export function Chart({ data, labels = [], width, height = 180, spark = false }: { data: uPlot.AlignedData; labels?: string[]; width?: number; height?: number; spark?: boolean }) {
  const el = useRef<HTMLDivElement>(null);
  const th = useStore(theme);
  useEffect(() => {
    const box = el.current!;
    const w = width ?? Math.max(280, box.clientWidth || 480);
    // uPlot draws on a canvas: give it the theme's colours (CSS variables do not reach the canvas).
    const css = getComputedStyle(document.documentElement);
    const fg = css.getPropertyValue('--muted').trim() || '#5b6472';
    const grid = css.getPropertyValue('--line').trim() || '#d8dde4';
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const opts: uPlot.Options = {
      width: w,
      height,
      legend: { show: !spark },
      cursor: { show: !spark },
      axes: spark ? [{ show: false }, { show: false }] : [axis, axis],
      scales: { x: { time: true } },
      series: [{}, ...data.slice(1).map((_, i) => ({ label: labels[i] ?? '', stroke: COLORS[i % COLORS.length], width: spark ? 1 : 1.5, spanGaps: true }))],
    };
    const u = new uPlot(opts, data, box);
    return () => u.destroy();
  }, [data, width, height, th]);
  return <div ref={el} class={spark ? 'spark' : 'uplot-box'} />;
}
