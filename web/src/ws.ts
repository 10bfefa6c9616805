import { probeSession, session, wsURL } from './api';

// Socket keeps a WebSocket open: it reconnects with backoff after a drop (server restart, network,
// "too slow" close), asking params() afresh each time so the agent stream resumes after the last event
// it has (?after=SEQ) and the current token is used.
export class Socket {
  private ws?: WebSocket;
  private closed = false;
  private delay = 500;
  private timer?: ReturnType<typeof setTimeout>;

  constructor(
    private path: string,
    private params: () => Record<string, string | number>,
    private onMessage: (data: string | ArrayBuffer) => void,
    private onState: (connected: boolean) => void = () => {},
    private binary = false,
  ) {
    this.open();
  }

  private open() {
    if (this.closed || !session.get()) return;
    const ws = new WebSocket(wsURL(this.path, this.params()));
    if (this.binary) ws.binaryType = 'arraybuffer';
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      this.delay = 500;
      this.onState(true);
    };
    ws.onmessage = (m) => this.onMessage(m.data);
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.onState(false);
      if (this.closed) return;
      // Refused at the upgrade: the browser does not say why. If it was the token (expired, revoked), the
      // probe signs out with the server's reason instead of retrying in silence.
      if (!opened) probeSession();
      this.timer = setTimeout(() => this.open(), this.delay);
      this.delay = Math.min(this.delay * 2, 10_000);
    };
  }

  send(data: string | ArrayBufferLike | ArrayBufferView) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(data as any);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    this.ws?.close();
  }
}
