import { Store } from './state';

export type Theme = 'light' | 'dark';

const prefersDark = typeof matchMedia !== 'undefined' && matchMedia('(prefers-color-scheme: dark)').matches;
export const theme = new Store<Theme>(prefersDark ? 'dark' : 'light');

export function setTheme(th: Theme) {
  document.documentElement.dataset.theme = th;
  theme.set(th);
}
