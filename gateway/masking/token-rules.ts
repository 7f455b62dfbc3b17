/**
 * Secret formats with a fixed, documented prefix, written from each vendor's public format.
 *
 * Every rule is tried only at a position where the prefilter saw one of its anchors, as a
 * sticky regex; each starts with a left-boundary lookbehind matching its own character class,
 * so a long run of look-alike characters is tried once, not once per position (no quadratic
 * backtracking). Quantifiers are bounded where a literal follows them.
 */

export interface TokenRule {
  kind: string | ((m: RegExpExecArray) => string);
  /** lowercase literal strings the prefilter looks for; the match is case-insensitive */
  anchors: string[];
  /** sticky regex tried at the match start */
  re: RegExp;
  /** the secret is this capture group (default: the whole match) */
  group?: number;
  /** the match starts this many chars before the anchor */
  back?: number;
  /** the match starts at the beginning of a run of these chars ending at the anchor */
  leftRun?: RegExp;
}

/** left boundaries: not preceded by a char of the token's own class */
const B = '(?<![A-Za-z0-9_])';
const BD = '(?<![A-Za-z0-9_-])';
const E = '(?![A-Za-z0-9_])';
const ED = '(?![A-Za-z0-9_-])';

function rule(kind: TokenRule['kind'], anchors: string[], source: string, extra: Partial<TokenRule> = {}): TokenRule {
  return { kind, anchors, re: new RegExp(source, 'y'), ...extra };
}

const SLACK_KINDS: Record<string, string> = { b: 'slack-bot-token', p: 'slack-user-token', a: 'slack-token', r: 'slack-token', s: 'slack-token', e: 'slack-token', o: 'slack-token' };
const GITHUB_KINDS: Record<string, string> = { p: 'github-pat', o: 'github-oauth', u: 'github-app-token', s: 'github-app-token', r: 'github-refresh-token' };

