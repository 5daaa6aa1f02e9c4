// OCI distribution v2 client: endpoints (mirrors first, then the upstream), HTTPS with the system CAs
// or plain HTTP for insecure hosts, anonymous/Basic/Bearer auth with a token cache, manifests and
// blob streams. Errors are BerthErrors with the gRPC code that says what went wrong.
import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Config } from '../config/config';
import {
  BerthError,
  Status,
  errMessage,
  failedPrecondition,
  isBerthError,
  short,
  unauthenticated,
  unavailable,
} from '../errors';
import type { Logger } from '../log';
import {
  type Challenge,
  type ResolvedCredentials,
  type TokenAnswer,
  credentialKey,
  parseTokenAnswer,
  parseWwwAuthenticate,
  resolveCredentials,
} from './auth';
import { type EndpointFailure, RegistryError, combineEndpointFailures } from './endpoint-errors';
import { http1Get } from './http1-get';
import { MANIFEST_ACCEPT, sha256Digest } from './manifest';
import { type ImageReference, registryHost } from './reference';
import type { RegistryCredentials } from './types';

const MAX_REDIRECTS = 5;
/** blobs this big or bigger are read through http1-get.ts (see getBlob) */
export const DEDICATED_CONNECTION_BYTES = 4 * 1024 * 1024;
const USER_AGENT = 'berth/0.1';
const SYSTEM_CA_BUNDLES = ['/etc/ssl/certs/ca-certificates.crt', '/etc/pki/tls/certs/ca-bundle.crt'];

export interface Endpoint {
  /** base URL without trailing slash or /v2, e.g. https://registry-1.docker.io */
  base: string;
  /** host[:port] of the endpoint, for insecure and credential lookups */
  host: string;
  mirror: boolean;
}

/** Endpoints for a registry domain: configured mirrors in order, then the upstream. */
export function endpointsFor(domain: string, config: Pick<Config, 'registry'>): Endpoint[] {
  const out: Endpoint[] = [];
  for (const m of config.registry.mirrors[domain] ?? []) {
    const u = new URL(m);
    out.push({
      base: `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '').replace(/\/v2$/, '')}`,
      host: u.host,
      mirror: true,
    });
  }
  const host = registryHost(domain);
  const insecure = isInsecure(host, config.registry.insecure) || isInsecure(domain, config.registry.insecure);
  out.push({ base: `${insecure ? 'http' : 'https'}://${host}`, host, mirror: false });
  return out;
}

/** A host is insecure when listed with its port, or listed without a port (any port then). */
export function isInsecure(host: string, list: string[]): boolean {
  if (list.includes(host)) return true;
  const m = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(host);
  return m !== null && list.includes(m[1] as string);
}

let caCache: string[] | undefined;
function systemCAs(): string[] {
  if (!caCache) {
    const cas = [...tls.rootCertificates];
    for (const f of SYSTEM_CA_BUNDLES) {
      try {
        cas.push(readFileSync(f, 'utf8'));
        break;
      } catch {
        // try the next location
      }
    }
    caCache = cas;
  }
  return caCache;
}

export interface HttpResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Readable;
  url: URL;
}

/** Which HTTP client a request goes through: node:http, or http1-get.ts for blob bodies. */
export type Transport = 'node' | 'blob';

export interface RegistryClientOptions {
  config: Config;
  log: Logger;
  /** buffers for blob body chunks (see Http1GetOptions.chunk) */
  bodyChunk?: () => Buffer;
}

/** Bytes read from a registry, reported as they arrive (progress and stall detection). */
export type ByteCounter = (n: number) => void;

export class RegistryClient {
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  private readonly httpsAgent: https.Agent;
  /** host → last challenge seen, so later requests authenticate up front */
  private readonly challenges = new Map<string, Challenge>();
  /** host|scope|credentials → token */
  private readonly tokens = new Map<string, TokenAnswer>();

