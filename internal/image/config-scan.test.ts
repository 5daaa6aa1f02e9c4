import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Status, isBerthError } from '../errors';
import { readImageConfigFile, scanImageConfig } from './config-scan';

/** Feeds `text` in chunks of `size` bytes. */
function chunks(text: string, size: number): () => Buffer | null {
  const b = Buffer.from(text);
  let off = 0;
  return () => {
    if (off >= b.length) return null;
    const c = b.subarray(off, off + size);
    off += size;
    return c;
  };
}

const over = (key: string): Error => new Error(`over budget: ${key}`);

describe('scanImageConfig', () => {
  const doc = {
    architecture: 'amd64',
    os: 'linux',
    created: '2024-01-01T00:00:00Z',
    config: { Env: ['A=1', 'B="quoted" \\ back'], Cmd: ['sh'], Labels: { 'a.b': 'c{[]}' } },
    rootfs: { type: 'layers', diff_ids: [`sha256:${'a'.repeat(64)}`] },
    history: [{ created_by: 'x "}]' }, { empty_layer: true, n: -1.5e3, z: null }],
    unknown: { deep: [[[{ x: '\u00e9\\"' }]]], t: true, f: false },
  };
  const text = JSON.stringify(doc, null, 1);

  it('keeps the used parts, skips the rest, whatever the chunking', () => {
    const want = { ...doc } as Record<string, unknown>;
    delete want.history;
    delete want.unknown;
    for (const size of [1, 2, 3, 7, 64, 1 << 20]) {
      expect(scanImageConfig(chunks(text, size), 1 << 20, over)).toEqual(want);
    }
  });

  it('refuses invalid JSON and non-objects with FAILED_PRECONDITION', () => {
    for (const bad of [
      '',
      '[]',
      '"x"',
      '{',
      '{"a":}',
      '{"a" 1}',
      '{"a":1,}',
      '{"a":[1,2}',
      '{"a":"x}',
      '{} x',
      '{"os":"linux"',
    ]) {
      let err: unknown;
      try {
        scanImageConfig(chunks(bad, 3), 1024, over);
      } catch (e) {
        err = e;
      }
      expect(isBerthError(err, Status.FAILED_PRECONDITION)).toBe(true);
    }
    expect(() => scanImageConfig(chunks('{"config":[1]}', 4), 1024, over)).toThrow(/not an object/);
  });

  it('stops at the budget of kept bytes, and a huge skipped part costs nothing', () => {
    const env = Array.from({ length: 100_000 }, (_, i) => `VAR_${i}=${'v'.repeat(40)}`);
    expect(() =>
      scanImageConfig(chunks(JSON.stringify({ os: 'linux', config: { Env: env } }), 65536), 1 << 20, over),
    ).toThrow('over budget: config');
    const history = Array.from({ length: 100_000 }, (_, i) => ({
      created_by: `RUN step ${i} ${'x'.repeat(60)}`,
    }));
    const big = JSON.stringify({ os: 'linux', config: { Env: ['A=1'] }, history });
    expect(big.length).toBeGreaterThan(8_000_000);
    expect(scanImageConfig(chunks(big, 65536), 1 << 20, over)).toEqual({
      os: 'linux',
      config: { Env: ['A=1'] },
    });
  });

  it('the budget bounds all kept parts together, repeated keys included', () => {
    const part = JSON.stringify('x'.repeat(400));
    const doc = `{"os":${part},"author":${part},"created":${part}}`;
    expect(() => scanImageConfig(chunks(doc, 100), 1000, over)).toThrow('over budget: created');
    const dup = `{"config":{"a":${part}},"config":{"a":${part}},"config":{"a":${part}}}`;
    expect(() => scanImageConfig(chunks(dup, 100), 1000, over)).toThrow('over budget: config');
  });

  it('reads a file, and names it in the RESOURCE_EXHAUSTED error', () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-cfgscan-'));
    try {
      const f = join(dir, 'c.json');
      writeFileSync(f, JSON.stringify({ os: 'linux', config: { Env: ['X=1'.repeat(1000)] } }));
      expect(readImageConfigFile(f, 1 << 20, 'cfg').config?.Env).toHaveLength(1);
      let err: unknown;
      try {
        readImageConfigFile(f, 100, 'image config sha256:x of img');
      } catch (e) {
        err = e;
      }
      expect(isBerthError(err, Status.RESOURCE_EXHAUSTED)).toBe(true);
      expect((err as Error).message).toMatch(
        /image config sha256:x of img: its "config" part is larger than 100 bytes/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
