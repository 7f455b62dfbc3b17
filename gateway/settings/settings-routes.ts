/**
 * The Settings routes of the control API (offered after its token check): the config's
 * connections, written back to flightlog.yaml and taken live with Gateway.reload, and identities.
 * They change what the gateway lets through, so they refuse anything a browser could send
 * cross-origin: the token must come in the Authorization header, bodies must be JSON, and an
 * Origin, when present, must be the page's own.
 */
import type * as http from 'node:http';
import * as fs from 'node:fs';
import { ConfigError, FlightlogError } from '../core/errors';
import type { Db } from '../store/db';
import type { Masker } from '../common/types';
import type { FlightlogConfig } from '../common/config-schema';
import { addIdentity, listIdentities, revokeIdentity } from '../store/identities';
import { readJson, reply, sendJson } from '../control-api/server';
import { matchRoute } from '../common/routes';
import type { ControlApiOptions } from '../control-api/server';
import type { CreateIdentityResult, GatewayStatus, GuardrailsSettings, SettingsApiError, SettingsSnapshot } from '../common/api-types';
import { connectionFieldErrors, createSetupRoutes, runLine, type SetupState } from './setup-routes';
import { rulesVersion } from '../policy/rules';
import { applyConfigEdit, parseConfigText, removeConnection, settingsFile, toConnectionInput, upsertConnection } from './config-file';
import { checkGuardrailsText, guardrailsText, spliceGuardrails } from './guardrails-text';

type Extra = NonNullable<ControlApiOptions['extra']>;

/** What the routes need of the gateway (Gateway satisfies it). */
export interface SettingsHost {
  readonly dataDir: string;
  readonly db: Db;
  readonly masker: Masker;
  readonly config: FlightlogConfig;
  reload(config: FlightlogConfig): Promise<unknown>;
  status(): GatewayStatus;
  /** the environment `{ env: NAME }` secrets are read from (else this process's) */
  readonly env?: NodeJS.ProcessEnv;
}

const LOOPBACK_HOST = /^(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:\d+)?$/i;

/** Composes the Settings routes in front of another `extra` hook (the web UI's). */
export function withSettingsRoutes(host: () => SettingsHost | null, next?: Extra): Extra {
  const settings = createSettingsRoutes(host);
  return async (req, res, url) => (await settings(req, res, url)) || (next ? next(req, res, url) : false);
}

function sendError(res: http.ServerResponse, status: number, code: string, message: string, docPath?: string, line?: number): true {
  const body: SettingsApiError = { error: docPath === undefined ? { code, message } : { code, message, path: docPath } };
  if (line !== undefined) body.error.line = line;
  sendJson(res, status, body);
  return true;
}

/** Same-origin only: a loopback Host (no DNS rebinding) and, when a browser says where it comes from, our own origin. */
function crossOrigin(req: http.IncomingMessage): string | null {
  const host = req.headers.host ?? '';
  if (!LOOPBACK_HOST.test(host)) return 'forbidden host';
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let o: string;
    try {
      o = new URL(origin).host;
    } catch {
      return 'cross-origin request refused';
    }
    if (o !== host) return 'cross-origin request refused';
  }
  if (req.headers['sec-fetch-site'] === 'cross-site') return 'cross-origin request refused';
  return null;
}

export function settingsSnapshot(gw: SettingsHost, setup?: SetupState): SettingsSnapshot {
  const file = settingsFile(gw.config, gw.dataDir);
  const run = runLine(gw.dataDir);
  return {
    configFile: file,
    configExists: fs.existsSync(file),
    connections: gw.config.connections.map(toConnectionInput),
    identities: listIdentities(gw.db),
    listeners: gw.status().listeners,
    runCommand: run.command,
    runHelp: run.help,
    tests: setup ? setup.testsFor(gw.config.connections.map((c) => c.name)) : {},
  };
}

/** The rules as written in the file the gateway runs, and the running rule set's version. */
export function guardrailsSettings(gw: SettingsHost): GuardrailsSettings {
  const file = settingsFile(gw.config, gw.dataDir);
  let yaml = '';
  if (fs.existsSync(file)) {
    const text = fs.readFileSync(file, 'utf8');
    yaml = guardrailsText(text, parseConfigText(text, file).doc) ?? '';
  }
  const rules = gw.config.guardrails ?? [];
  return { yaml, version: rulesVersion(rules), rules: rules.length, configFile: file };
}

const STATUS: Record<string, number> = {
  E_NOT_FOUND: 404,
  E_IDENTITY_EXISTS: 409,
  E_CONNECTION_EXISTS: 409,
  E_ADDR_IN_USE: 409,
  E_REVOKED: 409,
  E_CONTENT_TYPE: 415,
};

