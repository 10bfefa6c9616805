import { describe, expect, it } from 'vitest';
import { ansiSegments } from './ansi';
import { FOLD_LINES, MAX_SHOWN, foldOutput } from './fold';

describe('foldOutput', () => {
  it('leaves short output alone', () => {
    expect(foldOutput('a\nb', false)).toEqual({ shown: 'a\nb', lines: 2, cut: false });
  });

  it('folds long output to its first lines until opened', () => {
    const text = Array.from({ length: 41 }, (_, i) => 'line ' + i).join('\n');
    const f = foldOutput(text, false);
    expect(f.lines).toBe(41);
    expect(f.shown.split('\n')).toHaveLength(FOLD_LINES);
    expect(f.shown.endsWith('line 11')).toBe(true);
    expect(foldOutput(text, true).shown).toBe(text);
  });

  it('bounds 10 MB of hostile output: head and tail only, folded, controls dropped, markup kept as text', () => {
    const line = '<img src=x onerror=alert(1)>\x1b[31mred\x1b[0m\x07\x1b]0;title\x07 \u0000tail\r\n';
    const text = 'FIRST\n' + line.repeat(Math.ceil((10 * 1024 * 1024) / line.length)) + 'LAST';
    expect(text.length).toBeGreaterThan(10 * 1024 * 1024);
    const open = foldOutput(text, true);
    expect(open.cut).toBe(true);
    expect(open.shown.length).toBeLessThanOrEqual(MAX_SHOWN + 3);
    expect(open.shown.startsWith('FIRST')).toBe(true);
    expect(open.shown.endsWith('LAST')).toBe(true);
    const folded = foldOutput(text, false);
    expect(folded.shown.split('\n').length).toBeLessThanOrEqual(FOLD_LINES);
    const segs = ansiSegments(folded.shown);
    const all = segs.map((s) => s.text).join('');
    expect(all).toContain('<img src=x onerror=alert(1)>'); // text, to be rendered as a text node
    expect(all).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/); // no control characters or escapes left
    expect(segs.some((s) => s.cls === 'a-fg2' && s.text === 'red')).toBe(true);
  });
});
