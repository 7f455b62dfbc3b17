/**
 * Reads the file names and sizes out of a legacy scp (rcp protocol) stream: the sending side's
 * control lines `C<mode> <size> <name>`, `D<mode> 0 <name>`, `E`, `T…`, each file's bytes skipped.
 * scp in OpenSSH 9 uses SFTP by default; `scp -O` and older clients still run `scp -t/-f`.
 */
export interface ScpEntry {
  kind: 'file' | 'dir';
  mode: string;
  size: number;
  name: string;
}

const MAX_LINE = 4096;

export class ScpSniffer {
  private line = '';
  private skip = 0;
  private broken = false;

  constructor(private readonly onEntry: (entry: ScpEntry) => void) {}

  push(chunk: Buffer): void {
    let p = 0;
    while (p < chunk.length && !this.broken) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - p);
        this.skip -= n;
        p += n;
        continue;
      }
      const nl = chunk.indexOf(0x0a, p);
      const end = nl === -1 ? chunk.length : nl;
      this.line += chunk.toString('utf8', p, end);
      p = end;
      if (this.line.length > MAX_LINE) {
        this.broken = true;
        return;
      }
      if (nl === -1) return;
      p = nl + 1;
      this.onLine(this.line.replace(/^\0+/, ''));
      this.line = '';
    }
  }

  private onLine(line: string): void {
    const m = /^([CD])([0-7]{3,4}) (\d+) (.*)$/.exec(line);
    if (!m) return;
    const size = Number(m[3]);
    const kind = m[1] === 'C' ? 'file' : 'dir';
    this.onEntry({ kind, mode: m[2], size, name: m[4] });
    // A file's bytes follow its control line, then a single NUL.
    if (kind === 'file') this.skip = size + 1;
  }
}
