// The glue between grpc-js and Berth's handlers: each handler is an async function of the
// decoded request. Thrown BerthErrors become their status; anything else becomes INTERNAL with
// the message logged (a handler bug must never take the daemon down).
import * as grpc from '@grpc/grpc-js';
import { BerthError, errMessage, Status } from '../errors';
import type { Logger } from '../log';
import { metrics, secondsSince } from '../metrics/metrics';
import { DecodeFailure } from './decode';

/** What a handler knows of its call besides the request: a signal that fires when the client goes away. */
export interface RpcContext {
  signal: AbortSignal;
}

export type Handler<Req, Res> = (req: Req, ctx: RpcContext) => Promise<Res>;

export function toServiceError(err: unknown): Partial<grpc.ServiceError> {
  if (err instanceof BerthError) return { code: err.code, details: err.message, message: err.message };
  return { code: Status.INTERNAL, details: errMessage(err), message: errMessage(err) };
}

export function unary<Req, Res>(
  log: Logger,
  name: string,
  fn: Handler<Req, Res>,
): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    if ((call.request as unknown) instanceof DecodeFailure) {
      const msg = (call.request as unknown as DecodeFailure).message;
      log.info('rpc failed', { rpc: name, code: 'INVALID_ARGUMENT', error: msg });
      metrics.rpc(name, 'INVALID_ARGUMENT', 0);
      callback({ code: Status.INVALID_ARGUMENT, details: msg, message: msg }, null);
      return;
    }
    const started = process.hrtime.bigint();
    const ac = new AbortController();
    call.on('cancelled', () => ac.abort(new Error('the client cancelled the call')));
    Promise.resolve()
      .then(() => fn(call.request, { signal: ac.signal }))
      .then(
        (res) => {
          log.debug('rpc done', { rpc: name, ms: Number(process.hrtime.bigint() - started) / 1e6 });
          metrics.rpc(name, 'OK', secondsSince(started));
          callback(null, res);
        },
        (err: unknown) => {
          const se = toServiceError(err);
          const level = se.code === Status.INTERNAL || se.code === Status.UNKNOWN ? 'error' : 'info';
          log.log(level, 'rpc failed', {
            rpc: name,
            code: Status[se.code ?? Status.UNKNOWN],
            error: se.details,
          });
          metrics.rpc(name, Status[se.code ?? Status.UNKNOWN], secondsSince(started));
          callback(se, null);
        },
      );
  };
}

/** A server-streaming handler that answers INVALID_ARGUMENT to a request that did not decode. */
export function decodedStream<Req, Res>(
  log: Logger,
  name: string,
  fn: grpc.handleServerStreamingCall<Req, Res>,
): grpc.handleServerStreamingCall<Req, Res> {
  return (call) => {
    if ((call.request as unknown) instanceof DecodeFailure) {
      const msg = (call.request as unknown as DecodeFailure).message;
      log.info('rpc failed', { rpc: name, code: 'INVALID_ARGUMENT', error: msg });
      call.emit('error', { code: Status.INVALID_ARGUMENT, details: msg, message: msg });
      return;
    }
    fn(call);
  };
}
