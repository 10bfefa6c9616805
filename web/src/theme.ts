import { Store } from './state';

export type Theme = 'light' | 'dark';

const prefersDark = typeof matchMedia !== 'undefined' && matchMedia('(prefers-color-scheme: dark)').matches;
const saved = globalThis.localStorage?.getItem('it0.theme');
export const theme = new Store<Theme>(saved === 'dark' || saved === 'light' ? saved : prefersDark ? 'dark' : 'light');

export function setTheme(th: Theme) {
  document.documentElement.dataset.theme = th;
  globalThis.localStorage?.setItem('it0.theme', th);
  theme.set(th);
}
