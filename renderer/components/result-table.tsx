/** The recorded rows of a SQL result: a virtualised grid, every cell rendered as text. */
import { useCallback } from 'react';
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

export function ResultTable({ columns, rows }: ResultTableProps) {
  const cols = columns.length ? columns : ['value'];
  const width = 56 + cols.length * 180;
  const renderRow = useCallback(
    (i: number) => {
      const row = rows[i];
      const cells = Array.isArray(row) ? row : [row];
      return (
        <div className="rt-row" style={{ width }}>
          <span className="rt-num">{i + 1}</span>
          {cols.map((_, c) => {
            const v = cells[c];
            const text = cellText(v);
            return (
              <span key={c} className={v === null || v === undefined ? 'rt-cell rt-null' : 'rt-cell'} title={text.length > 40 ? text.slice(0, 2000) : undefined}>
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
    </div>
  );
}