export const TOKEN_RULES: TokenRule[] = [
  // cloud
  rule('aws-access-key-id', ['akia', 'asia', 'abia', 'acca', 'a3t'], `${B}(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])`),
  rule('google-api-key', ['aiza'], `${BD}AIza[0-9A-Za-z_-]{35}${ED}`),
  rule('gcp-oauth-client-secret', ['gocspx-'], `${BD}GOCSPX-[A-Za-z0-9_-]{24,32}${ED}`),
  rule('google-oauth-token', ['ya29.'], `(?<![A-Za-z0-9_.-])ya29\\.[0-9A-Za-z_.-]{20,}`),
  rule('google-refresh-token', ['1//0'], `(?<![A-Za-z0-9_/-])1//0[0-9A-Za-z_-]{30,}`),
  rule('azure-sas-token', ['sig='], `(?<=[?&;])sig=([A-Za-z0-9%+/=_-]{20,})`, { group: 1 }),
  rule('azure-client-secret', ['q~'], `(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}(?![A-Za-z0-9_~.-])`, { back: 4 }),
  rule('azure-storage-key', ['accountkey='], `AccountKey=([A-Za-z0-9+/]{40,}={0,2})`, { group: 1 }),
  rule('azure-shared-access-key', ['sharedaccesskey='], `SharedAccessKey=([A-Za-z0-9+/]{20,}={0,2})`, { group: 1 }),
  rule('databricks-token', ['dapi'], `${B}dapi[a-f0-9]{32}(?:-[0-9]+)?(?![A-Za-z0-9])`),
  rule('digitalocean-token', ['dop_v1_', 'doo_v1_', 'dor_v1_'], `${B}do[por]_v1_[a-f0-9]{64}(?![A-Za-z0-9])`),
  rule('heroku-api-key', ['hrku-'], `${BD}HRKU-[A-Za-z0-9_-]{40,}`),
  rule('fly-token', ['fo1_', 'fm2_'], `${B}(?:fo1_[A-Za-z0-9_-]{40,}|fm2_[A-Za-z0-9+/=_-]{40,})`),
  rule('terraform-cloud-token', ['.atlasv1.'], `(?<![A-Za-z0-9])[A-Za-z0-9]{14}\\.atlasv1\\.[A-Za-z0-9_=-]{60,}`, { back: 14 }),
  rule('doppler-token', ['dp.'], `${B}dp\\.(?:pt|st|ct|sa|scim|audit)\\.[A-Za-z0-9]{40,44}(?![A-Za-z0-9])`),
  rule('pulumi-token', ['pul-'], `${BD}pul-[a-f0-9]{40}(?![A-Za-z0-9])`),
  rule('planetscale-token', ['pscale_'], `${B}pscale_(?:tkn|pw|oauth)_[A-Za-z0-9_.-]{32,64}`),
  rule('supabase-token', ['sbp_'], `${B}sbp_[a-f0-9]{40}(?![A-Za-z0-9])`),
  rule('tailscale-key', ['tskey-'], `${BD}tskey-[a-z]+-[A-Za-z0-9]{6,}-[A-Za-z0-9]{8,}`),
  rule('vault-token', ['hvs.', 'hvb.', 'hvr.'], `${BD}hv[sbr]\\.[A-Za-z0-9_-]{24,}${ED}`),
  // source hosts and package registries
  ...Object.entries(GITHUB_KINDS).map(([c, kind]) => rule(kind, [`gh${c}_`], `${B}gh${c}_[A-Za-z0-9]{36,251}${E}`)),
  rule('github-fine-grained-pat', ['github_pat_'], `${B}github_pat_[A-Za-z0-9_]{22,251}${E}`),
  rule('gitlab-pat', ['glpat-'], `${BD}glpat-[A-Za-z0-9_-]{20,}(?:\\.[A-Za-z0-9_-]+)*`),
  rule('gitlab-token', ['gldt-', 'glrt-', 'glptt-', 'glcbt-', 'glimt-', 'glsoat-', 'glft-', 'glagent-', 'gloas-', 'gr1348941'],
    `${BD}(?:(?:gldt|glrt|glptt|glcbt|glimt|glsoat|glft|glagent|gloas)-|GR1348941)[A-Za-z0-9_-]{20,}`),
  rule('npm-token', ['npm_'], `${B}npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])`),
  rule('pypi-token', ['pypi-'], `${BD}pypi-AgE[A-Za-z0-9_-]{40,}`),
  rule('docker-hub-pat', ['dckr_'], `${B}dckr_(?:pat|oat)_[A-Za-z0-9_-]{20,}`),
  rule('rubygems-token', ['rubygems_'], `${B}rubygems_[a-f0-9]{48}(?![A-Za-z0-9])`),
  rule('atlassian-api-token', ['atatt3', 'atctt3'], `${BD}AT[AC]TT3[A-Za-z0-9_=-]{32,}`),
  rule('linear-api-key', ['lin_api_'], `${B}lin_api_[A-Za-z0-9]{32,48}(?![A-Za-z0-9])`),
  rule('postman-api-key', ['pmak-'], `${BD}PMAK-[a-f0-9]{24}-[a-f0-9]{34}(?![A-Za-z0-9])`),
  rule('sentry-token', ['sntrys_', 'sntryu_'], `${B}(?:sntrys_[A-Za-z0-9+/=_-]{60,}|sntryu_[a-f0-9]{64})`),
  rule('grafana-token', ['glsa_', 'glc_'], `${B}(?:glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|glc_[A-Za-z0-9+/]{32,}={0,2})`),
  rule('new-relic-key', ['nrak-'], `${BD}NRAK-[A-Z0-9]{27}(?![A-Za-z0-9])`),
  // chat and SaaS
  ...Object.entries(SLACK_KINDS).map(([c, kind]) => rule(kind, [`xox${c}-`, `xoxe.xox${c}-`], `${BD}(?:xoxe\\.)?xox${c}-[A-Za-z0-9-]{10,}`)),
  rule('slack-app-token', ['xapp-'], `${BD}xapp-[A-Za-z0-9-]{10,}`),
  rule('slack-webhook', ['hooks.slack.com'], `hooks\\.slack\\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/+-]{20,}`),
  rule('discord-webhook', ['discord'], `discord(?:app)?\\.com/api/webhooks/[0-9]+/[A-Za-z0-9_-]{20,}`),
  rule('stripe-secret-key', ['sk_live_', 'sk_test_'], `${B}sk_(?:live|test)_[0-9A-Za-z]{10,247}(?![A-Za-z0-9])`),
  rule('stripe-restricted-key', ['rk_live_', 'rk_test_'], `${B}rk_(?:live|test)_[0-9A-Za-z]{10,247}(?![A-Za-z0-9])`),
  rule('stripe-webhook-secret', ['whsec_'], `${B}whsec_[A-Za-z0-9+/=]{24,}`),
  rule('sendgrid-api-key', ['sg.'], `${BD}SG\\.[A-Za-z0-9_-]{16,32}\\.[A-Za-z0-9_-]{16,64}${ED}`),
  rule('twilio-api-key', ['sk'], `${B}SK[0-9a-fA-F]{32}(?![A-Za-z0-9])`),
  rule('shopify-token', ['shpat_', 'shpss_', 'shpca_', 'shppa_'], `${B}shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}(?![A-Za-z0-9])`),
  rule('huggingface-token', ['hf_', 'api_org_'], `${B}(?:hf|api_org)_[A-Za-z0-9]{30,40}(?![A-Za-z0-9])`),
  rule('telegram-bot-token', [':aa'], `(?<![0-9])[0-9]{8,10}:AA[0-9A-Za-z_-]{30,40}${ED}`, { leftRun: /[0-9]/ }),
  rule('mailgun-api-key', ['key-'], `${BD}key-[0-9a-f]{32}(?![A-Za-z0-9])`),
  rule('square-token', ['sq0atp-', 'sq0csp-', 'eaaa'], `${BD}(?:sq0(?:atp|csp)-[0-9A-Za-z_-]{22,43}|EAAA[A-Za-z0-9_-]{60,})`),
  rule('notion-token', ['ntn_'], `${B}ntn_[0-9]{11}[A-Za-z0-9]{35}(?![A-Za-z0-9])`),
  // model APIs
  rule('anthropic-api-key', ['sk-ant-'], `${BD}sk-ant-[A-Za-z0-9_-]{20,}`),
  rule('openai-api-key', ['sk-'], `${BD}sk-(?:(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,}|[A-Za-z0-9]{20}T3BlbkFJ[A-Za-z0-9]{20}(?![A-Za-z0-9])|[A-Za-z0-9]{48}(?![A-Za-z0-9_-]))`),
  rule('openrouter-api-key', ['sk-or-'], `${BD}sk-or-v1-[a-f0-9]{64}(?![A-Za-z0-9])`),
  rule('groq-api-key', ['gsk_'], `${B}gsk_[A-Za-z0-9]{48,56}(?![A-Za-z0-9])`),
  rule('replicate-token', ['r8_'], `${B}r8_[A-Za-z0-9]{37}(?![A-Za-z0-9])`),
  rule('perplexity-api-key', ['pplx-'], `${BD}pplx-[A-Za-z0-9]{48}(?![A-Za-z0-9])`),
  rule('xai-api-key', ['xai-'], `${BD}xai-[A-Za-z0-9]{70,90}(?![A-Za-z0-9])`),
  // keys and generic token formats
  rule('age-secret-key', ['age-secret-key-1'], `${B}AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{50,}`),
  rule('jwt', ['eyj'], `${BD}eyJ[A-Za-z0-9_-]{5,}\\.eyJ[A-Za-z0-9_-]{5,}\\.[A-Za-z0-9_-]*${ED}`),
  rule('flightlog-token', ['flt_'], `${B}flt_[A-Za-z0-9]{32,}(?![A-Za-z0-9])`),
];

/** Rule kinds, for docs and tests. */
export function tokenRuleKinds(): string[] {
  const kinds = new Set<string>();
  for (const r of TOKEN_RULES) {
    if (typeof r.kind === 'string') kinds.add(r.kind);
  }
  for (const k of Object.values(SLACK_KINDS)) kinds.add(k);
  for (const k of Object.values(GITHUB_KINDS)) kinds.add(k);
  return [...kinds].sort();
}
