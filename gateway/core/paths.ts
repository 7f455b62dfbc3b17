import * as os from 'node:os';
import * as path from 'node:path';

/** `--data-dir DIR`, else `$FLIGHTLOG_HOME`, else the platform's user data dir. */
export function resolveDataDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag) return path.resolve(flag);
  if (env.FLIGHTLOG_HOME) return path.resolve(env.FLIGHTLOG_HOME);
  const home = os.homedir();
  switch (process.platform) {
    case 'darwin':
      return path.join(home, 'Library', 'Application Support', 'Flightlog');
    case 'win32':
      return path.join(env.APPDATA ?? path.join(home, 'AppData', 'Roaming'), 'Flightlog');
    default:
      return path.join(env.XDG_DATA_HOME ?? path.join(home, '.local', 'share'), 'flightlog');
  }
}
