// A tiny distribution "token server" for the lab registry: checks basic credentials and hands out
// ES256 JWTs that distribution 2.8 accepts. The JWT header carries the signing certificate in `x5c`;
// the registry verifies that chain against its `rootcertbundle` (the same self-signed certificate).
import { execFile } from 'node:child_process';
import { randomBytes, sign, X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface TokenSigner {
  certPath: string;
  key: KeyObject;
  certDerB64: string;
}

/** Makes an EC P-256 key and a self-signed certificate for it in `dir` (openssl CLI; node cannot issue certs). */
export async function makeTokenSigner(dir: string): Promise<TokenSigner> {
  const keyPath = join(dir, 'token-key.pem');
  const certPath = join(dir, 'token-cert.pem');
  await execFileP('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-days',
    '2',
    '-subj',
    '/CN=berth-lab-token-issuer',
  ]);
  const [keyPem, certPem] = await Promise.all([readFile(keyPath), readFile(certPath)]);
  return {
    certPath,
    key: createPrivateKey(keyPem),
    certDerB64: new X509Certificate(certPem).raw.toString('base64'),
  };
}

const b64url = (b: Buffer | string): string => Buffer.from(b).toString('base64url');

export interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

export interface JwtClaims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  nbf: number;
  iat: number;
  jti: string;
  access: AccessEntry[];
}

/** Compact JWS, ES256 with the raw r||s signature JOSE wants. */
export function signJwt(signer: TokenSigner, claims: JwtClaims): string {
  const header = { typ: 'JWT', alg: 'ES256', x5c: [signer.certDerB64] };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const sig = sign('sha256', Buffer.from(input), { key: signer.key, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(sig)}`;
}

/** Parses "type:name:a,b" scopes; a name may itself hold ':' (host:port/repo), so split at the ends. */
export function parseScope(scope: string): AccessEntry | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last === first) return undefined;
  const actions = scope
    .slice(last + 1)
    .split(',')
    .filter((a) => a !== '');
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions };
}

export interface TokenServer {
  realm: string;
  /** number of token requests seen (granted or not), for tests that count round trips */
  requests(): number;
  close(): Promise<void>;
}

export interface TokenServerOptions {
  signer: TokenSigner;
  service: string;
  issuer: string;
  username: string;
  password: string;
  /** token lifetime in seconds */
  ttl?: number;
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TokenServer> {
  let count = 0;
  const ttl = opts.ttl ?? 300;
  const expected = 'Basic ' + Buffer.from(`${opts.username}:${opts.password}`).toString('base64');

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    count++;
    const url = new URL(req.url ?? '/', 'http://lab');
    const send = (status: number, body: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'Content-Type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET' || url.pathname !== '/token') {
      send(404, { errors: [{ code: 'NOT_FOUND' }] });
      return;
    }
    if (req.headers.authorization !== expected) {
      send(
        401,
        { errors: [{ code: 'UNAUTHORIZED', message: 'bad credentials' }] },
        {
          'WWW-Authenticate': 'Basic realm="berth-lab-token"',
        },
      );
      return;
    }
    if (url.searchParams.get('service') !== opts.service) {
      send(400, { errors: [{ code: 'INVALID_SERVICE', message: 'unknown service' }] });
      return;
    }
    // Clients send several scopes as repeated params or space-separated in one.
    const access: AccessEntry[] = [];
    for (const s of url.searchParams.getAll('scope').flatMap((v) => v.split(' '))) {
      const entry = s ? parseScope(s) : undefined;
      if (entry) access.push(entry);
    }
    const now = Math.floor(Date.now() / 1000);
    const token = signJwt(opts.signer, {
      iss: opts.issuer,
      sub: opts.username,
      aud: opts.service,
      exp: now + ttl,
      nbf: now - 10,
      iat: now,
      jti: randomBytes(12).toString('hex'),
      access,
    });
    send(200, { token, access_token: token, expires_in: ttl, issued_at: new Date(now * 1000).toISOString() });
  };

  const server: Server = createServer(handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    requests: () => count,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
