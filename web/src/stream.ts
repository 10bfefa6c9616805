// The stream reducer: a session's events (from /ws/agent or GET …/events) → what the chat shows.
// Pure and tolerant: events arrive in batches, may repeat after a reconnect (dropped by seq), may be
// malformed (ignored), and a session can hold 10,000 of them.

export interface AgentEvent {
  seq: number;
  session_id?: string;
  type: string;
  text?: string;
  tool?: string;
  tool_use_id?: string;
  input?: any;
  output?: string;
  is_error?: boolean;
  command?: string;
  risk_level?: number;
  approval_id?: string;
  summary?: string;
  tokens_used?: number;
  cost_usd?: number;
  code?: string;
  message?: string;
  time?: string;
}

export interface ToolItem {
  kind: 'tool';
  key: string;
  tool: string;
  toolUseId: string;
  input: any;
  server?: string;
  command?: string;
  risk?: number;
  approvalId?: string;
  output?: string;
  isError?: boolean;
  done: boolean;
}

export type Item =
  | { kind: 'user'; key: string; text: string }
  | { kind: 'text' | 'thinking'; key: string; text: string }
  | ToolItem
  | { kind: 'approval'; key: string; approvalId: string; tool: string; command: string; risk: number }
  | { kind: 'done'; key: string; summary: string; tokens: number; cost: number }
  | { kind: 'error'; key: string; code: string; message: string };

export type RunState = 'idle' | 'running' | 'waiting' | 'completed' | 'failed' | 'cancelled';

export interface View {
  items: Item[];
  lastSeq: number;
  state: RunState;
  // index of each tool item by tool_use_id, so results and approvals find their call in O(1)
  toolIndex: Map<string, number>;
}

export const emptyView = (): View => ({ items: [], lastSeq: 0, state: 'idle', toolIndex: new Map() });

// addUser appends a message the person sent (the stream does not echo it).
export function addUser(v: View, text: string): View {
  return { ...v, items: [...v.items, { kind: 'user', key: 'u' + v.items.length, text }], state: 'running' };
}

const str = (x: unknown): string => (typeof x === 'string' ? x : '');

// commandOf reads the server and command a tool call targets, whatever the tool names them.
function commandOf(input: any): { server?: string; command?: string } {
  if (!input || typeof input !== 'object') return {};
  const server = str(input.server) || str(input.server_id) || (Array.isArray(input.servers) ? input.servers.join(', ') : '');
  return { server: server || undefined, command: str(input.command) || undefined };
}

export function reduce(v: View, events: AgentEvent[]): View {
  let items: Item[] | null = null; // copied on first change
  let { lastSeq, state } = v;
  const toolIndex = v.toolIndex;
  const mut = () => (items ??= [...v.items]);
  const replace = (i: number, it: Item) => {
    mut()[i] = it;
  };
  for (const e of events) {
    if (!e || typeof e !== 'object' || typeof e.type !== 'string') continue;
    const seq = typeof e.seq === 'number' ? e.seq : 0;
    if (seq > 0) {
      if (seq <= lastSeq) continue; // already shown (replay after reconnect)
      lastSeq = seq;
    }
    const list = items ?? v.items;
    const key = 'e' + (seq || list.length + ':' + e.type);
    switch (e.type) {
      case 'text':
      case 'thinking':
      case 'voice_agent': {
        const kind = e.type === 'thinking' ? 'thinking' : 'text';
        const last = list[list.length - 1];
        if (last && last.kind === kind) replace(list.length - 1, { ...last, text: last.text + str(e.text) });
        else mut().push({ kind, key, text: str(e.text) });
        if (state !== 'waiting') state = 'running';
        break;
      }
      case 'voice_user':
        mut().push({ kind: 'user', key, text: str(e.text) });
        break;
      case 'tool_use': {
        const id = str(e.tool_use_id) || key;
        const item: ToolItem = { kind: 'tool', key, tool: str(e.tool), toolUseId: id, input: e.input, done: false, ...commandOf(e.input) };
        if (typeof e.risk_level === 'number') item.risk = e.risk_level;
        toolIndex.set(id, list.length);
        mut().push(item);
        state = 'running';
        break;
      }
      case 'tool_result': {
        const i = toolIndex.get(str(e.tool_use_id));
        const at = i === undefined ? undefined : list[i];
        if (at && at.kind === 'tool') replace(i!, { ...at, output: str(e.output), isError: !!e.is_error, done: true });
        else mut().push({ kind: 'tool', key, tool: str(e.tool), toolUseId: str(e.tool_use_id), input: null, output: str(e.output), isError: !!e.is_error, done: true });
        state = 'running';
        break;
      }
      case 'approval_required': {
        const risk = typeof e.risk_level === 'number' ? e.risk_level : 1;
        const i = toolIndex.get(str(e.tool_use_id));
        const at = i === undefined ? undefined : list[i];
        if (at && at.kind === 'tool') {
          replace(i!, { ...at, risk, approvalId: str(e.approval_id), command: at.command ?? str(e.command) });
        } else {
          mut().push({ kind: 'approval', key, approvalId: str(e.approval_id), tool: str(e.tool), command: str(e.command), risk });
        }
        state = 'waiting';
        break;
      }
      case 'completed': {
        // The summary is often the run's answer itself (its text blocks joined): don't show it twice.
        const summary = sameAsRunText(list, str(e.summary)) ? '' : str(e.summary);
        mut().push({ kind: 'done', key, summary, tokens: e.tokens_used ?? 0, cost: e.cost_usd ?? 0 });
        state = 'completed';
        break;
      }
      case 'error':
        mut().push({ kind: 'error', key, code: str(e.code), message: str(e.message) });
        state = e.code === 'cancelled' ? 'cancelled' : 'failed';
        break;
    }
  }
  if (!items && lastSeq === v.lastSeq && state === v.state) return v;
  return { items: items ?? v.items, lastSeq, state, toolIndex };
}

const squash = (s: string) => s.replace(/\s+/g, '');

// sameAsRunText says whether summary is the text the current run already showed (its text items since the
// person's last message or the previous run's end), whitespace aside. It compares piece by piece from the
// end, so a long run costs one pass and no joined copy.
function sameAsRunText(list: Item[], summary: string): boolean {
  let rest = squash(summary);
  if (!rest) return true;
  for (let i = list.length - 1; i >= 0 && rest; i--) {
    const it = list[i];
    if (it.kind === 'user' || it.kind === 'done') break;
    if (it.kind !== 'text') continue;
    const t = squash(it.text);
    if (!rest.endsWith(t)) return false;
    rest = rest.slice(0, rest.length - t.length);
  }
  return rest === '';
}

// parseFrame splits one WebSocket text frame (one JSON event per line) into events, skipping bad lines.
export function parseFrame(data: string): AgentEvent[] {
  const out: AgentEvent[] = [];
  for (const line of data.split('\n')) {
    if (!line.trim()) continue;
    try {
      const e = JSON.parse(line);
      if (e && typeof e === 'object') out.push(e);
    } catch {
      // a torn or hostile line: skip it, keep the rest
    }
  }
  return out;
}
