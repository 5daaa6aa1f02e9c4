// Minimal distribution v2 client for the lab: the auth dance (basic, or 401 challenge → token),
// blob upload (POST then PUT ?digest=), manifest put/get. Tests use it to check what was pushed.
import { createHash } from 'node:crypto';
import type { LabRegistry } from './registry';

export function sha256Digest(b: Buffer | string): string {
  return 'sha256:' + createHash('sha256').update(b).digest('hex');
}

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses one WWW-Authenticate challenge: `Bearer realm="...",service="...",scope="..."`. */
export function parseChallenge(header: string): Challenge {
  const m = /^\s*(\S+)\s*(.*)$/.exec(header);
  if (!m) return { scheme: '', params: {} };
  const params: Record<string, string> = {};
  const re = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (let p = re.exec(m[2]); p; p = re.exec(m[2])) {
    params[p[1].toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
  }
  return { scheme: m[1].toLowerCase(), params };
}

/** fetch's BodyInit typing wants an ArrayBuffer-backed view; a Buffer is one, without copying. */
function body(b: Buffer): Uint8Array<ArrayBuffer> {
  return new Uint8Array(b.buffer as ArrayBuffer, b.byteOffset, b.length);
}

function basicHeader(username: string, password: string): string {
  return 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64');
}

/** Asks a token realm for a token; throws with the status on failure (e.g. 401 for bad credentials). */
export async function fetchToken(
  realm: string,
  service: string,
  scopes: string[],
  creds?: { username: string; password: string },
): Promise<string> {
  const u = new URL(realm);
  if (service) u.searchParams.set('service', service);
  for (const s of scopes) u.searchParams.append('scope', s);
  const res = await fetch(u, {
    headers: creds ? { Authorization: basicHeader(creds.username, creds.password) } : {},
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`token request failed: ${res.status} ${text.slice(0, 200)}`);
  const body = JSON.parse(text) as { token?: string; access_token?: string };
  const token = body.token ?? body.access_token;
  if (!token) throw new Error('token response has no token');
  return token;
}

// Tokens per registry, keyed by the challenge's scope string.
const tokenCache = new WeakMap<LabRegistry, Map<string, string>>();

/**
 * fetch() against the registry with its credentials applied. For token auth the request is sent
 * with any cached token; on a Bearer 401 a token for the challenged scope is fetched and the
 * request retried once.
 */
export async function registryFetch(
  reg: LabRegistry,
  path: string,
  init: RequestInit = {},
): Promise<Response> {
  const url = new URL(path, reg.url);
  const auth = reg.auth;
  const headers = new Headers(init.headers);
  if (auth?.kind === 'basic') headers.set('Authorization', basicHeader(auth.username, auth.password));
  const cache = tokenCache.get(reg) ?? new Map<string, string>();
  tokenCache.set(reg, cache);
  const cacheKey = `${init.method ?? 'GET'} ${url.pathname.replace(/\/(blobs|manifests|tags)\/.*$/, '')}`;
  const cached = auth?.kind === 'token' ? cache.get(cacheKey) : undefined;
  if (cached) headers.set('Authorization', `Bearer ${cached}`);

  const res = await fetch(url, { ...init, headers, redirect: 'follow' });
  if (res.status !== 401 || auth?.kind !== 'token') return res;
  const ch = parseChallenge(res.headers.get('www-authenticate') ?? '');
  if (ch.scheme !== 'bearer' || !ch.params.realm) return res;
  await res.arrayBuffer();
  const scopes = ch.params.scope ? ch.params.scope.split(' ') : [];
  const token = await fetchToken(ch.params.realm, ch.params.service ?? '', scopes, auth);
  cache.set(cacheKey, token);
  headers.set('Authorization', `Bearer ${token}`);
  return fetch(url, { ...init, headers, redirect: 'follow' });
}

async function expectStatus(res: Response, ok: number[], what: string): Promise<void> {
  if (!ok.includes(res.status)) {
    const text = await res.text();
    throw new Error(`${what}: HTTP ${res.status} ${text.slice(0, 500)}`);
  }
}

/** Uploads a blob unless the repo already has it; returns its digest. */
export async function uploadBlob(reg: LabRegistry, repo: string, data: Buffer): Promise<string> {
  const digest = sha256Digest(data);
  const head = await registryFetch(reg, `/v2/${repo}/blobs/${digest}`, { method: 'HEAD' });
  if (head.status === 200) return digest;
  const post = await registryFetch(reg, `/v2/${repo}/blobs/uploads/`, { method: 'POST' });
  await expectStatus(post, [202], `start upload to ${repo}`);
  await post.arrayBuffer();
  const location = post.headers.get('location');
  if (!location) throw new Error('upload POST returned no Location');
  const put = new URL(location, reg.url);
  put.searchParams.set('digest', digest);
  const res = await registryFetch(reg, put.pathname + put.search, {
    method: 'PUT',
    headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(data.length) },
    body: body(data),
  });
  await expectStatus(res, [201], `upload ${digest} to ${repo}`);
  await res.arrayBuffer();
  return digest;
}

/** Mounts a blob from another repo of the same registry (201), falling back to nothing on 202. */
export async function mountBlob(
  reg: LabRegistry,
  repo: string,
  from: string,
  digest: string,
): Promise<boolean> {
  const q = new URLSearchParams({ mount: digest, from });
  const res = await registryFetch(reg, `/v2/${repo}/blobs/uploads/?${q.toString()}`, { method: 'POST' });
  await res.arrayBuffer();
  if (res.status === 201) return true;
  if (res.status === 202) {
    // The registry opened a plain upload instead; cancel it.
    const loc = res.headers.get('location');
    if (loc) {
      const del = await registryFetch(reg, new URL(loc, reg.url).pathname, { method: 'DELETE' });
      await del.arrayBuffer();
    }
    return false;
  }
  throw new Error(`mount ${digest} from ${from} into ${repo}: HTTP ${res.status}`);
}

/** PUTs a manifest by tag or digest; returns the digest the registry reports. */
export async function putManifest(
  reg: LabRegistry,
  repo: string,
  reference: string,
  manifest: Buffer,
  mediaType: string,
): Promise<string> {
  const res = await registryFetch(reg, `/v2/${repo}/manifests/${reference}`, {
    method: 'PUT',
    headers: { 'Content-Type': mediaType },
    body: body(manifest),
  });
  await expectStatus(res, [201], `put manifest ${repo}:${reference}`);
  await res.arrayBuffer();
  const digest = res.headers.get('docker-content-digest') ?? '';
  const expected = sha256Digest(manifest);
  if (digest !== expected) throw new Error(`registry stored manifest as ${digest}, expected ${expected}`);
  return digest;
}

export const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** GETs a manifest; returns its bytes, media type and digest header. */
export async function getManifest(
  reg: LabRegistry,
  repo: string,
  reference: string,
): Promise<{ body: Buffer; mediaType: string; digest: string }> {
  const res = await registryFetch(reg, `/v2/${repo}/manifests/${reference}`, {
    headers: { Accept: MANIFEST_ACCEPT },
  });
  await expectStatus(res, [200], `get manifest ${repo}:${reference}`);
  return {
    body: Buffer.from(await res.arrayBuffer()),
    mediaType: res.headers.get('content-type') ?? '',
    digest: res.headers.get('docker-content-digest') ?? '',
  };
}

/** GETs a blob's bytes as served (no verification: that is the point for corruption tests). */
export async function getBlob(reg: LabRegistry, repo: string, digest: string): Promise<Buffer> {
  const res = await registryFetch(reg, `/v2/${repo}/blobs/${digest}`);
  await expectStatus(res, [200], `get blob ${repo}@${digest}`);
  return Buffer.from(await res.arrayBuffer());
}
