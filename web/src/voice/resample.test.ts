import { describe, expect, it } from 'vitest';
import { Resampler, pcm16ToFloat } from './resample';

const sine = (hz: number, rate: number, n: number, amp = 0.5) => Float32Array.from({ length: n }, (_, i) => amp * Math.sin((2 * Math.PI * hz * i) / rate));

function zeroCrossings(x: Int16Array): number {
  let n = 0;
  for (let i = 1; i < x.length; i++) if (x[i - 1] < 0 !== x[i] < 0) n++;
  return n;
}

describe('Resampler', () => {
  it('turns 48 kHz into 16 kHz: a third of the samples, the same tone', () => {
    const r = new Resampler(48000);
    const out = r.push(sine(440, 48000, 48000));
    expect(Math.abs(out.length - 16000)).toBeLessThanOrEqual(1);
    // 440 Hz over one second crosses zero 880 times.
    expect(Math.abs(zeroCrossings(out) - 880)).toBeLessThanOrEqual(2);
    const peak = Math.max(...out);
    expect(peak).toBeGreaterThan(0.45 * 0x7fff);
    expect(peak).toBeLessThanOrEqual(0.5 * 0x7fff + 1);
  });

  it('gives the same output for any chunking (AudioWorklet renders 128 frames at a time)', () => {
    for (const rate of [48000, 44100, 22050, 16000]) {
      const input = sine(300, rate, rate / 2);
      const whole = new Resampler(rate).push(input);
      const r = new Resampler(rate);
      const parts: number[] = [];
      for (let i = 0; i < input.length; i += 128) parts.push(...r.push(input.subarray(i, i + 128)));
      expect(Math.abs(parts.length - whole.length)).toBeLessThanOrEqual(1);
      const n = Math.min(parts.length, whole.length);
      let worst = 0;
      for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(parts[i] - whole[i]));
      expect(worst).toBeLessThanOrEqual(2);
    }
  });

  it('keeps 44.1 kHz at the right length across chunks', () => {
    const r = new Resampler(44100);
    let total = 0;
    for (let i = 0; i < 100; i++) total += r.push(sine(1000, 44100, 441)).length;
    expect(Math.abs(total - 16000)).toBeLessThanOrEqual(1);
  });

  it('attenuates a tone above the new Nyquist frequency', () => {
    const out = new Resampler(48000).push(sine(15000, 48000, 48000));
    const rms = Math.sqrt(out.reduce((s, x) => s + x * x, 0) / out.length) / 0x7fff;
    expect(rms).toBeLessThan(0.1); // 0.35 for an unfiltered 0.5-amplitude tone
  });

  it('clips out-of-range input instead of wrapping', () => {
    const out = new Resampler(16000).push(Float32Array.from([2, -2, 0.5]));
    expect([...out]).toEqual([32767, -32768, 16384]);
  });

  it('refuses a nonsense rate', () => {
    expect(() => new Resampler(0)).toThrow();
  });
});

describe('pcm16ToFloat', () => {
  it('reads little-endian samples and ignores a torn last byte', () => {
    const b = new Uint8Array([0x00, 0x80, 0xff, 0x7f, 0x01]).buffer;
    const f = pcm16ToFloat(b);
    expect(f.length).toBe(2);
    expect(f[0]).toBe(-1);
    expect(f[1]).toBeCloseTo(1, 3);
  });
});
