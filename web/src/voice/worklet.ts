// The microphone's AudioWorklet: resamples the context's rate to 16 kHz PCM16 and posts 20 ms frames
// (320 samples) to the main thread, which sends them on /ws/voice.
import { Resampler } from './resample';

declare const sampleRate: number;
declare function registerProcessor(name: string, ctor: unknown): void;
declare class AudioWorkletProcessor {
  readonly port: MessagePort;
}

const FRAME = 320;

class PCMProcessor extends AudioWorkletProcessor {
  private r = new Resampler(sampleRate, 16000);
  private buf = new Int16Array(FRAME);
  private n = 0;

  process(inputs: Float32Array[][]): boolean {
    const ch = inputs[0]?.[0];
    if (!ch) return true;
    const pcm = this.r.push(ch);
    for (let i = 0; i < pcm.length; i++) {
      this.buf[this.n++] = pcm[i];
      if (this.n === FRAME) {
        this.port.postMessage(this.buf.buffer, [this.buf.buffer]);
        this.buf = new Int16Array(FRAME);
        this.n = 0;
      }
    }
    return true;
  }
}

registerProcessor('it0-pcm', PCMProcessor);
