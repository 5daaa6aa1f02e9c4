// The event hub over a real gRPC stream on a unix socket: fan-out, backpressure, the bounded
// per-subscriber queue and client cancel.
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadCri } from '../../api/proto';
import type { ContainerEventResponse, ContainerEventResponse__Output } from '../../api/generated';
import type { RuntimeServiceClient } from '../../api/generated/runtime/v1/RuntimeService';
import type { ContainerEvent } from '../container/service';
import { silentLogger } from '../log';
import { ContainerEventHub } from './container_events';

let dir: string;
let server: grpc.Server;
let client: RuntimeServiceClient;
// a second connection: a stalled stream holds back its whole HTTP/2 connection's window
let client2: RuntimeServiceClient;
const source = new EventEmitter();
// a fat message (as with a pod of many containers), so flow control kicks in early
const pad = 'x'.repeat(2000);
const hub = new ContainerEventHub(
  [source],
  (e: ContainerEvent): ContainerEventResponse => ({
    container_id: e.containerId,
    container_event_type: e.type,
    created_at: e.createdAt,
    containers_statuses: [{ id: e.containerId, message: pad }],
  }),
  silentLogger(),
  100,
);

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-ev-'));
  const cri = loadCri();
  server = new grpc.Server();
  server.addService(cri.runtime.v1.RuntimeService.service, {
    GetContainerEvents: (call: grpc.ServerWritableStream<unknown, ContainerEventResponse>) => {
      const remove = hub.subscribe(call);
      call.on('cancelled', remove);
      call.on('finish', remove);
    },
  });
  const sock = `unix:${path.join(dir, 's.sock')}`;
  await new Promise<void>((res, rej) =>
    server.bindAsync(sock, grpc.ServerCredentials.createInsecure(), (e) => (e ? rej(e) : res())),
  );
  client = new cri.runtime.v1.RuntimeService(sock, grpc.credentials.createInsecure());
  client2 = new cri.runtime.v1.RuntimeService(sock, grpc.credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1,
  });
});

afterAll(() => {
  client.close();
  client2.close();
  server.forceShutdown();
  fs.rmSync(dir, { recursive: true, force: true });
});

// events come from async work in the daemon, a few per millisecond at most
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 2));

/**
 * Emits n events. `received`, when given, is how many a reader that keeps up has got: emitting
 * waits for it to be within half the hub's limit, as a real reader keeps pace with the daemon's
 * events (on a loaded machine this process can otherwise emit faster than it reads its own stream,
 * and the fast reader would be cut off too).
 */
async function emitMany(n: number, from = 0, received?: () => number): Promise<void> {
  for (let i = from; i < from + n; i++) {
    source.emit('event', {
      type: 'CONTAINER_STARTED_EVENT',
      containerId: `c${i}`,
      podId: 'p',
      createdAt: String(i),
    } satisfies ContainerEvent);
    if (i % 10 === 0) await tick();
    while (received && i - from + 1 - received() > 50) await tick();
  }
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('two readers get every event in order; a stalled one is cut off with RESOURCE_EXHAUSTED', async () => {
  const fast: string[] = [];
  const fastCall = client.GetContainerEvents({});
  fastCall.on('data', (m: ContainerEventResponse__Output) => fast.push(m.container_id));
  fastCall.on('error', () => undefined);

  const slow: string[] = [];
  let slowError: grpc.ServiceError | undefined;
  const slowCall = client2.GetContainerEvents({});
  slowCall.on('data', (m: ContainerEventResponse__Output) => slow.push(m.container_id));
  slowCall.on('error', (e: grpc.ServiceError) => (slowError = e));
  await until(() => hub.size === 2);
  slowCall.pause(); // stops reading: HTTP/2 flow control then stalls the server side

  const N = 3000;
  await emitMany(N, 0, () => fast.length);
  await until(() => fast.length === N);
  expect(fast).toEqual(Array.from({ length: N }, (_, i) => `c${i}`));
  // the stalled reader was dropped, the emitter never waited for it
  await until(() => hub.size === 1);
  slowCall.resume();
  await until(() => slowError !== undefined);
  expect(slowError!.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  expect(slowError!.details).toMatch(/fell more than 100 events behind/);
  // what it did get is an in-order prefix
  expect(slow.length).toBeLessThan(N);
  expect(slow).toEqual(Array.from({ length: slow.length }, (_, i) => `c${i}`));

  fastCall.cancel();
  await until(() => hub.size === 0);
  expect(source.listenerCount('event')).toBe(0);
}, 30_000);

test('a reader that cancels is removed; the hub keeps serving others', async () => {
  const got: string[] = [];
  const a = client.GetContainerEvents({});
  a.on('error', () => undefined);
  const b = client.GetContainerEvents({});
  b.on('data', (m: ContainerEventResponse__Output) => got.push(m.container_id));
  b.on('error', () => undefined);
  await until(() => hub.size === 2);
  a.cancel();
  await until(() => hub.size === 1);
  await emitMany(5, 100);
  await until(() => got.length === 5);
  expect(got).toEqual(['c100', 'c101', 'c102', 'c103', 'c104']);
  b.cancel();
  await until(() => hub.size === 0);
});
