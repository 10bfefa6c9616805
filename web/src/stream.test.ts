import { describe, expect, it } from 'vitest';
import { addUser, emptyView, parseFrame, reduce, type AgentEvent } from './stream';

const ev = (seq: number, type: string, rest: Partial<AgentEvent> = {}): AgentEvent => ({ seq, type, ...rest });

describe('reduce', () => {
  it('merges streamed text deltas and keeps thinking apart', () => {
    const v = reduce(emptyView(), [ev(1, 'thinking', { text: 'hm' }), ev(2, 'text', { text: 'Let me ' }), ev(3, 'text', { text: 'check.' })]);
    expect(v.items.map((i) => i.kind)).toEqual(['thinking', 'text']);
    expect((v.items[1] as any).text).toBe('Let me check.');
    expect(v.lastSeq).toBe(3);
  });

  it('pairs tool calls with their approval and result', () => {
    let v = reduce(emptyView(), [
      ev(1, 'tool_use', { tool: 'run_command', tool_use_id: 't1', input: { server: 'web-1', command: 'systemctl restart nginx' } }),
      ev(2, 'approval_required', { tool: 'run_command', tool_use_id: 't1', command: 'systemctl restart nginx', risk_level: 1, approval_id: 'a1' }),
    ]);
    expect(v.state).toBe('waiting');
    expect(v.items).toHaveLength(1);
    expect(v.items[0]).toMatchObject({ kind: 'tool', server: 'web-1', command: 'systemctl restart nginx', risk: 1, approvalId: 'a1', done: false });
    v = reduce(v, [ev(3, 'tool_result', { tool_use_id: 't1', output: 'ok\n' }), ev(4, 'completed', { summary: 'done', tokens_used: 9 })]);
    expect(v.items[0]).toMatchObject({ output: 'ok\n', done: true });
    expect(v.items[1]).toMatchObject({ kind: 'done', summary: 'done', tokens: 9 });
    expect(v.state).toBe('completed');
  });

  it('does not repeat a summary that is the final answer', () => {
    const v = reduce(emptyView(), [ev(1, 'text', { text: 'All good.' }), ev(2, 'completed', { summary: 'All good.' })]);
    expect(v.items[1]).toMatchObject({ kind: 'done', summary: '' });
  });

  it('drops events replayed after a reconnect, so nothing shows twice', () => {
    const batch = [ev(1, 'text', { text: 'a' }), ev(2, 'tool_use', { tool_use_id: 't', input: {} }), ev(3, 'text', { text: 'b' })];
    const once = reduce(emptyView(), batch);
    const twice = reduce(once, [...batch, ev(4, 'text', { text: 'c' })]);
    expect(twice.items.map((i: any) => i.text ?? i.kind)).toEqual(['a', 'tool', 'bc']);
    expect(reduce(twice, batch)).toBe(twice); // nothing new: the same view, no re-render
  });

  it('keeps an approval without a matching call as its own card', () => {
    const v = reduce(emptyView(), [ev(1, 'approval_required', { tool: 'create_standing_order', command: 'Standing order "x"', risk_level: 2, approval_id: 'a9' })]);
    expect(v.items[0]).toMatchObject({ kind: 'approval', approvalId: 'a9', risk: 2 });
  });

  it('ignores malformed and unknown events', () => {
    const v = reduce(emptyView(), [null as any, { seq: 1 } as any, ev(2, 'mystery'), ev(3, 'text', { text: 5 as any }), ev(4, 'error', { code: 'cancelled', message: 'x' })]);
    expect(v.items.map((i) => i.kind)).toEqual(['text', 'error']);
    expect(v.state).toBe('cancelled');
    expect(v.lastSeq).toBe(4);
  });

  it('keeps hostile output as plain data', () => {
    const out = '<img src=x onerror=alert(1)>\x1b[31mred\x1b[0m';
    const v = reduce(emptyView(), [ev(1, 'tool_use', { tool_use_id: 't', input: { command: 'cat x' } }), ev(2, 'tool_result', { tool_use_id: 't', output: out })]);
    expect((v.items[0] as any).output).toBe(out);
  });

  it('adds the person\'s own messages', () => {
    const v = addUser(emptyView(), 'check disk');
    expect(v.items[0]).toMatchObject({ kind: 'user', text: 'check disk' });
    expect(v.state).toBe('running');
  });

  it('handles 10,000 events in batches', () => {
    let v = emptyView();
    for (let b = 0; b < 100; b++) {
      const batch: AgentEvent[] = [];
      for (let i = 0; i < 100; i++) {
        const seq = b * 100 + i + 1;
        batch.push(seq % 2 ? ev(seq, 'tool_use', { tool_use_id: 't' + seq, input: { command: 'echo ' + seq } }) : ev(seq, 'tool_result', { tool_use_id: 't' + (seq - 1), output: String(seq) }));
      }
      v = reduce(v, batch);
    }
    expect(v.items).toHaveLength(5000);
    expect(v.items[4999]).toMatchObject({ command: 'echo 9999', output: '10000', done: true });
  });
});

describe('parseFrame', () => {
  it('splits lines and skips torn ones', () => {
    expect(parseFrame('{"seq":1,"type":"text"}\n{"seq":2,\n\n{"seq":3,"type":"text"}').map((e) => e.seq)).toEqual([1, 3]);
  });

  it('does not repeat a run\'s answer in its summary, even when it was streamed in many blocks', () => {
    const evs = [ev(1, 'text', { text: 'Disk is ' }), ev(2, 'thinking', { text: 'hmm' }), ev(3, 'text', { text: 'fine.' }), ev(4, 'completed', { summary: 'Disk is\nfine.' })];
    const v = reduce(emptyView(), evs);
    const done = v.items[v.items.length - 1];
    expect(done.kind === 'done' && done.summary).toBe('');
    // A summary that says something else is kept.
    const w = reduce(emptyView(), [ev(1, 'text', { text: 'Checked.' }), ev(2, 'completed', { summary: 'Disk 80% on web-1.' })]);
    const d2 = w.items[w.items.length - 1];
    expect(d2.kind === 'done' && d2.summary).toBe('Disk 80% on web-1.');
    // Only the current run counts: an earlier run's text does not swallow this summary.
    const x = reduce(v, [ev(5, 'text', { text: 'Again.' }), ev(6, 'completed', { summary: 'Disk is fine. Again.' })]);
    const d3 = x.items[x.items.length - 1];
    expect(d3.kind === 'done' && d3.summary).toBe('Disk is fine. Again.');
  });
});