  constructor(private readonly opts: RegistryClientOptions) {
    this.httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 16, ca: systemCAs() });
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }

  /** A session for one repository: picks the endpoint that serves the manifest and keeps using it. */
  session(
    ref: ImageReference,
    creds: RegistryCredentials | undefined,
    signal: AbortSignal,
    count?: ByteCounter,
  ): RegistrySession {
    return new RegistrySession(this, ref, creds, signal, count);
  }

  endpoints(domain: string): Endpoint[] {
    return endpointsFor(domain, this.opts.config);
  }

  get log(): Logger {
    return this.opts.log;
  }

  get maxManifestBytes(): number {
    return this.opts.config.image.max_manifest_bytes;
  }

  /** Credentials for an endpoint: the request's for the upstream (else config), config only for mirrors. */
  credentialsFor(
    ep: Endpoint,
    domain: string,
    requestCreds: RegistryCredentials | undefined,
  ): ResolvedCredentials {
    const auths = this.opts.config.registry.auths;
    if (ep.mirror) return resolveCredentials(auths[ep.host]);
    const fromRequest = resolveCredentials(requestCreds);
    if (fromRequest.kind !== 'none') return fromRequest;
    return resolveCredentials(auths[domain] ?? auths[ep.host]);
  }

  /**
   * One HTTP request, following redirects (Authorization is dropped when the origin changes). The
   * `blob` transport (GET only) reads big bodies with less CPU (http1-get.ts).
   */
  async raw(
    url: URL,
    method: string,
    headers: Record<string, string>,
    signal: AbortSignal,
    body?: string,
    transport: Transport = 'node',
  ): Promise<HttpResponse> {
    let cur = url;
    let hdrs = { ...headers };
    for (let hop = 0; ; hop++) {
      const res =
        transport === 'blob' && method === 'GET'
          ? await this.blobGet(cur, hdrs, signal)
          : await this.once(cur, method, hdrs, signal, body);
      const loc = res.headers.location;
      if ([301, 302, 303, 307, 308].includes(res.status) && loc && hop < MAX_REDIRECTS) {
        if (transport === 'blob')
          res.body.destroy(); // its own connection: nothing to reuse
        else res.body.resume();
        const next = new URL(loc, cur);
        if (next.origin !== cur.origin) {
          hdrs = { ...hdrs };
          delete hdrs.Authorization;
        }
        cur = next;
        continue;
      }
      return res;
    }
  }

  private async blobGet(
    url: URL,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<HttpResponse> {
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      throw failedPrecondition(`unsupported URL scheme in ${short(url.href)}`);
    try {
      const res = await http1Get(url, {
        headers: { 'User-Agent': USER_AGENT, ...headers },
        signal,
        tls: { ca: systemCAs() },
        ...(this.opts.bodyChunk ? { chunk: this.opts.bodyChunk } : {}),
      });
      return { status: res.status, headers: res.headers, body: res.body, url };
    } catch (err) {
      throw this.requestFailed(err, 'GET', url, signal);
    }
  }

  /** The error of a request that got no response. */
  private requestFailed(err: unknown, method: string, url: URL, signal: AbortSignal): BerthError {
    if (signal.aborted) return abortReason(signal);
    const errno = (err as NodeJS.ErrnoException).code;
    return new RegistryError(
      Status.UNAVAILABLE,
      `${method} ${url.origin}${url.pathname}: ${errMessage(err)}`,
      `unreachable (${errno ?? short(errMessage(err), 120)})`,
      'unreachable',
      { cause: err },
    );
  }

  private once(
    url: URL,
    method: string,
    headers: Record<string, string>,
    signal: AbortSignal,
    body?: string,
  ): Promise<HttpResponse> {
    const mod = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
    if (!mod) return Promise.reject(failedPrecondition(`unsupported URL scheme in ${short(url.href)}`));
    return new Promise<HttpResponse>((resolve, reject) => {
      const req = mod.request(
        url,
        {
          method,
          headers: { 'User-Agent': USER_AGENT, ...headers },
          agent: url.protocol === 'https:' ? this.httpsAgent : this.httpAgent,
          signal,
        },
        (res) => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url }),
      );
      req.on('error', (err) => reject(this.requestFailed(err, method, url, signal)));
      req.end(body);
    });
  }

  /** Bearer token for a challenge, from the cache or the token server. */
  async token(
    ep: Endpoint,
    ch: Challenge,
    scope: string,
    creds: ResolvedCredentials,
    signal: AbortSignal,
  ): Promise<string> {
    if (creds.kind === 'registryToken') return creds.token;
    const key = `${ep.host}|${scope}|${credentialKey(creds)}`;
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > Date.now()) return cached.token;
    const realm = ch.params.realm;
    if (!realm) throw unauthenticated(`registry ${ep.host} sent a Bearer challenge without a realm`);
    let realmUrl: URL;
    try {
      realmUrl = new URL(realm);
    } catch {
      throw unauthenticated(`registry ${ep.host} sent an invalid token realm ${short(realm)}`);
    }
    let res: HttpResponse;
    if (creds.kind === 'identityToken') {
      // OAuth2 refresh-token grant, as Docker does with an identity token.
      const form = new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: creds.token,
        client_id: 'berth',
        scope,
        ...(ch.params.service ? { service: ch.params.service } : {}),
      }).toString();
      res = await this.raw(
        realmUrl,
        'POST',
        { 'Content-Type': 'application/x-www-form-urlencoded' },
        signal,
        form,
      );
    } else {
      if (ch.params.service) realmUrl.searchParams.set('service', ch.params.service);
      realmUrl.searchParams.set('scope', scope);
      const headers: Record<string, string> = {};
      if (creds.kind === 'basic') {
        headers.Authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
      }
      res = await this.raw(realmUrl, 'GET', headers, signal);
    }
    const text = await readBody(res.body, 1024 * 1024, signal);
    if (res.status === 401 || res.status === 403) {
      throw unauthenticated(
        `authentication to ${ep.host} failed: token server ${realmUrl.origin} answered ${res.status}${creds.kind === 'none' ? ' (no credentials given)' : ' (wrong credentials?)'}`,
      );
    }
    if (res.status !== 200) throw unavailable(`token server ${realmUrl.origin} answered ${res.status}`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text.toString('utf8'));
    } catch {
      throw unavailable(`token server ${realmUrl.origin} sent invalid JSON`);
    }
    const answer = parseTokenAnswer(parsed);
    if (!answer) throw unavailable(`token server ${realmUrl.origin} sent no token`);
    this.tokens.set(key, answer);
    return answer.token;
  }

  challengeFor(host: string): Challenge | undefined {
    return this.challenges.get(host);
  }

  rememberChallenge(host: string, ch: Challenge): void {
    this.challenges.set(host, ch);
  }

  forgetToken(ep: Endpoint, scope: string, creds: ResolvedCredentials): void {
    this.tokens.delete(`${ep.host}|${scope}|${credentialKey(creds)}`);
  }
}

