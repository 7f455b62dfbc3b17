/** Renderer entry: takes the token out of the URL, then mounts the app. */
import { createRoot } from 'react-dom/client';
import '@xterm/xterm/css/xterm.css';
import './styles.css';
import { takeTokenFromUrl } from './api';
import { App } from './app';

takeTokenFromUrl();
const root = document.getElementById('root');
if (root) createRoot(root).render(<App />);
