import { useEffect, useState } from 'preact/hooks';

// Store is a tiny observable value: the app's few pieces of global state (session, language, theme,
// alert feed) without a state library.
export class Store<T> {
  private subs = new Set<(v: T) => void>();
  constructor(private v: T) {}
  get(): T {
    return this.v;
  }
  set(v: T): void {
    this.v = v;
    for (const s of [...this.subs]) s(v);
  }
  update(f: (v: T) => T): void {
    this.set(f(this.v));
  }
  subscribe(s: (v: T) => void): () => void {
    this.subs.add(s);
    return () => this.subs.delete(s);
  }
}

export function useStore<T>(s: Store<T>): T {
  const [v, setV] = useState(s.get());
  useEffect(() => {
    setV(s.get());
    return s.subscribe(setV);
  }, [s]);
  return v;
}
