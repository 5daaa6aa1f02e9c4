import { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import { BerthError, Status } from '../errors';
import { silentLogger } from '../log';
import { CallContext, unary, type Handler } from './rpc';

test('a call context makes its signal on first read, aborted already when the client left before', () => {
  const early = new CallContext();
  early.cancel();
  const s = early.signal;
  expect(s.aborted).toBe(true);
  expect((s.reason as Error).message).toBe('the client cancelled the call');
  expect(early.signal).toBe(s); // one signal per call

  const late = new CallContext();
  const seen: string[] = [];
  late.signal.addEventListener('abort', () => seen.push('abort'));
  expect(late.signal.aborted).toBe(false);
  late.cancel();
  late.cancel(); // grpc-js may report it more than once: one abort
  expect(seen).toEqual(['abort']);
  expect(late.signal.aborted).toBe(true);

  // grpc-js reports every answered call's stream close as 'cancelled': nothing fires then
  const answered = new CallContext();
  answered.signal.addEventListener('abort', () => seen.push('late abort'));
  answered.answered();
  answered.cancel();
  expect(answered.signal.aborted).toBe(false);
  expect(seen).toEqual(['abort']);
});

/** Runs a unary handler on a stand-in for grpc-js's call; `cancel` emits its 'cancelled'. */
function callOnce<Res>(fn: Handler<{ n: number }, Res>) {
  const call = Object.assign(new EventEmitter(), { request: { n: 1 } });
  const answer = new Promise<{ err: Partial<grpc.ServiceError> | null; res: Res | null }>((resolve) =>
    unary(
      silentLogger(),
      'Test',
      fn,
    )(call as unknown as grpc.ServerUnaryCall<{ n: number }, Res>, (err, res) =>
      resolve({ err: err as Partial<grpc.ServiceError> | null, res: res ?? null }),
    ),
  );
  return { answer, cancel: () => call.emit('cancelled') };
}

test('unary answers the handler result, its BerthError code, and INTERNAL for anything else', async () => {
  expect(await callOnce(async (req) => ({ doubled: req.n * 2 })).answer).toEqual({
    err: null,
    res: { doubled: 2 },
  });
  const refused = await callOnce(async () => {
    throw new BerthError(Status.NOT_FOUND, 'no such thing');
  }).answer;
  expect(refused.err).toMatchObject({ code: Status.NOT_FOUND, details: 'no such thing' });
  const bug = await callOnce(async () => {
    throw new TypeError('oops');
  }).answer;
  expect(bug.err).toMatchObject({ code: Status.INTERNAL, details: 'oops' });
});

test("unary's signal fires when the client cancels, for a handler that reads it before or after", async () => {
  const before = callOnce(
    (_req, ctx) =>
      new Promise<string>((resolve) => ctx.signal.addEventListener('abort', () => resolve('stopped'))),
  );
  await new Promise((r) => setImmediate(r));
  before.cancel();
  expect((await before.answer).res).toBe('stopped');

  let go!: () => void;
  const gate = new Promise<void>((r) => (go = r));
  const after = callOnce(async (_req, ctx) => {
    await gate;
    return ctx.signal.aborted ? 'saw the cancel' : 'missed it';
  });
  after.cancel();
  go();
  expect((await after.answer).res).toBe('saw the cancel');
});