export interface ManifestResult {
  bytes: Buffer;
  mediaType: string | undefined;
  /** sha256 of the bytes as received */
  digest: string;
}

export class RegistrySession {
  private chosen: Endpoint | undefined;
  private readonly scope: string;

  constructor(
    private readonly client: RegistryClient,
    private readonly ref: ImageReference,
    private readonly creds: RegistryCredentials | undefined,
    private readonly signal: AbortSignal,
    private readonly count?: ByteCounter,
  ) {
    this.scope = `repository:${ref.path}:pull`;
  }

  /** The endpoint that served the manifest (after getManifest). */
  get endpoint(): Endpoint | undefined {
    return this.chosen;
  }

  /**
   * Fetches a manifest by tag or digest, verified: by digest, the bytes must hash to it; by tag, to
   * the Docker-Content-Digest the registry sent (when it sent one). Too large: RESOURCE_EXHAUSTED
   * before the body is read (Content-Length) or as soon as it passes the limit. The first call tries
   * the endpoints in order (a mirror that fails, lacks the image or serves bad bytes falls through to
   * the next); later calls use the endpoint that answered. When all fail, the error names each
   * endpoint with its answer (endpoint-errors.ts).
   */
  async getManifest(tagOrDigest: string, what = 'manifest'): Promise<ManifestResult> {
    const eps = this.chosen ? [this.chosen] : this.client.endpoints(this.ref.domain);
    const byDigest = tagOrDigest.startsWith('sha256:');
    const name = `${this.ref.domain}/${this.ref.path}${byDigest ? '@' : ':'}${tagOrDigest}`;
    const max = this.client.maxManifestBytes;
    const failures: EndpointFailure[] = [];
    for (const ep of eps) {
      try {
        const res = await this.request(ep, `manifests/${tagOrDigest}`, { Accept: MANIFEST_ACCEPT });
        const tooBig = (n: number | string): BerthError =>
          new RegistryError(
            Status.RESOURCE_EXHAUSTED,
            `${what} of ${short(name, 200)} is larger than ${max} bytes (${n}; config key image.max_manifest_bytes)`,
            `${what} too large (${n} bytes)`,
            'definite',
          );
        const len = Number(res.headers['content-length']);
        if (Number.isFinite(len) && len > max) {
          res.body.destroy();
          throw tooBig(len);
        }
        const bytes = await readBody(res.body, max, this.signal, this.count, () =>
          tooBig(`more than ${max}`),
        );
        const digest = sha256Digest(bytes);
        const sent = headerDigest(res.headers['docker-content-digest']);
        const expected = byDigest ? tagOrDigest : sent;
        if (expected !== undefined) {
          const actual = expected.startsWith('sha512:') ? digestOf('sha512', bytes) : digest;
          if (actual !== expected) {
            const source = byDigest ? 'the digest asked for' : 'the Docker-Content-Digest the registry sent';
            throw new RegistryError(
              Status.DATA_LOSS,
              `${what} ${short(name, 200)} failed verification: ${source} is ${expected} but the content hashes to ${actual}`,
              `${what} failed verification (expected ${expected}, got ${actual})`,
              'definite',
            );
          }
        }
        this.chosen = ep;
        return { bytes, mediaType: res.headers['content-type'], digest };
      } catch (err) {
        if (this.signal.aborted) throw abortReason(this.signal);
        failures.push({
          label: ep.mirror ? `mirror ${ep.base}` : this.ref.domain,
          mirror: ep.mirror,
          error: err,
        });
        if (ep.mirror)
          this.client.log.info('mirror failed, trying the next endpoint', {
            mirror: ep.base,
            error: errMessage(err),
          });
      }
    }
    throw combineEndpointFailures(name, failures);
  }

