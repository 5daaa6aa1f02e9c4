// The client side of the streaming protocols (what kubectl/crictl do), used by berthctl and the
// tests: exec/attach over SPDY/3.1 or WebSocket, and port-forward connections.
import * as http from 'node:http';
import * as https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex, Readable, Writable } from 'node:stream';
import { WebSocket } from 'ws';
import {
  EXEC_SPDY_PROTOCOLS,
  HEADER_PORT,
  HEADER_PROTOCOL_VERSION,
  HEADER_REQUEST_ID,
  HEADER_STREAM_TYPE,
  PORTFORWARD_SPDY_PROTOCOLS,
  Channel,
  WsChannelMux,
  decodePortPrefix,
  encodeResize,
  wsProtocolInfo,
  type K8sStatus,
  type TerminalSize,
} from './channel';
import { SpdyConnection, type SpdyStream } from './spdy-conn';

export type Transport = 'spdy' | 'websocket';

export interface ExecClientOptions {
  transport?: Transport;
  stdin?: Readable;
  stdout?: Writable;
  stderr?: Writable;
  tty?: boolean;
  /** Terminal size sent right after the streams open (tty only). */
  initialSize?: TerminalSize;
  /** Called once with a function that sends later terminal sizes (tty only). */
  onResize?: (send: (size: TerminalSize) => void) => void;
  /** Accept any TLS certificate (the streaming server's is often self-signed). */
  insecure?: boolean;
  /** WebSocket subprotocols to offer (default: v5, v4). */
  wsProtocols?: string[];
}

export interface ExecResult {
  exitCode: number;
  status: K8sStatus | undefined;
}

/** Reads the exit code out of the error stream's metav1.Status (v4+) or text (older). */
export function exitFromStatus(text: string): ExecResult {
  if (text.trim() === '') return { exitCode: 0, status: undefined };
  let status: K8sStatus;
  try {
    status = JSON.parse(text) as K8sStatus;
  } catch {
    throw new Error(`exec failed: ${text.trim().slice(0, 500)}`);
  }
  if (status.status === 'Success') return { exitCode: 0, status };
  if (status.reason === 'NonZeroExitCode') {
    const cause = status.details?.causes.find((c) => c.reason === 'ExitCode');
    const n = Number(cause?.message);
    if (Number.isInteger(n)) return { exitCode: n, status };
  }
  throw new Error(status.message ?? 'exec failed');
}

/** HTTP upgrade to SPDY/3.1 offering protocols; resolves with the connection and the chosen one. */
export function spdyUpgrade(
  url: string,
  protocols: readonly string[],
  insecure = false,
): Promise<{ conn: SpdyConnection; protocol: string }> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(u, {
      method: 'POST',
      headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1', [HEADER_PROTOCOL_VERSION]: [...protocols] },
      rejectUnauthorized: !insecure,
    });
    req.on('upgrade', (res: http.IncomingMessage, socket: Socket, head: Buffer) => {
      const protocol = String(res.headers[HEADER_PROTOCOL_VERSION.toLowerCase()] ?? '');
      socket.setNoDelay(true);
      const conn = new SpdyConnection(socket, {
        mode: 'client',
        head,
        initialWindowSize: 1024 * 1024,
        sessionWindowSize: 16 * 1024 * 1024,
      });
      resolve({ conn, protocol });
    });
    req.on('response', (res: http.IncomingMessage) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => reject(new UpgradeError(res.statusCode ?? 0, body.trim())));
    });
    req.on('error', reject);
    req.end();
  });
}

export class UpgradeError extends Error {
  constructor(
    readonly statusCode: number,
    body: string,
  ) {
    super(`streaming server answered ${statusCode}${body ? `: ${body.slice(0, 300)}` : ''}`);
  }
}

function collect(r: Readable): Promise<string> {
  return new Promise((resolve) => {
    let s = '';
    r.on('data', (c: Buffer) => (s += c.toString()));
    r.on('end', () => resolve(s));
    r.on('close', () => resolve(s));
    r.on('error', () => resolve(s));
  });
}

