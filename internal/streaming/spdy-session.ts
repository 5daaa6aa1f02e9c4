// Exec/attach and port-forward over an upgraded SPDY/3.1 connection, as kubelet's streaming
// server serves them: the client opens one stream per stdio channel (told apart by the
// `streamtype` header) and, for port-forward, a data+error stream pair per connection (matched
// by `requestid`, the port in `port`).
import type { Logger } from '../log';
import {
  HEADER_PORT,
  HEADER_REQUEST_ID,
  HEADER_STREAM_TYPE,
  encodeErrorStream,
  expectedExecStreams,
} from './channel';
import type { K8sStatus } from './channel';
import { RstStatus } from './spdy-frames';
import type { SpdyConnection, SpdyStream } from './spdy-conn';
import { endOutputs, type SessionIO } from './session-io';
import { forwardConnection } from './portforward';
import type { AttachTarget, ExecTarget, PortForwardTarget } from './types';

export type ExecBackend = (io: SessionIO) => Promise<K8sStatus>;

/** Serves one exec or attach over SPDY; resolves when the connection is gone. */
export function serveSpdyExec(
  conn: SpdyConnection,
  protocol: string,
  target: ExecTarget | AttachTarget,
  run: ExecBackend,
  streamTimeoutMs: number,
  log: Logger,
): Promise<void> {
  const expected = expectedExecStreams(target, protocol);
  const got = new Map<string, SpdyStream>();
  const ac = new AbortController();
  return new Promise<void>((resolve) => {
    conn.on('close', () => {
      ac.abort();
      resolve();
    });
    const timer = setTimeout(() => {
      log.debug('streaming: client did not open its streams in time', { expected, got: [...got.keys()] });
      conn.destroy();
    }, streamTimeoutMs);
    conn.on('stream', (s: SpdyStream) => {
      const type = s.headers[HEADER_STREAM_TYPE] ?? '';
      if (!expected.includes(type as never) || got.has(type)) {
        s.reset(RstStatus.REFUSED_STREAM);
        return;
      }
      got.set(type, s);
      // A stream we only write to: drain whatever the client sends. One we only read: close our side.
      if (type === 'stdin' || type === 'resize') s.end();
      else s.resume();
      s.on('error', () => undefined);
      if (got.size === expected.length) {
        clearTimeout(timer);
        void start();
      }
    });

    const start = async (): Promise<void> => {
      const io: SessionIO = {
        stdin: got.get('stdin'),
        stdout: got.get('stdout'),
        stderr: got.get('stderr'),
        resize: got.get('resize'),
        signal: ac.signal,
      };
      let status: K8sStatus;
      try {
        status = await run(io);
      } catch (err) {
        log.warn('streaming session failed', { error: String(err) });
        conn.destroy();
        return;
      }
      if (ac.signal.aborted) return;
      // all of the output, then the status (endOutputs says why)
      await endOutputs([got.get('stdout'), got.get('stderr')]);
      if (ac.signal.aborted) return;
      const errStream = got.get('error');
      const payload = encodeErrorStream(status, protocol);
      if (errStream && payload) errStream.write(payload);
      errStream?.end();
      // Streams the client writes carry nothing more we want: reset them so the connection can end.
      for (const t of ['stdin', 'resize']) {
        const st = got.get(t);
        if (st && !st.destroyed) st.reset(RstStatus.CANCEL);
      }
      conn.close();
    };
  });
}

/** Serves port-forward over SPDY until the client closes the connection. */
export function serveSpdyPortForward(
  conn: SpdyConnection,
  target: PortForwardTarget,
  log: Logger,
): Promise<void> {
  const pairs = new Map<string, { data?: SpdyStream; error?: SpdyStream }>();
  return new Promise<void>((resolve) => {
    conn.on('close', () => resolve());
    conn.on('stream', (s: SpdyStream) => {
      const type = s.headers[HEADER_STREAM_TYPE];
      const reqId = s.headers[HEADER_REQUEST_ID] ?? '';
      const port = parsePort(s.headers[HEADER_PORT]);
      s.on('error', () => undefined);
      if ((type !== 'data' && type !== 'error') || port === undefined) {
        s.reset(RstStatus.REFUSED_STREAM);
        return;
      }
      const pair = pairs.get(reqId) ?? {};
      if (pair[type]) {
        s.reset(RstStatus.REFUSED_STREAM);
        return;
      }
      pair[type] = s;
      pairs.set(reqId, pair);
      if (type === 'error') s.resume(); // nothing comes from the client on it
      if (pair.data && pair.error) {
        pairs.delete(reqId);
        const data = pair.data;
        const error = pair.error;
        void forwardConnection({
          netnsPath: target.netnsPath,
          port,
          podId: target.podId,
          data,
          error,
          log,
        });
      }
    });
  });
}

function parsePort(v: string | undefined): number | undefined {
  if (v === undefined || !/^\d{1,5}$/.test(v)) return undefined;
  const n = Number(v);
  return n >= 1 && n <= 65535 ? n : undefined;
}
