// atomicWrite's two forms: the addon's one-job write (native/src/atomic-write.c, used when the addon
// is built, as in the test command) and the fs.promises steps (the fallback); and replaceFile, the
// same without the fsyncs. All must leave the same files and fail the same way.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { atomicWrite, atomicWriteSteps, replaceFile, tempPathFor } from './fs';
import { findNativeAddon, native } from './native';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-fs-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const forms = [
  ['atomicWrite', atomicWrite],
  ['atomicWriteSteps', atomicWriteSteps],
  ['replaceFile', replaceFile],
] as const;

describe.each(forms)('%s', (_name, write) => {
  test('creates and replaces the whole file with the given mode less the umask; no temp file', async () => {
    const f = path.join(dir, 'rec.json');
    await write(f, 'first version, longer than the second');
    await write(f, new TextEncoder().encode('second'), 0o644);
    expect(fs.readFileSync(f, 'utf8')).toBe('second');
    expect(fs.statSync(f).mode & 0o777).toBe(0o644 & ~process.umask());
    expect(fs.readdirSync(dir)).toEqual(['rec.json']);
  });

  test('a slice of a larger buffer writes only its own bytes', async () => {
    const f = path.join(dir, 'slice');
    await write(f, Buffer.from('xxhelloxx').subarray(2, 7));
    expect(fs.readFileSync(f, 'utf8')).toBe('hello');
  });

  test('a missing directory fails with ENOENT naming the temp file', async () => {
    const f = path.join(dir, 'no', 'rec.json');
    await expect(write(f, 'x')).rejects.toMatchObject({ code: 'ENOENT', syscall: 'open' });
  });

  test('a failed rename keeps the old target and removes the temp file', async () => {
    const f = path.join(dir, 'taken');
    fs.mkdirSync(f);
    fs.writeFileSync(path.join(f, 'inside'), 'keep');
    await expect(write(f, 'x')).rejects.toMatchObject({ syscall: 'rename' });
    expect(fs.readdirSync(dir)).toEqual(['taken']);
    expect(fs.readFileSync(path.join(f, 'inside'), 'utf8')).toBe('keep');
  });
});

const withAddon = findNativeAddon() ? test : test.skip;

withAddon('the addon writes a 1 MiB buffer whole, and reports errors by callback', async () => {
  const f = path.join(dir, 'direct');
  const done = new Promise<void>((resolve, reject) =>
    native().atomicWriteFile(f, tempPathFor(f), Buffer.from('a'.repeat(1 << 20)), 0o600, true, (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  await done;
  expect(fs.readFileSync(f, 'utf8')).toBe('a'.repeat(1 << 20));
  const exists = path.join(dir, 'exists');
  fs.writeFileSync(exists, 'someone else');
  const err = await new Promise<unknown>((resolve) =>
    native().atomicWriteFile(f, exists, Buffer.from('b'), 0o600, false, resolve),
  );
  // O_EXCL: a temp name already taken is an error, and that file is not removed
  expect(err).toMatchObject({ code: 'EEXIST', syscall: 'open', path: exists });
  expect(fs.readFileSync(exists, 'utf8')).toBe('someone else');
  expect(() =>
    native().atomicWriteFile(f, exists, 'text' as unknown as Buffer, 0o600, true, () => undefined),
  ).toThrow(/must be a Buffer/);
  expect(() =>
    native().atomicWriteFile(f, exists, Buffer.from('b'), 0o600, 1 as unknown as boolean, () => undefined),
  ).toThrow(/'durable' must be a boolean/);
});