function pipeOut(from: Readable, to: Writable | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (to) from.pipe(to, { end: false });
    else from.resume();
    from.on('end', resolve);
    from.on('close', resolve);
    from.on('error', () => resolve());
  });
}

/** Runs an exec or attach session at url (from the Exec/Attach RPC) and resolves with its exit. */
export function streamExec(url: string, o: ExecClientOptions): Promise<ExecResult> {
  return o.transport === 'websocket' ? execWs(url, o) : execSpdy(url, o);
}

async function execSpdy(url: string, o: ExecClientOptions): Promise<ExecResult> {
  const { conn } = await spdyUpgrade(url, EXEC_SPDY_PROTOCOLS, o.insecure);
  const open = (type: string, fin: boolean): SpdyStream => {
    const s = conn.openStream({ [HEADER_STREAM_TYPE]: type }, { fin });
    s.on('error', () => undefined);
    return s;
  };
  const closed = new Promise<void>((resolve) => conn.on('close', () => resolve()));
  const errStream = open('error', true);
  const errText = collect(errStream);
  const stdin = o.stdin ? open('stdin', false) : undefined;
  const outs: Promise<void>[] = [];
  if (o.stdout) outs.push(pipeOut(open('stdout', true), o.stdout));
  if (o.stderr && !o.tty) outs.push(pipeOut(open('stderr', true), o.stderr));
  if (o.tty) {
    const resize = open('resize', false);
    if (o.initialSize) resize.write(encodeResize(o.initialSize));
    o.onResize?.((s) => {
      if (!resize.destroyed && !resize.writableEnded) resize.write(encodeResize(s));
    });
  }
  if (stdin && o.stdin) o.stdin.pipe(stdin);
  const text = await Promise.race([errText, closed.then(() => errText)]);
  await Promise.race([Promise.all(outs), closed]);
  if (stdin && o.stdin) o.stdin.unpipe(stdin);
  conn.close({ resetStreams: true });
  if (errStream.aborted && text === '' && !errStream.readableEnded)
    throw new Error('streaming connection lost before the exit status arrived');
  return exitFromStatus(text);
}

function wsUrl(url: string): string {
  return url.replace(/^http/, 'ws');
}

async function execWs(url: string, o: ExecClientOptions): Promise<ExecResult> {
  const ws = new WebSocket(wsUrl(url), o.wsProtocols ?? ['v5.channel.k8s.io', 'v4.channel.k8s.io'], {
    rejectUnauthorized: !o.insecure,
    perMessageDeflate: false,
  });
  const { mux, errText, outs } = await openWs(ws, () => {
    const m = new WsChannelMux(ws, wsProtocolInfo(ws.protocol));
    const outputs: Promise<void>[] = [];
    if (o.stdout) outputs.push(pipeOut(m.channel(Channel.STDOUT), o.stdout));
    if (o.stderr && !o.tty) outputs.push(pipeOut(m.channel(Channel.STDERR), o.stderr));
    return { mux: m, errText: collect(m.channel(Channel.ERROR)), outs: outputs };
  });
  const stdin = o.stdin ? mux.channel(Channel.STDIN) : undefined;
  if (o.tty) {
    const resize = mux.channel(Channel.RESIZE);
    if (o.initialSize) resize.write(encodeResize(o.initialSize));
    o.onResize?.((s) => resize.write(encodeResize(s)));
  }
  if (stdin && o.stdin) o.stdin.pipe(stdin);
  const closed = new Promise<void>((resolve) => mux.on('close', () => resolve()));
  await closed;
  const text = await errText;
  await Promise.all(outs);
  if (stdin && o.stdin) o.stdin.unpipe(stdin);
  return exitFromStatus(text);
}

/**
 * Resolves once the WebSocket is open, with what setup (run synchronously in the 'open' event)
 * returns: channels must exist before the first message is parsed, or it would be dropped.
 */
function openWs<T>(ws: WebSocket, setup: () => T): Promise<T> {
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(setup()));
    ws.once('unexpected-response', (_req: http.ClientRequest, res: http.IncomingMessage) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => reject(new UpgradeError(res.statusCode ?? 0, body.trim())));
    });
    ws.once('error', reject);
  });
}

