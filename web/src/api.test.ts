import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiError, get, login, probeSession, session, signOut, signOutReason } from './api';

// A fake fetch that answers by path, recording what it was sent.
function fakeFetch(routes: Record<string, (init: RequestInit) => [number, unknown]>) {
  const calls: { path: string; init: RequestInit }[] = [];
  const f = vi.fn(async (path: string, init: RequestInit) => {
    calls.push({ path, init });
    const h = routes[path];
    const [status, body] = h ? h(init) : [404, { error: { code: 'not_found', message: 'no route' } }];
    return new Response(body === undefined ? null : JSON.stringify(body), { status });
  });
  vi.stubGlobal('fetch', f);
  return calls;
}

const me = { user: { id: 'u1', email: 'a@b.c' }, role: 'viewer', tenant: { id: 't', name: 't', slug: 't' }, permissions: ['view_dashboard'] };

describe('session', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => {
    signOut();
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it('keeps the token in memory and refreshes it before it expires', async () => {
    let n = 0;
    const calls = fakeFetch({
      '/api/v1/auth/login': () => [200, { access_token: 'tok0', expires_in: 100 }],
      '/api/v1/auth/me': () => [200, me],
      '/api/v1/auth/refresh': () => [200, { access_token: 'tok' + ++n, expires_in: 100 }],
    });
    await login('a@b.c', 'pw');
    expect(session.get()?.token).toBe('tok0');
    await vi.advanceTimersByTimeAsync(80_000); // 80 % of the lifetime
    expect(session.get()?.token).toBe('tok1');
    const refresh = calls.find((c) => c.path === '/api/v1/auth/refresh')!;
    expect((refresh.init.headers as Record<string, string>).Authorization).toBe('Bearer tok0');
    expect(refresh.init.credentials).toBe('omit');
  });

  it('signs out with the server\'s reason when the token is refused mid-session', async () => {
    fakeFetch({
      '/api/v1/auth/login': () => [200, { access_token: 'tok0', expires_in: 3600 }],
      '/api/v1/auth/me': () => [200, me],
      '/api/v1/agent/sessions': () => [401, { error: { code: 'unauthorized', message: 'token expired', hint: 'sign in again' } }],
    });
    await login('a@b.c', 'pw');
    await expect(get('/api/v1/agent/sessions')).rejects.toMatchObject({ status: 401, message: 'token expired', hint: 'sign in again' });
    expect(session.get()).toBeNull();
    expect(signOutReason.get()).toBe('token expired');
  });

  it('a probe after a refused WebSocket signs out on 401 only', async () => {
    let status = 503;
    fakeFetch({
      '/api/v1/auth/login': () => [200, { access_token: 'tok0', expires_in: 3600 }],
      '/api/v1/auth/me': (init) =>
        (init.headers as Record<string, string>).Authorization === 'Bearer tok0' && status === 200 ? [200, me] : status === 401 ? [401, { error: { code: 'unauthorized', message: 'token expired' } }] : [status, me],
    });
    status = 200;
    await login('a@b.c', 'pw');
    status = 503; // the server is restarting: the session stays
    probeSession();
    await vi.advanceTimersByTimeAsync(0);
    expect(session.get()?.token).toBe('tok0');
    status = 401; // the token expired: signed out, with the reason
    probeSession();
    await vi.advanceTimersByTimeAsync(0);
    expect(session.get()).toBeNull();
    expect(signOutReason.get()).toBe('token expired');
  });

  it('reports a wrong password without signing in, and a network failure clearly', async () => {
    fakeFetch({ '/api/v1/auth/login': () => [401, { error: { code: 'unauthorized', message: 'wrong email or password' } }] });
    await expect(login('a@b.c', 'bad')).rejects.toBeInstanceOf(ApiError);
    expect(session.get()).toBeNull();
    vi.stubGlobal('fetch', vi.fn(async () => Promise.reject(new TypeError('failed'))));
    await expect(get('/x')).rejects.toMatchObject({ status: 0, code: 'network' });
  });

  it('survives a non-JSON error page (a proxy in between)', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => new Response('<html>502</html>', { status: 502, statusText: 'Bad Gateway' })));
    await expect(get('/x')).rejects.toMatchObject({ status: 502, code: 'http_502' });
  });
});
