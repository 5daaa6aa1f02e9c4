import { credentialKey, parseTokenAnswer, parseWwwAuthenticate, resolveCredentials } from './auth';

describe('parseWwwAuthenticate', () => {
  it('parses a Docker Hub bearer challenge', () => {
    expect(
      parseWwwAuthenticate(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/busybox:pull',
        },
      },
    ]);
  });
  it('parses basic, unquoted values, escapes and several challenges', () => {
    const chs = parseWwwAuthenticate(
      'Basic realm="Registry \\"Realm\\"", Bearer realm=https://t/x , service=svc,error="invalid_token"',
    );
    expect(chs).toEqual([
      { scheme: 'basic', params: { realm: 'Registry "Realm"' } },
      { scheme: 'bearer', params: { realm: 'https://t/x', service: 'svc', error: 'invalid_token' } },
    ]);
  });
  it('survives junk', () => {
    expect(parseWwwAuthenticate('')).toEqual([]);
    expect(parseWwwAuthenticate('=x, "').filter((c) => c.scheme === 'bearer')).toEqual([]);
    expect(parseWwwAuthenticate('Bearer realm="unterminated')).toEqual([
      { scheme: 'bearer', params: { realm: 'unterminated' } },
    ]);
  });
});

describe('resolveCredentials', () => {
  it('handles every form', () => {
    expect(resolveCredentials(undefined)).toEqual({ kind: 'none' });
    expect(resolveCredentials({})).toEqual({ kind: 'none' });
    expect(resolveCredentials({ username: 'u', password: 'p' })).toEqual({
      kind: 'basic',
      username: 'u',
      password: 'p',
    });
    expect(resolveCredentials({ auth: Buffer.from('u:p:q').toString('base64') })).toEqual({
      kind: 'basic',
      username: 'u',
      password: 'p:q',
    });
    expect(resolveCredentials({ identityToken: 'it' })).toEqual({ kind: 'identityToken', token: 'it' });
    expect(resolveCredentials({ identity_token: 'it', username: 'u' })).toEqual({
      kind: 'identityToken',
      token: 'it',
      username: 'u',
    });
    expect(resolveCredentials({ registryToken: 'rt', username: 'u' })).toEqual({
      kind: 'registryToken',
      token: 'rt',
    });
    expect(() => resolveCredentials({ auth: Buffer.from('nocolon').toString('base64') })).toThrow(
      /user:password/,
    );
  });
  it('keys credentials without revealing them', () => {
    const k = credentialKey({ kind: 'basic', username: 'u', password: 'secret' });
    expect(k).not.toContain('secret');
    expect(k).not.toBe(credentialKey({ kind: 'basic', username: 'u', password: 'other' }));
  });
});

describe('parseTokenAnswer', () => {
  it('reads token or access_token with expiry', () => {
    const now = 1_000_000;
    expect(parseTokenAnswer({ token: 't', expires_in: 300 }, now)).toEqual({
      token: 't',
      expiresAt: now + 290_000,
    });
    expect(parseTokenAnswer({ access_token: 'a' }, now)).toEqual({ token: 'a', expiresAt: now + 50_000 });
    expect(parseTokenAnswer({}, now)).toBeUndefined();
    expect(parseTokenAnswer('x', now)).toBeUndefined();
  });
});