  /**
   * Opens a blob's byte stream (from the endpoint that served the manifest). A blob declared at
   * DEDICATED_CONNECTION_BYTES or more comes through http1-get.ts on a connection of its own;
   * smaller ones reuse node:http's kept-alive connections (a new TCP and TLS handshake would cost
   * them more than their bytes).
   */
  async getBlob(
    digest: string,
    declaredSize?: number,
  ): Promise<{ body: Readable; size: number | undefined }> {
    const ep = this.chosen ?? this.client.endpoints(this.ref.domain).at(-1);
    if (!ep) throw internal('no endpoint');
    const transport = (declaredSize ?? 0) >= DEDICATED_CONNECTION_BYTES ? 'blob' : 'node';
    const res = await this.request(ep, `blobs/${digest}`, {}, transport);
    const len = res.headers['content-length'];
    return { body: res.body, size: len !== undefined ? Number(len) : undefined };
  }

  /** GET with auth: answers a 401 challenge once (Basic or Bearer), maps failures to BerthErrors. */
  private async request(
    ep: Endpoint,
    what: string,
    headers: Record<string, string>,
    transport: Transport = 'node',
  ): Promise<HttpResponse> {
    const url = new URL(`${ep.base}/v2/${this.ref.path}/${what}`);
    const creds = this.client.credentialsFor(ep, this.ref.domain, this.creds);
    let challenge = this.client.challengeFor(ep.host);
    for (let attempt = 0; ; attempt++) {
      const h = { ...headers };
      if (challenge) h.Authorization = await this.authorization(ep, challenge, creds);
      else if (creds.kind === 'registryToken') h.Authorization = `Bearer ${creds.token}`;
      const res = await this.client.raw(url, 'GET', h, this.signal, undefined, transport);
      if (res.status === 200) return res;
      const body = await readBody(res.body, 64 * 1024, this.signal).catch(() => Buffer.alloc(0));
      const where = `${ep.mirror ? 'mirror ' : ''}${ep.host}`;
      if (res.status === 401 && attempt === 0) {
        const chs = parseWwwAuthenticate(String(res.headers['www-authenticate'] ?? ''));
        const ch = chs.find((c) => c.scheme === 'bearer') ?? chs.find((c) => c.scheme === 'basic');
        if (ch) {
          if (challenge?.scheme === 'bearer') this.client.forgetToken(ep, this.scope, creds);
          challenge = ch;
          this.client.rememberChallenge(ep.host, ch);
          continue;
        }
      }
      throw statusError(res.status, where, `${this.ref.path}/${what}`, body, creds);
    }
  }

