// Resampler turns the microphone's float samples (48 kHz or 44.1 kHz, whatever the AudioContext runs at)
// into 16 kHz signed 16-bit PCM for /ws/voice. It is streaming: chunks of any size give the same output as
// one big chunk, because the fractional read position and the filter's history carry over between calls.
export class Resampler {
  private pos = 0; // read position in input samples, relative to the start of the next chunk
  private prev = 0; // last input sample of the previous chunk (for interpolation across the boundary)
  private readonly step: number;
  private readonly taps: number;
  private hist: number[] = [];

  constructor(
    readonly inRate: number,
    readonly outRate = 16000,
  ) {
    if (!(inRate > 0) || !(outRate > 0)) throw new Error('sample rates must be positive');
    this.step = inRate / outRate;
    // A moving average over about one output period removes most content above the new Nyquist.
    this.taps = Math.max(1, Math.floor(this.step));
  }

  // push resamples one chunk and returns the PCM16 samples it completes.
  push(input: Float32Array): Int16Array {
    // Low-pass: average of the last `taps` samples, history carried over.
    const f = new Float32Array(input.length);
    let sum = 0;
    const h = this.hist;
    for (const x of h) sum += x;
    for (let i = 0; i < input.length; i++) {
      h.push(input[i]);
      sum += input[i];
      if (h.length > this.taps) sum -= h.shift()!;
      f[i] = sum / h.length;
    }
    const out: number[] = [];
    let pos = this.pos;
    for (;;) {
      const i = Math.floor(pos);
      const frac = pos - i;
      const a = i < 0 ? this.prev : f[i];
      if (i + 1 < f.length) out.push(a + (f[i + 1] - a) * frac);
      else if (i < f.length && frac < 1e-9) out.push(a);
      else break; // needs the next chunk's first sample
      pos += this.step;
    }
    this.pos = pos - f.length;
    if (f.length) this.prev = f[f.length - 1];
    const pcm = new Int16Array(out.length);
    for (let i = 0; i < out.length; i++) {
      const s = Math.max(-1, Math.min(1, out[i]));
      pcm[i] = s < 0 ? Math.round(s * 0x8000) : Math.round(s * 0x7fff);
    }
    return pcm;
  }
}

// pcm16ToFloat turns received 16 kHz PCM16 (little-endian bytes) into floats for playback.
export function pcm16ToFloat(buf: ArrayBuffer): Float32Array {
  const n = Math.floor(buf.byteLength / 2);
  const dv = new DataView(buf, 0, n * 2);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = dv.getInt16(i * 2, true) / 0x8000;
  return out;
}
