// ANSI rendering for tool output, which is attacker-controlled text: SGR colour and bold codes become
// class names on text spans; every other escape or control character is dropped. The text itself is only
// ever rendered as text nodes (never as HTML).
export interface Seg {
  text: string;
  cls: string;
}

const SGR = /\x1b\[([0-9;]*)m/g;
// other CSI sequences, OSC (terminated by BEL or ST), single-char escapes, and C0/C1 controls except \t \n
const JUNK = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]/g;

export function ansiSegments(input: string): Seg[] {
  const out: Seg[] = [];
  let fg = 0;
  let bold = false;
  let last = 0;
  const cls = () => [fg ? 'a-fg' + fg : '', bold ? 'a-b' : ''].filter(Boolean).join(' ');
  const push = (s: string) => {
    s = s.replace(/\r\n/g, '\n').replace(JUNK, '');
    if (!s) return;
    const c = cls();
    const prev = out[out.length - 1];
    if (prev && prev.cls === c) prev.text += s;
    else out.push({ text: s, cls: c });
  };
  for (const m of input.matchAll(SGR)) {
    push(input.slice(last, m.index));
    last = m.index! + m[0].length;
    const codes = m[1] === '' ? [0] : m[1].split(';').map(Number);
    for (let i = 0; i < codes.length; i++) {
      const c = codes[i];
      if (c === 0) (fg = 0), (bold = false);
      else if (c === 1) bold = true;
      else if (c === 22) bold = false;
      else if (c >= 30 && c <= 37) fg = c - 29;
      else if (c >= 90 && c <= 97) fg = c - 89;
      else if (c === 39) fg = 0;
      else if (c === 38 || c === 48) i += codes[i + 1] === 5 ? 2 : 4; // 256/true colour: skipped
    }
  }
  push(input.slice(last));
  return out;
}
