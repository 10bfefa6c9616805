import { describe, expect, it } from 'vitest';
import { ansiSegments } from './ansi';

describe('ansiSegments', () => {
  it('turns colours into classes and drops other escapes and controls', () => {
    const segs = ansiSegments('ok \x1b[1;31mFAIL\x1b[0m done\x1b]0;title\x07\x1b[2K\x00\r\n');
    expect(segs).toEqual([
      { text: 'ok ', cls: '' },
      { text: 'FAIL', cls: 'a-fg2 a-b' },
      { text: ' done\n', cls: '' },
    ]);
  });
  it('keeps HTML as text', () => {
    expect(ansiSegments('<script>x</script>')).toEqual([{ text: '<script>x</script>', cls: '' }]);
  });
});
