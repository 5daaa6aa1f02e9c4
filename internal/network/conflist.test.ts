import { promises as fsp } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compareVersions, confFileNames, loadConfDir, parseConfText } from './conflist';

const list = (over: object = {}): string =>
  JSON.stringify({ cniVersion: '1.0.0', name: 'net', plugins: [{ type: 'bridge' }], ...over });

describe('parseConfText', () => {
  test('a conflist keeps its plugins as written', () => {
    const c = parseConfText(
      list({
        plugins: [
          { type: 'bridge', bridge: 'b0' },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      }),
      'x.conflist',
    );
    expect(c).toEqual({
      cniVersion: '1.0.0',
      name: 'net',
      disableCheck: false,
      plugins: [
        { type: 'bridge', bridge: 'b0' },
        { type: 'portmap', capabilities: { portMappings: true } },
      ],
    });
  });

  test('a single-plugin .conf is wrapped into a list of one', () => {
    const text = JSON.stringify({
      cniVersion: '0.4.0',
      name: 'n1',
      type: 'bridge',
      ipam: { type: 'host-local' },
    });
    expect(parseConfText(text, 'a.conf')).toEqual({
      cniVersion: '0.4.0',
      name: 'n1',
      disableCheck: false,
      plugins: [{ cniVersion: '0.4.0', name: 'n1', type: 'bridge', ipam: { type: 'host-local' } }],
    });
    expect(parseConfText(text, 'a.json').plugins).toHaveLength(1);
  });

  test('a list in a .conf file is accepted as a list', () => {
    expect(parseConfText(list({ disableCheck: true }), 'a.conf')).toMatchObject({
      name: 'net',
      disableCheck: true,
    });
  });

  test.each([
    ['{', /invalid JSON/],
    ['[]', /not a JSON object/],
    [list({ cniVersion: undefined }), /cniVersion is missing/],
    [list({ cniVersion: '9.9.9' }), /cniVersion "9.9.9" is not supported/],
    [list({ name: '' }), /name is missing/],
    [list({ name: '../x' }), /not a valid network name/],
    [list({ plugins: [] }), /non-empty list/],
    [list({ plugins: [{}] }), /plugins\[0\]: type is missing/],
    [list({ plugins: [{ type: '../../bin/sh' }] }), /not a plugin name/],
    [list({ plugins: [{ type: 'x', capabilities: [] }] }), /capabilities must be an object/],
    [list({ disableCheck: 'yes' }), /disableCheck must be a boolean/],
  ])('invalid conflist %#', (text, reason) => {
    expect(() => parseConfText(text, 'x.conflist')).toThrow(reason);
  });

  test('a .conf without type is invalid', () => {
    expect(() => parseConfText(JSON.stringify({ cniVersion: '1.0.0', name: 'n' }), 'x.conf')).toThrow(
      /type is missing/,
    );
  });
});

describe('confFileNames', () => {
  test('keeps config extensions, sorted by name, no hidden files', () => {
    expect(
      confFileNames(['99-z.conf', '10-a.conflist', 'README', '.10-x.conf', '05-b.json', 'x.conflist.bak']),
    ).toEqual(['05-b.json', '10-a.conflist', '99-z.conf']);
  });
});

describe('loadConfDir', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'berth-conf-'));
  });
  afterEach(async () => {
    await fsp.rm(dir, { recursive: true, force: true });
  });

  test('the first valid file by name wins; invalid ones before it are skipped with their reason', async () => {
    await fsp.writeFile(path.join(dir, '01-bad.conflist'), '{');
    await fsp.writeFile(path.join(dir, '02-good.conflist'), list({ name: 'second' }));
    await fsp.writeFile(path.join(dir, '03-good.conflist'), list({ name: 'third' }));
    const r = await loadConfDir(dir);
    expect(r.loaded?.config.name).toBe('second');
    expect(r.loaded?.file).toBe(path.join(dir, '02-good.conflist'));
    expect(r.skipped).toEqual([
      { file: path.join(dir, '01-bad.conflist'), reason: expect.stringMatching(/invalid JSON/) },
    ]);
    expect(r.reason).toBeUndefined();
  });

  test('no valid file: the reason names each file', async () => {
    await fsp.writeFile(path.join(dir, '01-bad.conflist'), '{');
    await fsp.mkdir(path.join(dir, '02-dir.conf'));
    const r = await loadConfDir(dir);
    expect(r.loaded).toBeUndefined();
    expect(r.reason).toMatch(
      /no valid network config in .*01-bad\.conflist: invalid JSON.*02-dir\.conf: not a regular file/,
    );
  });

  test('empty and missing dirs', async () => {
    expect((await loadConfDir(dir)).reason).toBe(`no network config found in ${dir}`);
    expect((await loadConfDir(path.join(dir, 'nope'))).reason).toMatch(/directory missing/);
  });
});

test('compareVersions', () => {
  expect(compareVersions('0.4.0', '0.3.1')).toBeGreaterThan(0);
  expect(compareVersions('1.0.0', '1.0.0')).toBe(0);
  expect(compareVersions('0.3.0', '0.4.0')).toBeLessThan(0);
  expect(compareVersions('1.1.0', '0.4.0')).toBeGreaterThan(0);
});

test('the shipped example deploy/cni/10-berth.conflist is valid', async () => {
  const file = path.join(__dirname, '../../deploy/cni/10-berth.conflist');
  const c = parseConfText(await fsp.readFile(file, 'utf8'), file);
  expect(c.name).toBe('berth');
  expect(c.plugins.map((p) => p.type)).toEqual(['loopback', 'bridge', 'portmap']);
});
