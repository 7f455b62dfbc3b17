/**
 * The first-hour parts of Settings: a `flightlog run` line that works when pasted, every form
 * field error at once in the form's words, secrets Flightlog stores for a person who should not
 * have to edit a shell profile, and **Test connection** (also run on every save).
 */
import type * as http from 'node:http';
import * as path from 'node:path';
import { ConfigError, FlightlogError } from '../core/errors';
import { resolveDataDir } from '../core/paths';
import { configIssues, MissingEnvSecretError, resolveSecrets, validateConfig, type ConfigPath } from '../config/load';
import type { ConnectionConfig } from '../common/config-schema';
import { ensureFingerprintKey } from '../store/chain';
import { readJson, reply, sendJson } from '../control-api/server';
import type { RouteMatch } from '../common/routes';
import type { ConnectionTestResult, RunLineHelp, SettingsFieldError, StoreSecretResult } from '../common/api-types';
import { settingsFile, toConnectionInput } from './config-file';
import { testConnection } from './connection-test';
import { flightlogCommand, shellWord } from './run-line';
import { storeSecret } from './secret-store';
import type { SettingsHost } from './settings-routes';


/** `… run`, naming the data dir when an agent's shell would not find this gateway by default. */
export function runLine(dataDir: string, opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): { command: string; help: RunLineHelp } {
  const env = { ...(opts.env ?? process.env) };
  const { prefix, help } = flightlogCommand({ cwd: opts.cwd, env });
  delete env.FLIGHTLOG_HOME;
  const dir = path.resolve(dataDir) === resolveDataDir(undefined, env) ? '' : ` --data-dir ${shellWord(dataDir)}`;
  return { command: `${prefix} run${dir}`, help: { ...help, anywhere: `${help.anywhere} run${dir}` } };
}

function formatPath(p: ConfigPath): string {
  let out = '';
  for (const part of p) out += typeof part === 'number' ? `[${part}]` : out ? `.${part}` : part;
  return out;
}

/** The validator's "expected …" said the way a form says it beside a field. */
function formWords(expected: string): string {
  const missing = /^expected (.+), (but it is missing|got nothing|got "")$/.exec(expected);
  if (missing) return `required: ${missing[1]}`;
  // "expected a list of …" refuses only a missing or empty list
  const list = /^expected (a list of .+), got a list$/.exec(expected);
  if (list) return `required: ${list[1]}`;
  if (/^expected password or privateKey/.test(expected)) return 'required: a password or a private key (how the gateway logs in upstream)';
  return expected;
}

/** `{ env: NAME }` references in a connection as submitted, with where they sit (`upstream.password`). */
function envRefs(v: unknown, at: string[] = []): Array<{ field: string; variable: string }> {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return [];
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1 && keys[0] === 'env' && typeof o.env === 'string') return [{ field: at.join('.'), variable: o.env }];
  return keys.flatMap((k) => envRefs(o[k], [...at, k]));
}

/**
 * Every field of a submitted connection the gateway refuses, or null when `err` is not about the
 * form (a failed listener, a damaged file). Validation issues come first; then each `{ env: NAME }`
 * the gateway's environment lacks, with what to do about it.
 */
export function connectionFieldErrors(
  running: ConnectionConfig[],
  env: NodeJS.ProcessEnv,
  connection: unknown,
  replaces: string | undefined,
  err: unknown,
): SettingsFieldError[] | null {
  const name = connection && typeof connection === 'object' ? (connection as { name?: unknown }).name : undefined;
  // its listener could not bind: that is the listen field's problem
  if (err instanceof FlightlogError && (err.code === 'E_ADDR_IN_USE' || err.code === 'E_LISTEN') && err.message.startsWith(`connection "${String(name)}": `)) {
    return [{ field: 'listen', message: err.message.slice(`connection "${String(name)}": `.length) }];
  }
  if (!(err instanceof ConfigError) && !(err instanceof MissingEnvSecretError)) return null;
  const others = running.filter((c) => c.name !== (replaces ?? name)).map(toConnectionInput);
  const issues = configIssues({ connections: [...others, connection] }, 'form');
  const fields: SettingsFieldError[] = [];
  for (const i of issues) {
    if (i.path[0] !== 'connections' || i.path[1] !== others.length) continue;
    const field = formatPath(i.path.slice(2));
    if (fields.some((f) => f.field === field)) continue;
    fields.push({ field: field === 'upstream' ? 'upstream.password' : field, message: formWords(i.expected) });
  }
  for (const f of missingEnvFields(connection, env)) if (!fields.some((x) => x.field === f.field)) fields.push(f);
  // a refusal about the file or another connection has no field here: the caller shows its line
  return fields.length ? fields : err instanceof ConfigError ? [] : null;
}

