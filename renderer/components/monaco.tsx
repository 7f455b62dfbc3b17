/**
 * Monaco, read-only: SQL and shell with syntax highlighting, and the diff editor. Only the
 * editor core and the languages we show are bundled; the editor worker is its own file
 * (dist/renderer/editor.worker.js) so the CSP keeps `worker-src 'self'`.
 */
import { useEffect, useRef } from 'react';
import * as monaco from 'monaco-editor/editor/editor.api.js';
import 'monaco-editor/languages/definitions/pgsql/register.js';
import 'monaco-editor/languages/definitions/shell/register.js';
import 'monaco-editor/languages/definitions/yaml/register.js';

declare global {
  interface Window {
    MonacoEnvironment?: { getWorker(workerId: string, label: string): Worker };
  }
}

self.MonacoEnvironment = {
  getWorker: () => new Worker('./editor.worker.js'),
};

monaco.editor.defineTheme('flightlog', {
  base: 'vs-dark',
  inherit: true,
  rules: [],
  colors: { 'editor.background': '#0f141b', 'editorGutter.background': '#0f141b', 'diffEditor.insertedTextBackground': '#2ea04333', 'diffEditor.removedTextBackground': '#f8514933' },
});

// A diff editor disposed while its worker computes (a view re-rendered, a filter changed) makes
// Monaco reject that computation with this error, which nothing awaits: the diff is gone with its
// editor, so there is nothing to report.
window.addEventListener('unhandledrejection', (e: PromiseRejectionEvent) => {
  if (e.reason instanceof Error && e.reason.message === 'no diff result available') e.preventDefault();
});

const COMMON: monaco.editor.IEditorOptions = {
  readOnly: true,
  domReadOnly: true,
  minimap: { enabled: false },
  scrollBeyondLastLine: false,
  automaticLayout: true,
  fontSize: 13,
  lineNumbersMinChars: 3,
  renderLineHighlight: 'none',
  wordWrap: 'on',
  links: false,
  contextmenu: false,
  fontFamily: 'ui-monospace, "JetBrains Mono", "DejaVu Sans Mono", monospace',
};

/** Maps a command kind to a Monaco language id. */
export function languageOf(kind: string): string {
  if (kind === 'sql') return 'pgsql';
  if (kind === 'shell' || kind === 'exec') return 'shell';
  if (kind === 'kubectl') return 'shell';
  return 'plaintext';
}

export function CodeView({ value, language, height }: { value: string; language: string; height?: number }) {
  const host = useRef<HTMLDivElement>(null);
  const editor = useRef<monaco.editor.IStandaloneCodeEditor | null>(null);
  useEffect(() => {
    if (!host.current) return;
    const e = monaco.editor.create(host.current, { ...COMMON, value, language, theme: 'flightlog' });
    editor.current = e;
    return () => {
      e.getModel()?.dispose();
      e.dispose();
      editor.current = null;
    };
    // the editor is created once; value and language are applied below
  }, []);
  useEffect(() => {
    const e = editor.current;
    if (!e) return;
    const model = e.getModel();
    if (model && model.getValue() !== value) model.setValue(value);
    if (model) monaco.editor.setModelLanguage(model, language);
  }, [value, language]);
  const lines = value.split('\n').length;
  return <div className="code-view" data-testid="code-view" ref={host} style={{ height: height ?? Math.min(Math.max(lines, 3), 24) * 19 + 12 }} />;
}

export function DiffView({ original, modified, language, height }: { original: string; modified: string; language: string; height?: number | string }) {
  const host = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!host.current) return;
    const e = monaco.editor.createDiffEditor(host.current, {
      ...COMMON,
      originalEditable: false,
      renderSideBySide: true,
      useInlineViewWhenSpaceIsLimited: false,
      theme: 'flightlog',
    });
    const a = monaco.editor.createModel(original, language);
    const b = monaco.editor.createModel(modified, language);
    e.setModel({ original: a, modified: b });
    return () => {
      // detach first: a computation still running then sees its models gone and cancels
      e.setModel(null);
      e.dispose();
      a.dispose();
      b.dispose();
    };
  }, [original, modified, language]);
  return <div className="diff-view" data-testid="diff-view" ref={host} style={{ height: height ?? '100%' }} />;
}

/** An editable editor (Settings' guardrails): `error` puts a marker on its line. */
export function CodeEditor({ value, language, onChange, error, height, testId }: { value: string; language: string; onChange: (v: string) => void; error?: { line: number; message: string } | null; height?: number; testId?: string }) {
  const host = useRef<HTMLDivElement>(null);
  const editor = useRef<monaco.editor.IStandaloneCodeEditor | null>(null);
  const changed = useRef(onChange);
  changed.current = onChange;
  useEffect(() => {
    if (!host.current) return;
    const e = monaco.editor.create(host.current, { ...COMMON, readOnly: false, domReadOnly: false, renderLineHighlight: 'line', wordWrap: 'off', tabSize: 2, value, language, theme: 'flightlog' });
    editor.current = e;
    const sub = e.onDidChangeModelContent(() => changed.current(e.getValue()));
    return () => {
      sub.dispose();
      e.getModel()?.dispose();
      e.dispose();
      editor.current = null;
    };
    // created once; a new value from outside (a reload after save) is applied below
  }, []);
  useEffect(() => {
    const model = editor.current?.getModel();
    if (model && model.getValue() !== value) model.setValue(value);
  }, [value]);
  useEffect(() => {
    const model = editor.current?.getModel();
    if (!model) return;
    const line = error && error.line >= 1 && error.line <= model.getLineCount() ? error.line : null;
    monaco.editor.setModelMarkers(model, 'flightlog', line && error ? [{ severity: monaco.MarkerSeverity.Error, message: error.message, startLineNumber: line, startColumn: 1, endLineNumber: line, endColumn: model.getLineMaxColumn(line) }] : []);
  }, [error?.line, error?.message]);
  return <div className="code-view code-editor" data-testid={testId ?? 'code-editor'} ref={host} style={{ height: height ?? 320 }} />;
}