  private async authorization(ep: Endpoint, ch: Challenge, creds: ResolvedCredentials): Promise<string> {
    if (ch.scheme === 'basic') {
      if (creds.kind !== 'basic')
        throw unauthenticated(`registry ${ep.host} requires a username and password`);
      return `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString('base64')}`;
    }
    if (ch.scheme === 'bearer')
      return `Bearer ${await this.client.token(ep, ch, this.scope, creds, this.signal)}`;
    throw unauthenticated(`registry ${ep.host} asks for unsupported auth scheme ${short(ch.scheme)}`);
  }
}

function internal(msg: string): BerthError {
  return new BerthError(Status.INTERNAL, msg);
}

/** Maps a registry's HTTP status to a BerthError, quoting the registry's own error message. */
export function statusError(
  status: number,
  where: string,
  what: string,
  body: Buffer,
  creds: ResolvedCredentials,
): BerthError {
  let detail = '';
  let registryMessage: string | undefined;
  try {
    const j = JSON.parse(body.toString('utf8')) as { errors?: { code?: string; message?: string }[] };
    const e = j.errors?.[0];
    if (e) detail = `: ${short(`${e.code ?? ''} ${e.message ?? ''}`.trim(), 200)}`;
    if (e && (e.message || e.code))
      registryMessage = short(e.message || String(e.code).toLowerCase().replace(/_/g, ' '), 120);
  } catch {
    // not a JSON error body
  }
  const subject = `${where}/v2/${short(what, 160)}`;
  const e = (code: Status, text: string, kind: 'definite' | 'transient', answer = text): RegistryError =>
    new RegistryError(code, `${subject}: ${text}${detail}`, answer, kind);
  if (status === 401) {
    const why = creds.kind === 'none' ? ' (no credentials given)' : ' (credentials rejected)';
    return e(Status.UNAUTHENTICATED, `unauthorized${why}`, 'definite');
  }
  if (status === 403) return e(Status.PERMISSION_DENIED, 'access denied', 'definite');
  if (status === 404) return e(Status.NOT_FOUND, 'not found', 'definite', registryMessage ?? 'not found');
  if (status === 429) return e(Status.RESOURCE_EXHAUSTED, 'rate limited by the registry', 'transient');
  if (status >= 500) return e(Status.UNAVAILABLE, `registry error ${status}`, 'transient');
  return e(Status.UNKNOWN, `unexpected HTTP status ${status}`, 'transient');
}

/** A Docker-Content-Digest header's value when it is one we can check (sha256 or sha512). */
function headerDigest(v: string | string[] | undefined): string | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  const t = s.trim();
  return /^sha256:[a-f0-9]{64}$/.test(t) || /^sha512:[a-f0-9]{128}$/.test(t) ? t : undefined;
}

function digestOf(alg: 'sha256' | 'sha512', data: Buffer): string {
  return `${alg}:${createHash(alg).update(data).digest('hex')}`;
}

/** The reason an abort signal carries, as a BerthError (CANCELLED when it is not one). */
export function abortReason(signal: AbortSignal): BerthError {
  const r: unknown = signal.reason;
  if (isBerthError(r)) return r;
  return new BerthError(Status.CANCELLED, `pull cancelled${r instanceof Error ? `: ${r.message}` : ''}`);
}

/** Reads a whole (small) body, refusing more than `max` bytes (with `tooBig()`'s error when given). */
export async function readBody(
  body: Readable,
  max: number,
  signal: AbortSignal,
  count?: ByteCounter,
  tooBig?: () => BerthError,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  try {
    for await (const c of body as AsyncIterable<Buffer>) {
      n += c.length;
      count?.(c.length);
      if (n > max) {
        body.destroy();
        throw tooBig ? tooBig() : failedPrecondition(`response larger than ${max} bytes`);
      }
      chunks.push(c);
    }
  } catch (err) {
    if (signal.aborted) throw abortReason(signal);
    if (isBerthError(err)) throw err;
    throw unavailable(`reading from registry: ${errMessage(err)}`);
  }
  return Buffer.concat(chunks);
}
