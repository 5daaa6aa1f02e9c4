import { Status } from '../../internal/errors';
import {
  MT,
  chainIds,
  layerCompression,
  normalizePlatform,
  parseManifest,
  parsePlatform,
  selectPlatform,
  type ImageIndex,
  type Platform,
} from './manifest';
import { createHash } from 'node:crypto';

const d = (c: string): string => `sha256:${c.repeat(64)}`;
const desc = (
  c: string,
  platform?: Platform,
): { mediaType: string; digest: string; size: number; platform?: Platform } => ({
  mediaType: MT.ociManifest,
  digest: d(c),
  size: 10,
  ...(platform ? { platform } : {}),
});

function index(...ms: ReturnType<typeof desc>[]): ImageIndex {
  const r = parseManifest(
    Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: ms })),
    undefined,
  );
  if (r.kind !== 'index') throw new Error('not an index');
  return r;
}

describe('platform selection', () => {
  const idx = index(
    desc('1', { os: 'linux', architecture: 'arm64', variant: 'v8' }),
    desc('2', { os: 'linux', architecture: 'amd64' }),
    desc('3', { os: 'linux', architecture: 'arm', variant: 'v6' }),
    desc('4', { os: 'unknown', architecture: 'unknown' }),
    desc('5', { os: 'windows', architecture: 'amd64' }),
  );
  it('picks amd64 by default', () => {
    expect(selectPlatform(idx, parsePlatform('linux/amd64'), 'x').digest).toBe(d('2'));
  });
  it('matches arm64 with or without a variant', () => {
    expect(selectPlatform(idx, parsePlatform('linux/arm64'), 'x').digest).toBe(d('1'));
    expect(selectPlatform(idx, parsePlatform('linux/aarch64/v8'), 'x').digest).toBe(d('1'));
    const noVariant = index(desc('7', { os: 'linux', architecture: 'arm64' }));
    expect(selectPlatform(noVariant, parsePlatform('linux/arm64/v8'), 'x').digest).toBe(d('7'));
  });
  it('lets arm/v7 fall back to v6 but not the other way round', () => {
    expect(selectPlatform(idx, parsePlatform('linux/arm'), 'x').digest).toBe(d('3'));
    const v7only = index(desc('8', { os: 'linux', architecture: 'arm', variant: 'v7' }));
    expect(() => selectPlatform(v7only, parsePlatform('linux/arm/v6'), 'x')).toThrow(/linux\/arm\/v6/);
  });
  it('names what is available when nothing matches', () => {
    const armOnly = index(desc('9', { os: 'linux', architecture: 'arm64' }));
    let err: unknown;
    try {
      selectPlatform(armOnly, parsePlatform('linux/amd64'), 'reg/img:1');
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: Status.NOT_FOUND });
    expect((err as Error).message).toBe(
      'image reg/img:1 has no manifest for platform linux/amd64; available: linux/arm64/v8',
    );
  });
  it('normalises aliases', () => {
    expect(normalizePlatform({ os: 'Linux', architecture: 'x86_64' })).toEqual({
      os: 'linux',
      architecture: 'amd64',
    });
    expect(normalizePlatform({ os: 'linux', architecture: 'armhf' })).toEqual({
      os: 'linux',
      architecture: 'arm',
      variant: 'v7',
    });
  });
});

describe('parseManifest', () => {
  const m = {
    schemaVersion: 2,
    mediaType: MT.dockerManifest,
    config: { mediaType: MT.dockerConfig, digest: d('c'), size: 5 },
    layers: [{ mediaType: MT.dockerLayerGzip, digest: d('a'), size: 7 }],
  };
  it('parses Docker and OCI manifests, inferring an absent OCI mediaType', () => {
    const r = parseManifest(Buffer.from(JSON.stringify(m)), 'text/plain');
    expect(r).toMatchObject({ kind: 'manifest', mediaType: MT.dockerManifest, config: { digest: d('c') } });
    const { mediaType: _omit, ...oci } = m;
    void _omit;
    expect(parseManifest(Buffer.from(JSON.stringify(oci)), undefined).mediaType).toBe(MT.ociManifest);
    expect(
      parseManifest(Buffer.from(JSON.stringify({ schemaVersion: 2, manifests: [] })), undefined).kind,
    ).toBe('index');
  });
  it('refuses schema 1, bad JSON, bad digests', () => {
    expect(() => parseManifest(Buffer.from('{"schemaVersion":1}'), undefined)).toThrow(/schema 1/);
    expect(() => parseManifest(Buffer.from('nope'), undefined)).toThrow(/not valid JSON/);
    const bad = { ...m, layers: [{ mediaType: MT.dockerLayerGzip, digest: 'sha256:zz', size: 1 }] };
    expect(() => parseManifest(Buffer.from(JSON.stringify(bad)), undefined)).toThrow(/layers\[0\]/);
    expect(() =>
      parseManifest(Buffer.from(JSON.stringify({ ...m, mediaType: 'application/x-foo' })), undefined),
    ).toThrow(/unsupported manifest media type/);
  });
});

describe('media types and chain IDs', () => {
  it('maps layer media types to compression', () => {
    expect(layerCompression(MT.dockerLayerGzip)).toBe('gzip');
    expect(layerCompression(MT.ociLayerGzip)).toBe('gzip');
    expect(layerCompression(MT.ociLayer)).toBe('none');
    expect(layerCompression(MT.dockerLayer)).toBe('none');
    expect(layerCompression(MT.ociLayerZstd)).toBe('zstd');
    expect(() => layerCompression('application/vnd.in-toto+json')).toThrow(/unsupported layer media type/);
  });
  it('computes chain IDs per the OCI spec', () => {
    const [a, b, c] = [d('1'), d('2'), d('3')];
    const ab = `sha256:${createHash('sha256').update(`${a} ${b}`).digest('hex')}`;
    const abc = `sha256:${createHash('sha256').update(`${ab} ${c}`).digest('hex')}`;
    expect(chainIds([a, b, c])).toEqual([a, ab, abc]);
    expect(chainIds([])).toEqual([]);
  });
});
