/**
 * Fake secrets for the masking tests, built at run time from a seeded generator so that no
 * token-shaped literal sits in the repository (and trips push protection or scanners).
 */

let seed = 0x2545f491;
function next(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return (seed >>> 0) / 0x100000000;
}

export const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const UPPER_NUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
export const HEX = '0123456789abcdef';
export const B64 = ALNUM + '+/';
export const URLSAFE = ALNUM + '_-';
export const BECH32 = 'QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L';
export const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export function rand(charset: string, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += charset[Math.floor(next() * charset.length)];
  return s;
}
/** Joins parts so a prefix never appears whole in source. */
export function p(...parts: string[]): string {
  return parts.join('');
}

export function jwt(): string {
  const enc = (o: object): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc({ sub: rand(HEX, 8), iat: 1700000000 })}.${rand(URLSAFE, 43)}`;
}

export function pem(label: string): string {
  const lines: string[] = [];
  for (let i = 0; i < 6; i++) lines.push(rand(B64, 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----`;
}

/** kind, a text holding the secret, the secret, a look-alike text that must stay as it is */
export interface RuleCase {
  kind: string;
  text: string;
  secret: string;
  negative: string;
}

export function ruleCases(): RuleCase[] {
  const c = (kind: string, secret: string, negative: string, wrap?: (s: string) => string): RuleCase => ({
    kind,
    secret,
    text: wrap ? wrap(secret) : `using credential ${secret} for upload\n`,
    negative,
  });
  return [
    c('aws-access-key-id', p('AK', 'IA') + rand(UPPER_NUM, 16), `request AKIA${rand(UPPER_NUM, 10)} id` ),
    c('aws-secret-access-key', rand(B64, 40), `aws_secret_access_key_file = /etc/aws/creds`, (s) => `[default]\naws_secret_access_key = ${s}\n`),
    c('aws-session-token', rand(B64, 120), 'AWS_SESSION_TOKEN=', (s) => `AWS_SESSION_TOKEN=${s}\n`),
    c('google-api-key', p('AI', 'za') + rand(URLSAFE, 35), `AIza${rand(ALNUM, 20)} is too short`),
    c('gcp-oauth-client-secret', p('GOC', 'SPX-') + rand(URLSAFE, 28), 'GOCSPX is the prefix'),
    c('google-oauth-token', p('ya', '29.') + rand(URLSAFE, 60), 'ya29 is a prefix'),
    c('azure-storage-key', rand(B64, 86) + '==', 'AccountName=logs;EndpointSuffix=core.windows.net', (s) => `DefaultEndpointsProtocol=https;AccountName=logs;AccountKey=${s};EndpointSuffix=core.windows.net\n`),
    c('azure-shared-access-key', rand(B64, 43) + '=', 'SharedAccessKeyName=RootManageSharedAccessKey;', (s) => `Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=Root;SharedAccessKey=${s}\n`),
    c('azure-sas-token', rand(ALNUM, 40) + '%3D', 'https://a.blob.core.windows.net/c/f?sv=2022-11-02&sp=r', (s) => `https://a.blob.core.windows.net/c/f?sv=2022-11-02&sp=r&sig=${s}\n`),
    c('azure-client-secret', rand(ALNUM, 3) + '8' + p('Q', '~') + rand(URLSAFE, 34), 'value Q~ alone'),
    c('github-pat', p('gh', 'p_') + rand(ALNUM, 36), `ghp_${rand(ALNUM, 20)} truncated`),
    c('github-oauth', p('gh', 'o_') + rand(ALNUM, 36), `xgho_${rand(ALNUM, 36)}`),
    c('github-app-token', p('gh', 's_') + rand(ALNUM, 36), 'ghs_ is an installation token prefix'),
    c('github-refresh-token', p('gh', 'r_') + rand(ALNUM, 76), 'ghr_short'),
    c('github-fine-grained-pat', p('github', '_pat_') + rand(ALNUM, 22) + '_' + rand(ALNUM, 59), 'github_pat_ tokens are long'),
    c('gitlab-pat', p('glp', 'at-') + rand(URLSAFE, 20), 'glpat-short'),
    c('gitlab-token', p('gld', 't-') + rand(URLSAFE, 20), 'gldt-short'),
    c('slack-bot-token', p('xo', 'xb-') + `${rand('0123456789', 12)}-${rand('0123456789', 13)}-${rand(ALNUM, 24)}`, 'xoxb- is a bot token prefix'),
    c('slack-user-token', p('xo', 'xp-') + `${rand('0123456789', 12)}-${rand('0123456789', 13)}-${rand(ALNUM, 24)}`, 'xoxp-'),
    c('slack-app-token', p('xa', 'pp-') + `1-${rand(UPPER_NUM, 11)}-${rand('0123456789', 13)}-${rand(HEX, 64)}`, 'xapp-1'),
    c('slack-webhook', p('hooks.sl', 'ack.com/services/') + `T${rand(UPPER_NUM, 8)}/B${rand(UPPER_NUM, 10)}/${rand(ALNUM, 24)}`, 'see https://hooks.slack.com/services/ for docs', (s) => `POST https://${s} 200\n`),
    c('discord-webhook', `discord.com/api/webhooks/${rand('0123456789', 18)}/${rand(URLSAFE, 68)}`, 'https://discord.com/api/webhooks/ docs', (s) => `url=https://${s}\n`),
    c('stripe-secret-key', p('sk', '_live_') + rand(ALNUM, 99), 'sk_live_short'),
    c('stripe-restricted-key', p('rk', '_live_') + rand(ALNUM, 99), 'rk_live_'),
    c('stripe-webhook-secret', p('wh', 'sec_') + rand(ALNUM, 32), 'whsec_ prefix'),
    c('sendgrid-api-key', p('S', 'G.') + rand(URLSAFE, 22) + '.' + rand(URLSAFE, 43), 'SG.short.x'),
    c('twilio-api-key', p('S', 'K') + rand(HEX, 32), `SKU-${rand(HEX, 32)} and TASK${rand(HEX, 32)}`),
    c('shopify-token', p('shp', 'at_') + rand(HEX, 32), `shpat_${rand(HEX, 20)}`),
    c('digitalocean-token', p('dop', '_v1_') + rand(HEX, 64), 'dop_v1_abc'),
    c('huggingface-token', p('h', 'f_') + rand(LETTERS, 34), 'hf_hub_download(repo_id)'),
    c('databricks-token', p('da', 'pi') + rand(HEX, 32), 'dapi is the prefix; dapiX'),
    c('telegram-bot-token', `${rand('123456789', 10)}:${p('A', 'A')}${rand(URLSAFE, 33)}`, 'time 10:30:AA'),
    c('atlassian-api-token', p('ATA', 'TT3') + rand(URLSAFE, 180) + '=' + rand(UPPER_NUM, 8), 'ATATT3 prefix'),
    c('npm-token', p('np', 'm_') + rand(ALNUM, 36), 'npm_config_cache=/tmp'),
    c('pypi-token', p('py', 'pi-AgEIcHlwaS5vcmc') + rand(URLSAFE, 70), 'pypi-simple index'),
    c('docker-hub-pat', p('dck', 'r_pat_') + rand(URLSAFE, 27), 'dckr_pat_'),
    c('openai-api-key', p('s', 'k-proj-') + rand(URLSAFE, 74) + 'T3BlbkFJ' + rand(URLSAFE, 74), 'sk-learn and task-proj-1'),
    c('anthropic-api-key', p('s', 'k-ant-api03-') + rand(URLSAFE, 93) + 'AA', 'sk-ant- prefix'),
    c('vault-token', p('hv', 's.') + rand(URLSAFE, 90), 'hvs.short'),
    c('age-secret-key', p('AGE-SECRET', '-KEY-1') + rand(BECH32, 58), 'AGE-SECRET-KEY-1 prefix'),
    c('private-key', pem('RSA PRIVATE KEY'), '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----', (s) => `key file:\n${s}\n`),
    c('jwt', jwt(), 'eyJhbGciOiJIUzI1NiJ9 alone'),
    c('password', 'hunter2-' + rand(ALNUM, 6), 'DATABASE_URL=postgres://app@db.internal:5432/prod', (s) => `DATABASE_URL=postgres://app:${s}@db.internal:5432/prod\n`),
    c('basic-auth', Buffer.from('deploy:' + rand(ALNUM, 12)).toString('base64'), 'Authorization header is required', (s) => `Authorization: Basic ${s}\n`),
    c('bearer-token', rand(ALNUM, 40), 'Authorization: Bearer $TOKEN', (s) => `curl -H 'Authorization: Bearer ${s}' https://api.example.test\n`),
    c('authorization-header', rand(HEX, 40), 'proxy-authorization: <redacted>', (s) => `Proxy-Authorization: Digest username="u", response="${s}"\n`),
    c('cookie', rand(ALNUM, 32), 'the cookie: jar is empty', (s) => `Cookie: sessionid=${s}; theme=dark\n`),
    c('api-key-header', rand(ALNUM, 32), 'X-Api-Key: ${API_KEY}', (s) => `X-Api-Key: ${s}\n`),
    c('generic-api-key', rand(ALNUM, 32), '{"api_key": "<your-api-key>"}', (s) => `{"service": "billing", "api_key": "${s}"}\n`),
    c('generic-secret', rand(ALNUM, 24), 'client_secret_name: billing-oauth', (s) => `client_token: ${s}\n`),
    c('client-secret', rand(ALNUM, 24), 'CLIENT_SECRET=${CLIENT_SECRET}', (s) => `export CLIENT_SECRET='${s}'\n`),
    c('flightlog-token', p('fl', 't_') + rand(ALNUM, 40), 'flt_ prefix and flt_short'),
    c('mailgun-api-key', p('ke', 'y-') + rand(HEX, 32), 'key-value store'),
    c('postman-api-key', p('PM', 'AK-') + rand(HEX, 24) + '-' + rand(HEX, 34), 'PMAK- prefix'),
    c('linear-api-key', p('lin', '_api_') + rand(ALNUM, 40), 'lin_api_ prefix'),
    c('grafana-token', p('gl', 'sa_') + rand(ALNUM, 32) + '_' + rand(HEX, 8), 'glsa_ prefix'),
    c('new-relic-key', p('NR', 'AK-') + rand(UPPER_NUM, 27), 'NRAK-short'),
    c('sentry-token', p('sntr', 'yu_') + rand(HEX, 64), 'sntryu_'),
    c('square-token', p('sq0', 'atp-') + rand(URLSAFE, 22), 'sq0atp-'),
    c('planetscale-token', p('pscale', '_tkn_') + rand(ALNUM, 43), 'pscale_tkn_'),
    c('supabase-token', p('sb', 'p_') + rand(HEX, 40), 'sbp_'),
    c('tailscale-key', p('tsk', 'ey-') + 'auth-' + rand(ALNUM, 12) + '-' + rand(ALNUM, 30), 'tskey-auth'),
    c('groq-api-key', p('gs', 'k_') + rand(ALNUM, 52), 'gsk_'),
    c('replicate-token', p('r', '8_') + rand(ALNUM, 37), 'r8_'),
    c('perplexity-api-key', p('pp', 'lx-') + rand(ALNUM, 48), 'pplx-'),
    c('xai-api-key', p('xa', 'i-') + rand(ALNUM, 80), 'xai-grok'),
    c('terraform-cloud-token', rand(ALNUM, 14) + p('.atl', 'asv1.') + rand(ALNUM, 67), 'app.atlasv1.example'),
    c('doppler-token', p('dp', '.pt.') + rand(ALNUM, 43), 'dp.pt.'),
    c('fly-token', p('fo', '1_') + rand(URLSAFE, 43), 'fo1_'),
    c('heroku-api-key', p('HR', 'KU-') + rand(URLSAFE, 60), 'HRKU-'),
    c('pulumi-token', p('pu', 'l-') + rand(HEX, 40), 'pul-'),
    c('rubygems-token', p('ruby', 'gems_') + rand(HEX, 48), 'rubygems_'),
    c('notion-token', p('nt', 'n_') + rand('0123456789', 11) + rand(ALNUM, 35), 'ntn_'),
    c('openrouter-api-key', p('s', 'k-or-v1-') + rand(HEX, 64), 'sk-or-v1-'),
  ];
}
