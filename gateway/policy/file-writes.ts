/**
 * Files a shell line writes or removes, where the parser can tell: redirections (`>`, `>>`,
 * `&>`, `>|`), `tee`, `sed -i`, `cp`/`mv` destinations, `mv` sources, `rm`, `touch`, `dd of=`, the remote end of an scp upload.
 * Only absolute literal paths: the remote shell's working directory and `$VARS` are not known
 * here, and a guessed path would blame the wrong file.
 */
import { shellFacts } from './shell-facts';

export type FileOp = 'write' | 'remove';

export interface FileTouch {
  path: string;
  op: FileOp;
}

function usable(p: string): boolean {
  // device files (/dev/null, /dev/stderr) are not objects anyone blames
  return p.startsWith('/') && !p.startsWith('/dev/') && !/[*?[]/.test(p);
}

export function fileWrites(line: string): FileTouch[] {
  const facts = shellFacts(line);
  const out = new Map<string, FileOp>();
  const add = (p: string, op: FileOp): void => {
    const clean = p.length > 1 ? p.replace(/\/+$/, '') : p;
    if (usable(clean) && out.get(clean) !== 'remove') out.set(clean, op);
  };
  for (const p of facts.redirectWrites) add(p, 'write');
  for (const c of facts.commands) {
    const { program, flags, args } = c;
    switch (program) {
      case 'tee':
      case 'touch':
        for (const a of args) add(a, 'write');
        break;
      case 'sed': {
        if (!flags.includes('i') && !flags.includes('in-place')) break;
        // the script is an argument unless given with -e/-f, whose values also land in args
        const given = flags.filter((f) => f === 'e' || f === 'f' || f === 'expression' || f === 'file').length;
        for (const a of args.slice(Math.max(given, 1))) add(a, 'write');
        break;
      }
      case 'cp':
      case 'mv':
      case 'install': {
        if (flags.includes('t') || flags.includes('target-directory') || args.length < 2) break;
        add(args[args.length - 1], 'write');
        if (program === 'mv') for (const a of args.slice(0, -1)) add(a, 'remove');
        break;
      }
      case 'rm':
      case 'unlink':
      case 'shred':
        for (const a of args) add(a, 'remove');
        break;
      case 'scp':
        // the remote end of an upload: `scp -t PATH`
        if (flags.includes('t')) for (const a of args) add(a, 'write');
        break;
      case 'dd':
        for (const a of args) if (a.startsWith('of=')) add(a.slice(3), 'write');
        break;
      default:
    }
  }
  return [...out].map(([path, op]) => ({ path, op }));
}
