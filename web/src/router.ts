import { Store, useStore } from './state';

// A tiny history router: the server answers every console path with index.html (SPA fallback).
export const route = new Store<string>(typeof location === 'undefined' ? '/' : location.pathname + location.search);

export function navigate(to: string, replace = false) {
  if (to === route.get()) return;
  if (replace) history.replaceState(null, '', to);
  else history.pushState(null, '', to);
  route.set(to);
}

if (typeof window !== 'undefined') window.addEventListener('popstate', () => route.set(location.pathname + location.search));

export function useRoute(): { path: string; parts: string[]; query: URLSearchParams } {
  const r = useStore(route);
  const [path, q = ''] = r.split('?');
  return { path, parts: path.split('/').filter(Boolean).map(decodeURIComponent), query: new URLSearchParams(q) };
}

// onLink makes an <a href> navigate in-app (keeps ctrl/middle click opening a tab).
export function onLink(e: MouseEvent) {
  const a = (e.currentTarget as HTMLAnchorElement) ?? null;
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  e.preventDefault();
  navigate(a.getAttribute('href') || '/');
}
