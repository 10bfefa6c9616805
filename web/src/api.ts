import { Store } from './state';

// The session lives only in memory (never localStorage or a readable cookie): a page reload signs out.
// The token is refreshed before it expires; a 401 mid-session signs out with a message.
export interface Me {
  user: { id: string; email: string; name?: string; locale?: string };
  role: 'viewer' | 'operator' | 'admin';
  tenant: { id: string; name: string; slug: string; locale?: string };
  permissions: string[];
}

export interface Session {
  token: string;
  expiresAt: number;
  me: Me;
}

export const session = new Store<Session | null>(null);
export const signOutReason = new Store<string>('');

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public hint = '',
    public field = '',
  ) {
    super(message);
  }
}

let refreshTimer: ReturnType<typeof setTimeout> | undefined;

function schedule(expiresIn: number) {
  clearTimeout(refreshTimer);
  // Refresh at 80 % of the lifetime; at least 10 s from now.
  const ms = Math.max(10_000, expiresIn * 800);
  refreshTimer = setTimeout(refresh, ms);
}

async function refresh() {
  const s = session.get();
  if (!s) return;
  try {
    const t = await request<{ access_token: string; expires_in: number }>('POST', '/api/v1/auth/refresh');
    session.set({ ...s, token: t.access_token, expiresAt: Date.now() + t.expires_in * 1000 });
    schedule(t.expires_in);
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) refreshTimer = setTimeout(refresh, 15_000);
  }
}

export async function login(email: string, password: string): Promise<void> {
  const t = await request<{ access_token: string; expires_in: number }>('POST', '/api/v1/auth/login', { email, password }, '');
  const me = await request<Me>('GET', '/api/v1/auth/me', undefined, t.access_token);
  signOutReason.set('');
  session.set({ token: t.access_token, expiresAt: Date.now() + t.expires_in * 1000, me });
  schedule(t.expires_in);
}

export function signOut(reason = ''): void {
  clearTimeout(refreshTimer);
  signOutReason.set(reason);
  session.set(null);
}

// probeSession asks the server whether the session's token still holds; a 401 signs out with its reason
// (request does that), anything else (server down, network) leaves the session alone.
export function probeSession(): void {
  if (session.get()) request('GET', '/api/v1/auth/me').catch(() => {});
}

export function can(perm: string): boolean {
  return session.get()?.me.permissions.includes(perm) ?? false;
}

export async function request<T>(method: string, path: string, body?: unknown, token?: string): Promise<T> {
  const tok = token ?? session.get()?.token ?? '';
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (tok) headers.Authorization = 'Bearer ' + tok;
  let payload: BodyInit | undefined;
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  let resp: Response;
  try {
    // credentials: 'omit' — the API takes only the bearer token, so no cookie can be ridden (CSRF-safe).
    resp = await fetch(path, { method, headers, body: payload, credentials: 'omit' });
  } catch {
    throw new ApiError(0, 'network', 'the server cannot be reached');
  }
  if (resp.status === 204) return undefined as T;
  const text = await resp.text();
  let data: any;
  try {
    data = text ? JSON.parse(text) : undefined;
  } catch {
    data = undefined;
  }
  if (!resp.ok) {
    const e = data?.error ?? {};
    const err = new ApiError(resp.status, e.code ?? 'http_' + resp.status, e.message ?? resp.statusText, e.hint ?? '', e.field ?? '');
    if (resp.status === 401 && tok && token === undefined && session.get()) signOut(err.message);
    throw err;
  }
  return data as T;
}

export const get = <T>(p: string) => request<T>('GET', p);
export const post = <T>(p: string, b?: unknown) => request<T>('POST', p, b);
export const put = <T>(p: string, b?: unknown) => request<T>('PUT', p, b);
export const patch = <T>(p: string, b?: unknown) => request<T>('PATCH', p, b);
export const del = <T>(p: string) => request<T>('DELETE', p);

// wsURL is the WebSocket URL of path on this origin with the current token (browsers cannot set headers
// on an upgrade; the server accepts ?token= on /ws/ only).
export function wsURL(path: string, params: Record<string, string | number>): string {
  const u = new URL(path, location.href);
  u.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, String(v));
  u.searchParams.set('token', session.get()?.token ?? '');
  return u.toString();
}

export interface List<T> {
  items: T[];
}
