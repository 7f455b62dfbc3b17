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

/** A random 40-char secret access key: both letter cases and a digit, as every real one has. */
export function awsSecretKey(): string {
  for (;;) {
    const k = rand(B64, 40);
    if (/[a-z]/.test(k) && /[A-Z]/.test(k) && /[0-9]/.test(k)) return k;
  }
}

/** A text whose secrets only its context names; `stream`: also checked split at every offset. */
export interface ContextCase {
  name: string;
  text: string;
  secrets: Array<{ kind: string; value: string }>;
  stream?: boolean;
}

export function contextPositives(): ContextCase[] {
  const pw = (): string => rand(ALNUM, 5) + '!' + rand(ALNUM, 6);
  const one = (name: string, make: (s: string) => string, stream = false): ContextCase => {
    const s = pw();
    return { name, text: make(s), secrets: [{ kind: 'password', value: s }], stream };
  };
  const id = p('AK', 'IA') + rand(UPPER_NUM, 16);
  const secret = awsSecretKey();
  const dockerAuth = Buffer.from(`ci-bot:${pw()}`).toString('base64');
  return [
    one('mysql -p attached', (s) => `mysql -h db -uroot -p${s} app\n`, true),
    one("mysql -p'quoted'", (s) => `mysqldump -u root -p'${s}' --all-databases > all.sql\n`, true),
    one('mariadb -p"quoted"', (s) => `mariadb -uapp -p"${s}" -e 'select 1'\n`),
    one('mysql continued lines', (s) => `mysql -h db \\\n  -uroot \\\n  -p${s} app\n`),
    one('PGPASSWORD before psql', (s) => `PGPASSWORD=${s} psql -h db -U app -c 'select 1'\n`, true),
    one('redis-cli -a', (s) => `redis-cli -h cache -p 6379 -a ${s} --no-auth-warning ping\n`, true),
    one('REDISCLI_AUTH', (s) => `REDISCLI_AUTH=${s} redis-cli -h cache ping\n`),
    one('curl -u user:pw', (s) => `curl -fsS -u admin:${s} https://jenkins.example.test/api/json\n`),
    one('curl -uuser:pw attached', (s) => `curl -uadmin:${s} https://jenkins.example.test/api/json\n`),
    one('sshpass -p', (s) => `sshpass -p '${s}' ssh -o StrictHostKeyChecking=no deploy@web-1 uptime\n`, true),
    one('sshpass inside GIT_SSH_COMMAND', (s) => `GIT_SSH_COMMAND="sshpass -p ${s} ssh" git pull\n`),
    one('SSHPASS env', (s) => `SSHPASS=${s} sshpass -e ssh deploy@web-1\n`),
    one('docker login -p', (s) => `docker login -u ci-bot -p ${s} registry.example.test\n`, true),
    one('podman login --password', (s) => `podman login --username ci-bot --password ${s} quay.example.test\n`),
    one('az login -p', (s) => `az login --service-principal -u 7f1c0e52 -p ${s} --tenant example.onmicrosoft.com\n`),
    one('mongo -p', (s) => `mongo --host db -u admin -p ${s} --authenticationDatabase admin\n`, true),
    one('mongosh --password', (s) => `mongosh "mongodb://db:27017" --username admin --password ${s}\n`),
    one('sqlcmd -P', (s) => `sqlcmd -S db,1433 -U sa -P ${s} -Q "SELECT 1"\n`),
    one('ldapsearch -w', (s) => `ldapsearch -x -H ldap://ldap -D cn=admin,dc=example,dc=test -w ${s} -b dc=example,dc=test\n`),
    one('cqlsh -p', (s) => `cqlsh cassandra 9042 -u cassandra -p ${s}\n`),
    one('smbclient -U user%pw', (s) => `smbclient //fs/share -U admin%${s} -c ls\n`),
    one('htpasswd -b', (s) => `htpasswd -bc /etc/nginx/.htpasswd admin ${s}\n`),
    one('rabbitmqctl add_user', (s) => `rabbitmqctl add_user deploy ${s}\n`),
    one('sqlplus user/pw@db', (s) => `sqlplus -s scott/${s}@orcl @report.sql\n`, true),
    one('keytool -storepass', (s) => `keytool -list -keystore app.jks -storepass ${s}\n`),
    one('--password value', (s) => `clickhouse-client --host ch --user default --password ${s}\n`),
    one('URL', (s) => `DATABASE_URL=postgresql://app:${s}@db.internal:5432/app?sslmode=require\n`),
    one('libpq key=value', (s) => `psql "host=db port=5432 user=app password=${s} dbname=app sslmode=require"\n`),
    one('JDBC query', (s) => `jdbc:postgresql://db:5432/app?user=app&password=${s}&ssl=true\n`),
    one('JDBC sqlserver', (s) => `jdbc:sqlserver://db:1433;databaseName=app;user=sa;password=${s};encrypt=true\n`),
    one('JDBC oracle thin', (s) => `url: jdbc:oracle:thin:scott/${s}@db:1521:ORCL\n`),
    one('ADO.NET Password=', (s) => `Server=tcp:db,1433;Database=app;User ID=sa;Password=${s};Encrypt=True;\n`),
    one('ODBC Pwd=', (s) => `Driver={ODBC Driver 18 for SQL Server};Server=db;Uid=sa;Pwd=${s};\n`, true),
    ((s) => ({ name: 'ODBC Pwd={braced}', text: `Driver={ODBC Driver 18 for SQL Server};Server=db;Uid=sa;Pwd={${s}};\n`, secrets: [{ kind: 'password', value: s }] }))(pw() + ';x'),
    one('.netrc one line', (s) => `machine api.example.test login bot password ${s}\n`),
    one('.netrc lines', (s) => `machine api.example.test\n  login bot\n  password ${s}\n`, true),
    one('.pgpass default port', (s) => `db.internal:5432:app:app:${s}\n`, true),
    one('.pgpass wildcard', (s) => `*:*:*:postgres:${s}\n`),
    one('.pgpass named, any port', (s) => `$ cat ~/.pgpass\n# reporting replica\nreplica.internal:6432:reports:reader:${s}\n`),
    one('.pgpass written', (s) => `echo 'db.internal:6543:app:app:${s}' >> ~/.pgpass\n`),
    { name: 'docker config.json', text: `{\n  "auths": {\n    "registry.example.test": {\n      "auth": "${dockerAuth}"\n    }\n  }\n}\n`, secrets: [{ kind: 'basic-auth', value: dockerAuth }] },
    {
      name: 'AWS key id and its partner',
      text: `aws creds: ${id} / ${secret}\n`,
      secrets: [{ kind: 'aws-access-key-id', value: id }, { kind: 'aws-secret-access-key', value: secret }],
      stream: true,
    },
  ];
}

