// The streaming twins of the List RPCs (StreamPodSandboxes, StreamContainers, StreamImages,
// StreamContainerStats, StreamPodSandboxStats, StreamPodSandboxMetrics): the List handler's items,
// same filters, sent as a server stream in batches whose encoded size stays at or below
// STREAM_BATCH_BYTES (1 MiB, a quarter of gRPC's 4 MiB default receive limit), so a node with many
// objects or large labels never produces one message a client cannot take. A batch is written only
// when the previous one drained (the client's flow control) and the stream stops as soon as the
// client cancels. A single item larger than the budget goes alone in its batch.
import type * as grpc from '@grpc/grpc-js';
import { criRoot } from '../../api/proto-root';
import { Status } from '../errors';
import type { Logger } from '../log';
import { CallContext, toServiceError, type RpcContext } from './rpc';

export const STREAM_BATCH_BYTES = 1024 * 1024;

/** Bytes a repeated message field adds per item beyond the item's own encoding: tag + length varint. */
const PER_ITEM_OVERHEAD = 6;

/** Splits items, in order, into batches whose summed sizes (plus per-item overhead) stay within maxBytes. */
export function batchBySize<T>(items: T[], sizeOf: (item: T) => number, maxBytes: number): T[][] {
  const batches: T[][] = [];
  let cur: T[] = [];
  let curBytes = 0;
  for (const item of items) {
    const n = sizeOf(item) + PER_ITEM_OVERHEAD;
    if (cur.length > 0 && curBytes + n > maxBytes) {
      batches.push(cur);
      cur = [];
      curBytes = 0;
    }
    cur.push(item);
    curBytes += n;
  }
  if (cur.length > 0) batches.push(cur);
  return batches;
}

/** The encoded size of an object (as the handlers build them) of CRI message type `typeName`. */
export function messageSizer(typeName: string): (item: unknown) => number {
  const type = criRoot().lookupType(`runtime.v1.${typeName}`);
  return (item) => type.encode(type.fromObject(item as Record<string, unknown>)).finish().length;
}

/** The part of a grpc server-writable call the stream uses. */
export interface ListStreamCall<Req, Res> {
  request: Req;
  write(msg: Res): boolean;
  end(): void;
  emit(event: 'error', err: Partial<grpc.StatusObject>): boolean;
  on(event: 'cancelled', fn: () => void): unknown;
  once(event: 'drain', fn: () => void): unknown;
  removeListener(event: 'drain', fn: () => void): unknown;
}

export interface StreamListSpec<Req, Item, Res> {
  /** the RPC's name, for the log */
  name: string;
  /** the items, as the List twin lists them for the same filter */
  list(req: Req, ctx: RpcContext): Promise<Item[]>;
  /** the CRI message type of one item, e.g. 'PodSandbox' */
  itemType: string;
  /** the response message for one batch */
  wrap(items: Item[]): Res;
  /** per-message budget (tests may lower it) */
  maxBytes?: number;
}

/** A server-streaming handler that sends a List's items in size-bounded batches. */
export function streamList<Req, Item, Res>(
  log: Logger,
  spec: StreamListSpec<Req, Item, Res>,
): grpc.handleServerStreamingCall<Req, Res> {
  const maxBytes = spec.maxBytes ?? STREAM_BATCH_BYTES;
  let sizeOf: ((item: unknown) => number) | undefined;
  return (grpcCall) => {
    const call = grpcCall as unknown as ListStreamCall<Req, Res>;
    const ctx = new CallContext();
    call.on('cancelled', () => ctx.cancel());
    const signal = ctx.signal;
    const drained = (): Promise<void> =>
      new Promise((resolve) => {
        const done = (): void => {
          signal.removeEventListener('abort', done);
          call.removeListener('drain', done);
          resolve();
        };
        call.once('drain', done);
        signal.addEventListener('abort', done);
      });
    const run = async (): Promise<number> => {
      const items = await spec.list(call.request, ctx);
      sizeOf ??= messageSizer(spec.itemType);
      const batches = batchBySize(items, sizeOf as (item: Item) => number, maxBytes);
      let sent = 0;
      for (const batch of batches) {
        if (signal.aborted) return sent;
        sent++;
        if (!call.write(spec.wrap(batch))) await drained();
      }
      if (!signal.aborted) {
        ctx.answered();
        call.end();
      }
      return sent;
    };
    run().then(
      (sent) =>
        log.debug('rpc done', { rpc: spec.name, messages: sent, cancelled: signal.aborted || undefined }),
      (err: unknown) => {
        if (signal.aborted) return;
        const se = toServiceError(err);
        const level = se.code === Status.INTERNAL || se.code === Status.UNKNOWN ? 'error' : 'info';
        log.log(level, 'rpc failed', {
          rpc: spec.name,
          code: Status[se.code ?? Status.UNKNOWN],
          error: se.details,
        });
        call.emit('error', se);
      },
    );
  };
}