/** The route handler: true when it answered. */
export function createSettingsRoutes(host: () => SettingsHost | null): Extra {
  // One write at a time: each is read-modify-write of the same file plus a reload.
  let writes: Promise<unknown> = Promise.resolve();
  const serialized = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = writes.then(fn);
    writes = run.catch(() => undefined);
    return run;
  };
  const setup = createSetupRoutes();

  const route = async (req: http.IncomingMessage, res: http.ServerResponse, url: URL, gw: SettingsHost): Promise<boolean> => {
    const method = req.method ?? 'GET';
    const m = matchRoute(method, url.pathname);
    if (method !== 'GET' && !/^Bearer /i.test(req.headers.authorization ?? '')) {
      return sendError(res, 401, 'E_UNAUTHORIZED', 'changes need the token in the Authorization header');
    }
    const edit = async (fn: Parameters<typeof applyConfigEdit>[0]['edit']) => {
      await serialized(() => applyConfigEdit({ file: settingsFile(gw.config, gw.dataDir), running: gw.config, edit: fn, reload: (c) => gw.reload(c) }));
      sendJson(res, 200, settingsSnapshot(gw, setup));
      return true;
    };

    if (url.pathname.startsWith('/api/settings')) {
      if (m?.name === 'settings') {
        reply(res, m.name, settingsSnapshot(gw, setup));
        return true;
      }
      if (await setup.route(req, res, m, gw)) return true;
      if (m?.name === 'guardrails') {
        reply(res, m.name, guardrailsSettings(gw));
        return true;
      }
      if (m?.name === 'saveGuardrails') {
        const body = await readJson(req);
        if (typeof body.yaml !== 'string') throw new FlightlogError('E_PARAM', 'the body needs yaml: the guardrails: key as YAML text');
        const submitted = body.yaml;
        let rules: ReturnType<typeof checkGuardrailsText>;
        try {
          rules = checkGuardrailsText(submitted);
        } catch (err) {
          if (!(err instanceof ConfigError)) throw err;
          // located in the edited text, not the file: `line 4: guardrails[0].action: expected …`
          const where = [err.line ? `line ${err.line}` : '', err.docPath].filter(Boolean).join(': ');
          return sendError(res, 400, 'E_CONFIG', `${where ? `${where}: ` : ''}${err.expected}`, err.docPath, err.line);
        }
        const file = settingsFile(gw.config, gw.dataDir);
        await serialized(() =>
          applyConfigEdit({
            file,
            running: gw.config,
            reload: (c) => gw.reload(c),
            editText: (text, doc) => {
              const out = spliceGuardrails(text, doc, submitted);
              const placed = parseConfigText(out, file).config.guardrails ?? [];
              if (JSON.stringify(placed) !== JSON.stringify(rules)) {
                throw new FlightlogError('E_GUARDRAILS', `the rules could not be placed in ${file} as written; nothing was changed`);
              }
              return out;
            },
          }),
        );
        reply(res, m.name, guardrailsSettings(gw));
        return true;
      }
      if (m?.name === 'saveConnection') {
        const body = await readJson(req);
        const replaces = body.replaces === undefined || body.replaces === null || body.replaces === '' ? undefined : body.replaces;
        if (replaces !== undefined && typeof replaces !== 'string') throw new FlightlogError('E_PARAM', 'replaces must be a connection name');
        if (body.connection === undefined) throw new FlightlogError('E_PARAM', 'the body needs a connection: { name, protocol, listen, upstream, identities }');
        try {
          await serialized(() => applyConfigEdit({ file: settingsFile(gw.config, gw.dataDir), running: gw.config, edit: (doc) => upsertConnection(doc, body.connection, replaces), reload: (c) => gw.reload(c) }));
        } catch (err) {
          // every field the form got wrong, placed beside its field, with the validator's line as before
          const fields = connectionFieldErrors(gw.config.connections, gw.env ?? process.env, body.connection, replaces, err);
          if (fields === null) throw err;
          const e = err as FlightlogError & { docPath?: string };
          sendJson(res, STATUS[e.code] ?? 400, { error: { code: e.code, message: e.message, ...(e.docPath !== undefined ? { path: e.docPath } : {}), fields } });
          return true;
        }
        // a saved connection is also tested: green "listening" alone says nothing of the upstream login
        await setup.afterSave(gw, (body.connection as { name?: unknown }).name);
        reply(res, m.name, settingsSnapshot(gw, setup));
        return true;
      }
      if (m?.name === 'deleteConnection') {
        const name = m.params.name;
        if (!gw.config.connections.some((c) => c.name === name)) throw new FlightlogError('E_NOT_FOUND', `no connection "${name}"`);
        setup.forget(name);
        return edit((doc) => removeConnection(doc, name));
      }
      return sendError(res, 405, 'E_METHOD', `${method} is not allowed on ${url.pathname}`);
    }
    // identities
    if (m?.name === 'identities') {
      reply(res, m.name, listIdentities(gw.db));
      return true;
    }
    if (m?.name === 'createIdentity') {
      const body = await readJson(req);
      if (typeof body.name !== 'string') throw new FlightlogError('E_PARAM', 'name must be a string');
      const kind = body.kind === undefined ? 'agent' : body.kind;
      if (kind !== 'agent' && kind !== 'human') throw new FlightlogError('E_PARAM', 'kind must be agent or human');
      const token = addIdentity(gw.db, body.name.trim(), kind);
      const result: CreateIdentityResult = { name: body.name.trim(), kind, token };
      reply(res, m.name, result);
      return true;
    }
    if (m?.name === 'revokeIdentity') {
      revokeIdentity(gw.db, m.params.name);
      reply(res, m.name, { ok: true });
      return true;
    }
    return sendError(res, 405, 'E_METHOD', `${method} is not allowed on ${url.pathname}`);
  };

  return async (req, res, url) => {
    if (!/^\/api\/(settings|identities)(\/|$)/.test(url.pathname)) return false;
    const refused = crossOrigin(req);
    if (refused) return sendError(res, 403, 'E_ORIGIN', refused);
    const gw = host();
    if (!gw) return sendError(res, 503, 'E_STARTING', 'the gateway is still starting');
    try {
      return await route(req, res, url, gw);
    } catch (err) {
      if (res.headersSent) {
        res.destroy();
        return true;
      }
      if (err instanceof ConfigError) return sendError(res, 400, err.code, err.message, err.docPath);
      if (err instanceof FlightlogError) return sendError(res, STATUS[err.code] ?? 400, err.code, err.message);
      // A listener that failed to start for a reason of its own: say which, masked (it may quote config).
      const message = err instanceof Error ? gw.masker.maskText(err.message).text.split('\n')[0] : 'internal error';
      return sendError(res, 500, 'E_RELOAD', `could not apply the change: ${message}`);
    }
  };
}
