import { EventEmitter } from 'node:events';
import { createLogger } from '../log';
import { batchBySize, messageSizer, streamList } from './stream_list';

describe('batchBySize', () => {
  it('keeps order and every item, never exceeding the budget unless one item alone does', () => {
    const items = [300, 300, 300, 50, 2000, 10];
    const batches = batchBySize(items, (n) => n, 1000);
    expect(batches.flat()).toEqual(items);
    expect(batches).toEqual([[300, 300, 300, 50], [2000], [10]]);
    for (const b of batches)
      if (b.length > 1) expect(b.reduce((a, n) => a + n + 6, 0)).toBeLessThanOrEqual(1000);
  });
  it('makes no batch of nothing', () => {
    expect(batchBySize([], () => 1, 10)).toEqual([]);
  });
});

test('messageSizer measures the protobuf encoding', () => {
  const size = messageSizer('KeyValue');
  expect(size({ key: 'a', value: Buffer.from('xyz') })).toBe(2 + 1 + 2 + 3);
});

interface KV {
  key: string;
  value: Buffer;
}
/** KeyValues of 49 bytes each on the wire (43 + tag and length): two fit a 100-byte message */
const kvs = (n: number): KV[] =>
  Array.from({ length: n }, (_, i) => ({ key: String(i), value: Buffer.alloc(38) }));
const keys = (call: FakeCall) => call.written.map((m) => m.items.map((kv) => kv.key));

class FakeCall extends EventEmitter {
  written: { items: KV[] }[] = [];
  ended = false;
  full = false;
  constructor(readonly request: object) {
    super();
  }
  write(msg: { items: KV[] }): boolean {
    this.written.push(msg);
    return !this.full;
  }
  end(): void {
    this.ended = true;
  }
}

const log = createLogger('error');
const spec = (items: KV[]) => ({
  name: 'T',
  list: async () => items,
  itemType: 'KeyValue',
  wrap: (b: KV[]) => ({ items: b }),
  maxBytes: 100,
});
const flush = () => new Promise((r) => setImmediate(r));

test('writes every batch then ends; waits for drain when the client is slow', async () => {
  const call = new FakeCall({});
  call.full = true;
  const s = streamList(log, spec(kvs(5)));
  (s as unknown as (c: unknown) => void)(call);
  await flush();
  expect(call.written.length).toBe(1);
  call.emit('drain');
  await flush();
  expect(call.written.length).toBe(2);
  call.full = false;
  call.emit('drain');
  await flush();
  expect(call.ended).toBe(true);
  expect(keys(call)).toEqual([['0', '1'], ['2', '3'], ['4']]);
});

test('stops writing when the client cancels', async () => {
  const call = new FakeCall({});
  call.full = true;
  const s = streamList(log, spec(kvs(6)));
  (s as unknown as (c: unknown) => void)(call);
  await flush();
  expect(call.written.length).toBe(1);
  call.emit('cancelled');
  await flush();
  await flush();
  expect(call.written.length).toBe(1);
  expect(call.ended).toBe(false);
});

test('a failing list ends the call with its status', async () => {
  const call = new FakeCall({});
  const errors: unknown[] = [];
  call.on('error', (e) => errors.push(e));
  const s = streamList(log, {
    ...spec([]),
    list: async () => {
      throw new Error('boom');
    },
  });
  (s as unknown as (c: unknown) => void)(call);
  await flush();
  expect(errors).toEqual([expect.objectContaining({ code: 13, details: 'boom' })]);
});
