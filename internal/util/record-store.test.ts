import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { silentLogger } from '../log';
import { RecordStore } from './record-store';
import { KeyedMutex } from './keyed-mutex';
import { atomicWrite, cleanTempFiles } from './fs';

interface Rec {
  id: string;
  n: number;
}
const isRec = (v: unknown): v is Rec =>
  typeof v === 'object' &&
  v !== null &&
  typeof (v as Rec).id === 'string' &&
  typeof (v as Rec).n === 'number';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-rec-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

test('records round-trip; a corrupt or foreign record is moved aside, the rest load', async () => {
  const store = new RecordStore<Rec>(dir, silentLogger(), isRec);
  await store.put('a', { id: 'a', n: 1 });
  await store.put('b', { id: 'b', n: 2 });
  fs.writeFileSync(path.join(dir, 'c.json'), '{"id": "c", "n":'); // torn write of an old version
  fs.writeFileSync(path.join(dir, 'd.json'), '{"something": "else"}');
  fs.writeFileSync(path.join(dir, 'a.json.tmp-123abc'), 'half');
  const loaded = await new RecordStore<Rec>(dir, silentLogger(), isRec).load();
  expect([...loaded.keys()].sort()).toEqual(['a', 'b']);
  expect(loaded.get('b')).toEqual({ id: 'b', n: 2 });
  const names = fs.readdirSync(dir);
  expect(names.filter((n) => n.startsWith('c.json.corrupt-'))).toHaveLength(1);
  expect(names.filter((n) => n.startsWith('d.json.corrupt-'))).toHaveLength(1);
  expect(names.some((n) => n.includes('.tmp-'))).toBe(false);
  await store.delete('a');
  await store.delete('a');
  expect((await store.load()).has('a')).toBe(false);
});

test('a record put without fsync (durable: false) reads back the same, and a durable put replaces it', async () => {
  const store = new RecordStore<Rec>(dir, silentLogger(), isRec);
  await store.put('a', { id: 'a', n: 1 }, { durable: false });
  expect((await store.load()).get('a')).toEqual({ id: 'a', n: 1 });
  await store.put('a', { id: 'a', n: 2 });
  expect((await store.load()).get('a')).toEqual({ id: 'a', n: 2 });
  expect(fs.readdirSync(dir)).toEqual(['a.json']);
});

test('record ids cannot name paths', async () => {
  const store = new RecordStore<Rec>(dir, silentLogger(), isRec);
  await expect(store.put('../x', { id: 'x', n: 0 })).rejects.toThrow(/bad record id/);
});

test('atomicWrite replaces whole files and leaves no temp file', async () => {
  const f = path.join(dir, 'file');
  await atomicWrite(f, 'one');
  await atomicWrite(f, 'two');
  expect(fs.readFileSync(f, 'utf8')).toBe('two');
  expect(fs.readdirSync(dir)).toEqual(['file']);
  fs.writeFileSync(`${f}.tmp-dead`, 'x');
  expect(await cleanTempFiles(dir)).toBe(1);
});

test('KeyedMutex serialises one key and lets others run', async () => {
  const m = new KeyedMutex();
  const order: string[] = [];
  const slow = (tag: string, ms: number): Promise<void> =>
    new Promise((r) =>
      setTimeout(() => {
        order.push(tag);
        r();
      }, ms),
    );
  await Promise.all([
    m.run('a', () => slow('a1', 30)),
    m.run('a', () => slow('a2', 1)),
    m.run('b', () => slow('b1', 5)),
  ]);
  expect(order).toEqual(['b1', 'a1', 'a2']);
  // a failing holder releases the key
  await expect(m.run('a', async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  await expect(m.run('a', async () => 'ok')).resolves.toBe('ok');
});

test('markRemoving: renamed, not rewritten; load() hands it through `removing`; delete() removes it', async () => {
  const removing = (r: Rec): Rec => ({ ...r, n: -r.n });
  const store = new RecordStore<Rec>(dir, silentLogger(), isRec, removing);
  await store.put('a', { id: 'a', n: 1 });
  await store.put('b', { id: 'b', n: 2 });
  await store.markRemoving('a', { id: 'a', n: 1 });
  expect(fs.readdirSync(dir).sort()).toEqual(['a.json.removing', 'b.json']);
  const loaded = await new RecordStore<Rec>(dir, silentLogger(), isRec, removing).load();
  expect(Object.fromEntries(loaded)).toEqual({ a: { id: 'a', n: -1 }, b: { id: 'b', n: 2 } });
  // a plain record beside a marked one (a write that raced the mark): the mark wins
  await store.put('a', { id: 'a', n: 5 });
  expect((await new RecordStore<Rec>(dir, silentLogger(), isRec, removing).load()).get('a')).toEqual({
    id: 'a',
    n: -1,
  });
  await store.delete('a');
  expect(fs.readdirSync(dir)).toEqual(['b.json']);
  // no record file to rename: the record as the caller holds it is written, marked
  await store.markRemoving('c', { id: 'c', n: 3 });
  expect(fs.readdirSync(dir).sort()).toEqual(['b.json', 'c.json.removing']);
  expect((await new RecordStore<Rec>(dir, silentLogger(), isRec, removing).load()).get('c')).toEqual({
    id: 'c',
    n: -3,
  });
});