/** Texts that name secrets without holding one, and public key material. */
export function contextNegatives(): string[] {
  return [
    'PGPASSWORD=$PGPASSWORD psql -h db -U app\n',
    'mysql -uroot -p"$MYSQL_ROOT_PASSWORD" app\n',
    'mysql -u root -p app\n',
    'mysql -uroot -p --database app\n',
    'docker run -p 8080:80 -p 5432:5432 postgres:16\n',
    'echo "$CR_PAT" | docker login ghcr.io -u ci-bot --password-stdin\n',
    'docker login -u ci-bot -p "${REGISTRY_PASSWORD}" registry.example.test\n',
    'sshpass -e ssh deploy@web-1\n',
    'sshpass -f ~/.sshpass ssh deploy@web-1\n',
    'redis-cli -p 6379 -a $REDIS_PASSWORD ping\n',
    'curl -u "$JENKINS_USER:$JENKINS_TOKEN" https://jenkins.example.test\n',
    'curl -u admin https://jenkins.example.test\n',
    'ssh -p 2222 deploy@web-1\n',
    'sqlplus / as sysdba\n',
    'htpasswd -c /etc/nginx/.htpasswd admin\n',
    'cat ~/.pgpass\nchmod 600 ~/.pgpass\n',
    'localhost:5432:*:postgres:*\n',
    '10:15:5432:00:01\n',
    'cd build; PWD=/tmp/build\n',
    'docker run --rm -u 1000:1000 -v $PWD:/src node:20 npm test\n',
    'docker exec --user www-data:www-data web php artisan migrate\n',
    'echo ready | tee -a /etc/passwd.log\n',
    'git push -u origin feature/login:feature/login\n',
    'password: ${{ secrets.DB_PASSWORD }}\n',
    'env:\n  NPM_TOKEN: ${{ secrets.NPM_TOKEN }}\n',
    'set DB_PASSWORD=%DB_PASSWORD%\n',
    'password: vault:secret/data/db#password\n',
    'API_KEY=ref+vault://secret/data/app#/api_key\n',
    'DB_PASSWORD=op://Engineering/db/password\n',
    'password: "{{ .Values.postgresql.auth.password }}"\n',
    'password: <password>\n',
    'password: ****\n',
    'PASSWORD=changeme\n',
    'keystore_password: changeit\n',
    'postgres://app:${DB_PASSWORD}@db:5432/app\n',
    'jdbc:postgresql://db:5432/app?user=app&password=${DB_PASSWORD}\n',
    'Server=db;User Id=sa;Password=$(SA_PASSWORD);\n',
    'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl dev@laptop\n',
    '256 SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s dev@laptop (ED25519)\n',
    'host_key_fingerprint: SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU\n',
    'Key fingerprint = 7A5B 3C2D 1E0F 9A8B 7C6D  5E4F 3A2B 1C0D 9E8F 7A6B\n',
    '-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n-----END CERTIFICATE-----\n',
    '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBGBqZ2cBEADJ4f0xRZ8hC1bYp0k3f\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n',
    '{"auths": {"registry.example.test": {"auth": ""}}, "credsStore": "desktop"}\n',
  ];
}
