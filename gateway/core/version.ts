import * as fs from 'node:fs';
import * as path from 'node:path';

/** The repository (package) root, found by walking up from this file, compiled or not. */
export const PACKAGE_ROOT: string = (() => {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
})();

export const VERSION: string = (JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