/** Port-forward connections over one streaming URL. */
export interface PortForwarder {
  /** Opens a connection to port in the pod; its errors (from the error stream) destroy it. */
  connect(port: number): Promise<Duplex>;
  close(): void;
}

/**
 * Turns a failure reported on a forwarded connection's error stream into an 'error' on its data
 * stream. The server sends the message before it ends the data stream, so by the time the data
 * ends, any message has arrived; one arriving later (while data still flows) destroys the data.
 */
function failOnError(data: Duplex, error: Readable): void {
  let msg = '';
  error.on('data', (c: Buffer) => (msg += c.toString()));
  error.on('end', () => {
    if (msg && !data.destroyed) data.destroy(new Error(msg));
  });
  const push = data.push.bind(data);
  data.push = (chunk: unknown, enc?: BufferEncoding): boolean => {
    if (chunk === null && msg) {
      data.destroy(new Error(msg));
      return false;
    }
    return push(chunk, enc);
  };
}

/** SPDY: one connection, a data+error stream pair per forwarded connection. */
export async function portForwardSpdy(url: string, insecure = false): Promise<PortForwarder> {
  const { conn } = await spdyUpgrade(url, PORTFORWARD_SPDY_PROTOCOLS, insecure);
  let next = 0;
  return {
    async connect(port: number): Promise<Duplex> {
      const requestId = String(next++);
      const h = { [HEADER_PORT]: String(port), [HEADER_REQUEST_ID]: requestId };
      const error = conn.openStream({ ...h, [HEADER_STREAM_TYPE]: 'error' }, { fin: true });
      const data = conn.openStream({ ...h, [HEADER_STREAM_TYPE]: 'data' });
      error.on('error', () => undefined);
      failOnError(data, error);
      // A refusal can arrive with the reply itself (the same read): the data stream is then
      // destroyed before the caller could listen, so keep that error and reject with it.
      let early: Error | undefined;
      const onEarly = (e: Error): void => {
        early = e;
      };
      data.on('error', onEarly);
      try {
        await data.waitReply();
      } finally {
        data.off('error', onEarly);
      }
      if (early) throw early;
      return data;
    },
    close: () => conn.close({ resetStreams: true }),
  };
}

/**
 * WebSocket: one WebSocket per forwarded connection (the protocol has one connection per port per
 * WebSocket), so each connection needs its own URL (tokens are single-use): `urlFor` asks for one.
 */
export function portForwardWs(urlFor: () => Promise<string>, insecure = false): PortForwarder {
  const sockets = new Set<WebSocket>();
  return {
    async connect(port: number): Promise<Duplex> {
      const u = new URL(wsUrl(await urlFor()));
      u.searchParams.set('ports', String(port));
      const ws = new WebSocket(u, ['v4.channel.k8s.io'], {
        rejectUnauthorized: !insecure,
        perMessageDeflate: false,
      });
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      const { mux, stripped } = await openWs(ws, () => {
        const m = new WsChannelMux(ws, wsProtocolInfo(ws.protocol));
        // Each channel first carries the port number; strip it.
        const d = stripPrefix(m.channel(0));
        failOnError(d, stripPrefix(m.channel(1)));
        return { mux: m, stripped: d };
      });
      // No half-close in v4: ending our side closes the WebSocket.
      stripped.on('finish', () => mux.close(1000));
      stripped.on('close', () => mux.close(1000));
      return stripped;

      function stripPrefix(ch: Duplex): Duplex {
        let need = 2;
        const orig = ch.push.bind(ch);
        ch.push = (chunk: Buffer | null, enc?: BufferEncoding): boolean => {
          if (chunk === null || need === 0) return orig(chunk, enc);
          const take = Math.min(need, chunk.length);
          if (need === 2 && chunk.length >= 2) decodePortPrefix(chunk);
          need -= take;
          return chunk.length > take ? orig(chunk.subarray(take), enc) : true;
        };
        return ch;
      }
    },
    close: () => {
      for (const ws of sockets) ws.close();
    },
  };
}