/** Each `{ env: NAME }` of a submitted connection that the gateway's environment lacks, with what to do. */
export function missingEnvFields(connection: unknown, env: NodeJS.ProcessEnv): SettingsFieldError[] {
  const out: SettingsFieldError[] = [];
  for (const ref of envRefs((connection as { upstream?: unknown } | null)?.upstream, ['upstream'])) {
    if (env[ref.variable] !== undefined && env[ref.variable] !== '') continue;
    out.push({
      field: ref.field,
      code: 'E_SECRET_MISSING',
      variable: ref.variable,
      message: `${ref.variable} is not set in the gateway's environment (it was started without it). Store the value in Flightlog here, or export ${ref.variable} and start the gateway again.`,
    });
  }
  return out;
}

export interface SetupState {
  testsFor(names: string[]): Record<string, ConnectionTestResult>;
  afterSave(gw: SettingsHost, name: unknown): Promise<void>;
  forget(name: string): void;
  route(req: http.IncomingMessage, res: http.ServerResponse, m: RouteMatch | null, gw: SettingsHost): Promise<boolean>;
}

/** Tests a validated connection with its resolved secrets; a secret that cannot be read is the result. */
async function runTest(gw: SettingsHost, c: ConnectionConfig): Promise<ConnectionTestResult> {
  let secrets: Record<string, string>;
  try {
    secrets = resolveSecrets(c, gw.env ?? process.env, settingsFile(gw.config, gw.dataDir));
  } catch (err) {
    if (!(err instanceof FlightlogError)) throw err;
    return { connection: c.name, protocol: c.protocol, ok: false, message: gw.masker.maskText(err.message).text, testedAt: new Date().toISOString(), ms: 0 };
  }
  return testConnection({ connection: c, secrets, dataDir: gw.dataDir, masker: gw.masker });
}

export function createSetupRoutes(): SetupState {
  const tests = new Map<string, ConnectionTestResult>();
  return {
    testsFor: (names) => Object.fromEntries(names.filter((n) => tests.has(n)).map((n) => [n, tests.get(n)!])),
    forget: (name) => void tests.delete(name),
    async afterSave(gw, name) {
      const c = gw.config.connections.find((x) => x.name === name);
      if (c) tests.set(c.name, await runTest(gw, c));
    },
    async route(req, res, m, gw) {
      if (m?.name === 'testConnection') {
        const body = await readJson(req);
        let c: ConnectionConfig | undefined;
        if (typeof body.name === 'string' && body.connection === undefined) {
          c = gw.config.connections.find((x) => x.name === body.name);
          if (!c) throw new FlightlogError('E_NOT_FOUND', `no connection "${body.name}"`);
        } else {
          if (body.connection === undefined) throw new FlightlogError('E_PARAM', 'the body needs a connection (as the form has it) or the name of a saved one');
          // tested on its own: a name or port another connection uses does not stop a test
          const env = gw.env ?? process.env;
          try {
            c = validateConfig({ connections: [body.connection] }, 'form').connections[0];
          } catch (err) {
            const fields = connectionFieldErrors([], env, body.connection, undefined, err);
            if (fields === null) throw err;
            sendJson(res, 400, { error: { code: (err as FlightlogError).code, message: fields.length ? 'fix the marked fields, then test again' : (err as Error).message, fields } });
            return true;
          }
          const missing = missingEnvFields(body.connection, env);
          if (missing.length) {
            sendJson(res, 400, { error: { code: 'E_SECRET', message: missing[0].message, fields: missing } });
            return true;
          }
        }
        const result = await runTest(gw, c);
        tests.set(c.name, result);
        reply(res, m.name, result);
        return true;
      }
      if (m?.name === 'storeSecret') {
        const body = await readJson(req);
        if (typeof body.name !== 'string' || typeof body.value !== 'string') throw new FlightlogError('E_PARAM', 'the body needs name and value (strings)');
        const stored = storeSecret({ dataDir: gw.dataDir, db: gw.db, name: body.name.trim(), value: body.value, fingerprintKey: ensureFingerprintKey(gw.dataDir) });
        // masked by value from now on in this gateway too, like `flightlog secret add` tells it
        if (body.value.length >= 8) gw.masker.addKnownSecret(`stored-${stored.name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`, body.value);
        const result: StoreSecretResult = { name: stored.name, ref: { file: stored.file }, registered: stored.forms > 0 };
        reply(res, m.name, result);
        return true;
      }
      return false;
    },
  };
}
