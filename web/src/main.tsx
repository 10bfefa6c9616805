import { render } from 'preact';
import { App } from './app';
import { lang, setLang } from './i18n';
import { setTheme, theme } from './theme';
import './styles.css';

setLang(lang.get());
setTheme(theme.get());
render(<App />, document.getElementById('app')!);
