import { Status } from '../../internal/errors';
import {
  familiarName,
  formatReference,
  looksLikeDomain,
  normalizeReference,
  parseReference,
} from './reference';

const HEX = 'a'.repeat(64);

describe('parseReference / normalizeReference', () => {
  it.each([
    ['busybox', 'docker.io/library/busybox:latest'],
    ['busybox:1.36', 'docker.io/library/busybox:1.36'],
    ['user/x', 'docker.io/user/x:latest'],
    ['docker.io/busybox', 'docker.io/library/busybox:latest'],
    ['index.docker.io/library/busybox:1', 'docker.io/library/busybox:1'],
    ['host:5000/a/b:tag', 'host:5000/a/b:tag'],
    ['registry.k8s.io/pause:3.10', 'registry.k8s.io/pause:3.10'],
    ['localhost/x', 'localhost/x:latest'],
    ['localhost:5000/x', 'localhost:5000/x:latest'],
    ['[::1]:5000/x', '[::1]:5000/x:latest'],
    ['[::1]/x:v1', '[::1]/x:v1'],
    [`busybox@sha256:${HEX}`, `docker.io/library/busybox@sha256:${HEX}`],
    [`busybox:1.36@sha256:${HEX}`, `docker.io/library/busybox:1.36@sha256:${HEX}`],
    ['a/b/c/d:t_1.x-y', 'docker.io/a/b/c/d:t_1.x-y'],
    ['my-reg.example.com/ns/img__sub.a-b', 'my-reg.example.com/ns/img__sub.a-b:latest'],
    ['Upper.example.com/x', 'Upper.example.com/x:latest'],
  ])('%s → %s', (input, want) => {
    expect(normalizeReference(input)).toBe(want);
  });

  it('keeps tag and digest apart', () => {
    expect(parseReference(`h:1/r:t@sha256:${HEX}`)).toEqual({
      domain: 'h:1',
      path: 'r',
      tag: 't',
      digest: `sha256:${HEX}`,
    });
    expect(parseReference(`r@sha256:${HEX}`).tag).toBeUndefined();
  });

  it.each([
    ['', 'empty'],
    ['Busybox', 'lowercase'],
    ['user/Busy', 'lowercase'],
    ['busybox:', 'invalid tag'],
    ['busybox:-x', 'invalid tag'],
    [`busybox:${'a'.repeat(129)}`, 'invalid tag'],
    ['busybox@sha256:abc', '64 lowercase hex'],
    [`busybox@md5:${HEX}`, 'unsupported digest algorithm'],
    ['busybox@', 'algorithm:hex'],
    ['a//b', 'empty path component'],
    ['a/b/', 'empty path component'],
    ['-a', 'invalid path component'],
    ['a..b', 'invalid path component'],
    ['bad host!/x', 'whitespace'],
    ['ho_st.com/x', 'invalid registry host'],
    [HEX, 'image id'],
    [`x/${'a'.repeat(260)}`, 'longer than 255'],
    ['has space', 'whitespace'],
  ])('rejects %j (%s)', (input, why) => {
    let err: unknown;
    try {
      parseReference(input);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: Status.INVALID_ARGUMENT });
    expect((err as Error).message).toContain(why);
  });

  it('detects domains like Docker', () => {
    expect(looksLikeDomain('localhost')).toBe(true);
    expect(looksLikeDomain('a.b')).toBe(true);
    expect(looksLikeDomain('host:5000')).toBe(true);
    expect(looksLikeDomain('user')).toBe(false);
  });

  it('makes familiar names', () => {
    expect(familiarName(parseReference('busybox'))).toBe('busybox:latest');
    expect(familiarName(parseReference('user/x:1'))).toBe('user/x:1');
    expect(familiarName(parseReference('quay.io/a/b'))).toBe('quay.io/a/b:latest');
    expect(formatReference(parseReference(familiarName(parseReference('busybox'))))).toBe(
      'docker.io/library/busybox:latest',
    );
  });
});
