/**
 * A HAR 1.2 validator written from the spec (http://www.softwareishard.com/blog/har-12-spec/):
 * required fields and their types, for log, creator, entries, request, response, content,
 * cache and timings. Returns the problems found, as "path: what".
 */
type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return !!v && typeof v === 'object' && !Array.isArray(v);
}

export function validateHar(doc: unknown): string[] {
  const errs: string[] = [];
  const req = (o: Obj, key: string, type: 'string' | 'number' | 'object' | 'array' | 'integer', at: string): unknown => {
    const v = o[key];
    const ok =
      type === 'array' ? Array.isArray(v) : type === 'object' ? isObj(v) : type === 'integer' ? Number.isInteger(v) : typeof v === type && (type !== 'number' || Number.isFinite(v));
    if (!ok) errs.push(`${at}.${key}: required ${type}`);
    return ok ? v : undefined;
  };
  const opt = (o: Obj, key: string, type: 'string' | 'number', at: string): void => {
    if (o[key] !== undefined && typeof o[key] !== type) errs.push(`${at}.${key}: must be a ${type}`);
  };
  const nameValues = (v: unknown, at: string): void => {
    if (!Array.isArray(v)) return;
    v.forEach((x, i) => {
      if (!isObj(x)) return void errs.push(`${at}[${i}]: must be an object`);
      req(x, 'name', 'string', `${at}[${i}]`);
      req(x, 'value', 'string', `${at}[${i}]`);
    });
  };
  if (!isObj(doc)) return ['(root): must be an object'];
  const log = req(doc, 'log', 'object', '(root)') as Obj | undefined;
  if (!log) return errs;
  if (log.version !== '1.2' && log.version !== '1.1') errs.push('log.version: must be "1.2"');
  const creator = req(log, 'creator', 'object', 'log') as Obj | undefined;
  if (creator) {
    req(creator, 'name', 'string', 'log.creator');
    req(creator, 'version', 'string', 'log.creator');
  }
  const entries = (req(log, 'entries', 'array', 'log') as unknown[] | undefined) ?? [];
  entries.forEach((e, i) => {
    const at = `log.entries[${i}]`;
    if (!isObj(e)) return void errs.push(`${at}: must be an object`);
    const started = req(e, 'startedDateTime', 'string', at) as string | undefined;
    if (started !== undefined && !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(started)) errs.push(`${at}.startedDateTime: must be ISO 8601`);
    const time = req(e, 'time', 'number', at) as number | undefined;
    if (time !== undefined && time < 0) errs.push(`${at}.time: must be >= 0`);
    const rq = req(e, 'request', 'object', at) as Obj | undefined;
    if (rq) {
      const a = `${at}.request`;
      req(rq, 'method', 'string', a);
      const url = req(rq, 'url', 'string', a) as string | undefined;
      if (url !== undefined) {
        try {
          new URL(url);
        } catch {
          errs.push(`${a}.url: must be an absolute URL`);
        }
      }
      req(rq, 'httpVersion', 'string', a);
      nameValues(req(rq, 'cookies', 'array', a), `${a}.cookies`);
      nameValues(req(rq, 'headers', 'array', a), `${a}.headers`);
      nameValues(req(rq, 'queryString', 'array', a), `${a}.queryString`);
      req(rq, 'headersSize', 'integer', a);
      req(rq, 'bodySize', 'integer', a);
      if (rq.postData !== undefined) {
        if (!isObj(rq.postData)) errs.push(`${a}.postData: must be an object`);
        else {
          req(rq.postData, 'mimeType', 'string', `${a}.postData`);
          opt(rq.postData, 'text', 'string', `${a}.postData`);
          if (rq.postData.params !== undefined) nameValues(rq.postData.params, `${a}.postData.params`);
        }
      }
    }
    const rs = req(e, 'response', 'object', at) as Obj | undefined;
    if (rs) {
      const a = `${at}.response`;
      req(rs, 'status', 'integer', a);
      req(rs, 'statusText', 'string', a);
      req(rs, 'httpVersion', 'string', a);
      nameValues(req(rs, 'cookies', 'array', a), `${a}.cookies`);
      nameValues(req(rs, 'headers', 'array', a), `${a}.headers`);
      const c = req(rs, 'content', 'object', a) as Obj | undefined;
      if (c) {
        req(c, 'size', 'integer', `${a}.content`);
        req(c, 'mimeType', 'string', `${a}.content`);
        opt(c, 'text', 'string', `${a}.content`);
        opt(c, 'encoding', 'string', `${a}.content`);
        opt(c, 'compression', 'number', `${a}.content`);
      }
      req(rs, 'redirectURL', 'string', a);
      req(rs, 'headersSize', 'integer', a);
      req(rs, 'bodySize', 'integer', a);
    }
    req(e, 'cache', 'object', at);
    const t = req(e, 'timings', 'object', at) as Obj | undefined;
    if (t) {
      for (const k of ['send', 'wait', 'receive']) {
        const v = req(t, k, 'number', `${at}.timings`) as number | undefined;
        if (v !== undefined && v < 0) errs.push(`${at}.timings.${k}: must be >= 0`);
      }
      for (const k of ['blocked', 'dns', 'connect', 'ssl']) {
        if (t[k] !== undefined && (typeof t[k] !== 'number' || ((t[k] as number) < 0 && t[k] !== -1))) errs.push(`${at}.timings.${k}: must be >= 0 or -1`);
      }
    }
    opt(e, 'comment', 'string', at);
    for (const k of Object.keys(e)) {
      if (!['pageref', 'startedDateTime', 'time', 'request', 'response', 'cache', 'timings', 'serverIPAddress', 'connection', 'comment'].includes(k) && !k.startsWith('_')) {
        errs.push(`${at}.${k}: not a HAR field (custom fields start with "_")`);
      }
    }
  });
  return errs;
}
