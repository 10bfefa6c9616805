// Folding of tool output (attacker-controlled, up to megabytes): what the page puts in the DOM is bounded
// whatever the output's size — at most MAX_SHOWN characters, its head and tail, and while folded only the
// first FOLD_LINES lines of that.
export const FOLD_LINES = 12;
export const MAX_SHOWN = 256 * 1024;

export interface Folded {
  shown: string; // the text to render (as text, never HTML)
  lines: number; // lines of the (possibly cut) output, for "show all (N lines)"
  cut: boolean; // the output was cut to its head and tail
}

export function foldOutput(text: string, open: boolean): Folded {
  const cut = text.length > MAX_SHOWN;
  const body = cut ? text.slice(0, MAX_SHOWN / 2) + '\n…\n' + text.slice(-MAX_SHOWN / 2) : text;
  let lines = 1;
  let foldAt = -1;
  for (let i = body.indexOf('\n'); i >= 0; i = body.indexOf('\n', i + 1)) {
    if (lines === FOLD_LINES) foldAt = i;
    lines++;
  }
  const shown = open || lines <= FOLD_LINES ? body : body.slice(0, foldAt);
  return { shown, lines, cut };
}
