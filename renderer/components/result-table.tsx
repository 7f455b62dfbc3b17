/**
 * The recorded rows of a SQL result: a virtualised grid, every cell rendered as text. A click on a
 * cell (or a row's number) opens the row: the cell's whole value, and the row copied as JSON or CSV.
 */
import { useCallback, useState } from 'react';
import { VirtualList } from './virtual-list';

export interface ResultTableProps {
  columns: string[];
  rows: unknown[];
}

function cellText(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

function cellsOf(row: unknown): unknown[] {
  return Array.isArray(row) ? row : [row];
}

/** The row as one JSON object, column → value; a repeated column name gets `_2`, `_3`… */
export function rowJson(columns: string[], row: unknown): string {
  const cells = cellsOf(row);
  const out: Record<string, unknown> = {};
  columns.forEach((c, i) => {
    let name = c;
    for (let n = 2; Object.hasOwn(out, name); n++) name = `${c}_${n}`;
    out[name] = cells[i] === undefined ? null : cells[i];
  });
  return JSON.stringify(out, null, 2);
}

function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'string' ? v : JSON.stringify(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The row as CSV (RFC 4180): a header line and the row; NULL is an empty field. */
export function rowCsv(columns: string[], row: unknown): string {
  const cells = cellsOf(row);
  return `${columns.map(csvField).join(',')}\r\n${columns.map((_, i) => csvField(cells[i])).join(',')}\r\n`;
}

export function ResultTable({ columns, rows }: ResultTableProps) {
  const cols = columns.length ? columns : ['value'];
  const width = 56 + cols.length * 180;
  const [open, setOpen] = useState<{ row: number; col: number } | null>(null);
  const renderRow = useCallback(
    (i: number) => {
      const cells = cellsOf(rows[i]);
      return (
        <div className="rt-row" style={{ width }}>
          <span className="rt-num rt-open" onClick={() => setOpen({ row: i, col: 0 })} title="open this row" data-testid="rt-rownum">
            {i + 1}
          </span>
          {cols.map((_, c) => {
            const v = cells[c];
            const text = cellText(v);
            return (
              <span
                key={c}
                className={v === null || v === undefined ? 'rt-cell rt-null' : 'rt-cell'}
                title={text.length > 40 ? 'click to see the whole value' : undefined}
                onClick={() => setOpen({ row: i, col: c })}
                data-testid="rt-cell"
              >
                {text.length > 500 ? `${text.slice(0, 500)}…` : text}
              </span>
            );
          })}
        </div>
      );
    },
    [rows, cols, width],
  );
  return (
    <div className="result-table" data-testid="result-table">
      <div className="rt-scroll">
        <div className="rt-head" style={{ width }}>
          <span className="rt-num">#</span>
          {cols.map((c, i) => (
            <span key={i} className="rt-cell">
              {c}
            </span>
          ))}
        </div>
        <VirtualList count={rows.length} rowHeight={26} renderRow={renderRow} className="rt-body" />
      </div>
      {open && open.row < rows.length && <RowPanel columns={cols} row={rows[open.row]} index={open.row} col={open.col} onCol={(col) => setOpen({ ...open, col })} onClose={() => setOpen(null)} />}
    </div>
  );
}

function RowPanel({ columns, row, index, col, onCol, onClose }: { columns: string[]; row: unknown; index: number; col: number; onCol: (c: number) => void; onClose: () => void }) {
  const cells = cellsOf(row);
  const [copied, setCopied] = useState<{ what: string; text: string; ok: boolean } | null>(null);
  const copy = (what: string, text: string) => {
    const done = (ok: boolean) => setCopied({ what, text, ok });
    // the clipboard may be refused (permissions, an insecure origin): then the text is shown selected to copy by hand
    if (navigator.clipboard?.writeText) navigator.clipboard.writeText(text).then(() => done(true), () => done(false));
    else done(false);
  };
  const value = cells[col];
  return (
    <div className="modal-backdrop" onClick={onClose} onKeyDown={(e) => e.key === 'Escape' && onClose()}>
      <div className="modal rt-panel" role="dialog" aria-modal="true" aria-label={`row ${index + 1}`} data-testid="row-panel" onClick={(e) => e.stopPropagation()}>
        <h2>
          Row {index + 1} · <span className="mono">{columns[col]}</span>
        </h2>
        <pre className={`text-block rt-value ${value === null || value === undefined ? 'rt-null' : ''}`} data-testid="cell-value">
          {typeof value === 'string' ? value : value === null || value === undefined ? 'NULL' : JSON.stringify(value, null, 2)}
        </pre>
        <div className="rt-fields">
          {columns.map((c, i) => (
            <button key={i} className={`rt-field ${i === col ? 'active' : ''}`} onClick={() => onCol(i)} title={cellText(cells[i]).slice(0, 200)}>
              <span className="mono">{c}</span> <span className="muted">{cellText(cells[i]).slice(0, 60)}</span>
            </button>
          ))}
        </div>
        <div className="modal-actions">
          {copied && (
            <span className={copied.ok ? 'ok-text' : 'warn'} data-testid="copy-status" role="status">
              {copied.ok ? `copied ${copied.what}` : `could not reach the clipboard: select and copy below`}
            </span>
          )}
          <button className="btn" onClick={() => copy('the value', cellText(value))} data-testid="copy-value">
            Copy value
          </button>
          <button className="btn" onClick={() => copy('row as JSON', rowJson(columns, row))} data-testid="copy-json">
            Copy row as JSON
          </button>
          <button className="btn" onClick={() => copy('row as CSV', rowCsv(columns, row))} data-testid="copy-csv">
            Copy row as CSV
          </button>
          <button className="btn primary" onClick={onClose} data-testid="row-panel-close" autoFocus>
            Close
          </button>
        </div>
        {copied && !copied.ok && <textarea className="rt-copied" readOnly value={copied.text} data-testid="copied-text" ref={(el) => el?.select()} />}
      </div>
    </div>
  );
}
