// The streaming server: the HTTP(S) endpoint behind the URLs that the CRI Exec, Attach and
// PortForward RPCs return. Each URL carries a single-use token (tokens.ts) standing for a request
// already validated by the RPC; the client upgrades the connection to SPDY/3.1 (kubelet,
// crictl, berthctl by default) or to a WebSocket, and the session runs the exec (exec.ts),
// attach (attach.ts) or port forwarding (portforward.ts). Nothing is served without a token:
// unknown, used and expired tokens, and any other path, are 404.
import * as http from 'node:http';
import * as https from 'node:https';
import { promises as fsp, readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import type { AddressInfo, Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { Logger } from '../log';
import {
  EXEC_SPDY_PROTOCOLS,
  EXEC_WS_PROTOCOLS,
  HEADER_PROTOCOL_VERSION,
  PORTFORWARD_SPDY_PROTOCOLS,
  PORTFORWARD_WS_PROTOCOLS,
  negotiateStreamProtocol,
  parsePortsQuery,
  selectWsProtocol,
  wsProtocolInfo,
} from './channel';
import type { ExecBackend } from './spdy-session';
import type * as Sessions from './sessions';
import { TokenCache } from './tokens';
import type { AttachTarget, ExecTarget, PortForwardTarget, StreamTarget, StreamingOptions } from './types';

let sessionsModule: typeof Sessions | undefined;

/** The session code (SPDY, WebSocket, exec, attach, port forwarding), loaded on the first upgrade. */
function sessions(): typeof Sessions {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  sessionsModule ??= require('./sessions') as typeof Sessions;
  return sessionsModule;
}

const DEFAULT_STREAM_CREATION_TIMEOUT_MS = 30_000;
/** Receive windows we advertise: large enough for full-speed copies on a local link. */
const SPDY_STREAM_WINDOW = 1024 * 1024;
const SPDY_SESSION_WINDOW = 16 * 1024 * 1024;

const PATHS: Record<StreamTarget['kind'], string> = {
  exec: 'exec',
  attach: 'attach',
  portforward: 'portforward',
};

export class StreamingServer {
  private readonly tokens: TokenCache<StreamTarget>;
  private readonly log: Logger;
  private server: http.Server | undefined;
  private readonly sockets = new Set<Duplex>();
  private base = '';

  constructor(private readonly opts: StreamingOptions) {
    this.tokens = new TokenCache(opts.tokenTtlMs);
    this.log = opts.log;
  }

  /** The server's base URL (http(s)://host:port), once started. */
  get baseUrl(): string {
    return this.base;
  }

  async start(): Promise<void> {
    await fsp.mkdir(this.opts.workDir, { recursive: true, mode: 0o700 });
    for (const f of await fsp.readdir(this.opts.workDir))
      await fsp.rm(`${this.opts.workDir}/${f}`, { force: true });
    const tls = Boolean(this.opts.tlsCert && this.opts.tlsKey);
    const server = tls
      ? https.createServer({ cert: readFileSync(this.opts.tlsCert!), key: readFileSync(this.opts.tlsKey!) })
      : http.createServer();
    server.on('request', (req, res) => this.onRequest(req, res));
    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    server.on('connection', (s: Duplex) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.opts.port, this.opts.address, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    const addr = server.address() as AddressInfo;
    this.base = `${tls ? 'https' : 'http'}://${urlHost(addr.address)}:${addr.port}`;
    this.log.info('streaming server listening', { url: this.base });
  }

  /** Stops listening and ends every session (their processes are killed by the sessions). */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
  }

  /** A URL for an exec the caller has validated. */
  requestExec(t: Omit<ExecTarget, 'kind'>): string {
    return this.issue({ kind: 'exec', ...t });
  }

  requestAttach(t: Omit<AttachTarget, 'kind'>): string {
    return this.issue({ kind: 'attach', ...t });
  }

  requestPortForward(t: Omit<PortForwardTarget, 'kind'>): string {
    return this.issue({ kind: 'portforward', ...t });
  }

  private issue(t: StreamTarget): string {
    if (!this.server) throw new Error('streaming server is not running');
    return `${this.base}/${PATHS[t.kind]}/${this.tokens.insert(t)}`;
  }

  /** The target for a request path, consuming its token; undefined for 404. */
  private take(url: string | undefined): { target: StreamTarget; query: URLSearchParams } | undefined {
    const u = new URL(url ?? '/', 'http://x');
    const m = /^\/(exec|attach|portforward)\/([A-Za-z0-9_-]{1,64})$/.exec(u.pathname);
    if (!m) return undefined;
    const target = this.tokens.consume(m[2]);
    if (!target || PATHS[target.kind] !== m[1]) return undefined;
    return { target, query: u.searchParams };
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const found = this.take(req.url);
    res.statusCode = found ? 400 : 404;
    res.setHeader('Content-Type', 'text/plain');
    res.end(found ? 'Upgrade request required\n' : 'Not found\n');
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => undefined);
    const found = this.take(req.url);
    if (!found) return refuse(socket, 404, 'Not found');
    const upgrade = (req.headers.upgrade ?? '').toLowerCase();
    const idleMs = this.opts.idleTimeoutSeconds * 1000;
    (socket as Socket).setTimeout(idleMs, () => socket.destroy());
    if (upgrade === 'spdy/3.1') return this.upgradeSpdy(req, socket, head, found.target);
    if (upgrade === 'websocket') return this.upgradeWs(req, socket, head, found.target, found.query);
    refuse(socket, 400, `unsupported upgrade ${JSON.stringify(upgrade.slice(0, 40))}`);
  }

  private upgradeSpdy(req: http.IncomingMessage, socket: Duplex, head: Buffer, target: StreamTarget): void {
    const protocols = target.kind === 'portforward' ? PORTFORWARD_SPDY_PROTOCOLS : EXEC_SPDY_PROTOCOLS;
    const neg = negotiateStreamProtocol(req.headers[HEADER_PROTOCOL_VERSION.toLowerCase()], protocols);
    if (!neg.ok) return refuse(socket, neg.status, neg.message, neg.responseHeaders);
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n' +
        `${HEADER_PROTOCOL_VERSION}: ${neg.protocol}\r\n\r\n`,
    );
    const { SpdyConnection, serveSpdyExec, serveSpdyPortForward } = sessions();
    const conn = new SpdyConnection(socket, {
      mode: 'server',
      head,
      initialWindowSize: SPDY_STREAM_WINDOW,
      sessionWindowSize: SPDY_SESSION_WINDOW,
    });
    const log = this.log.child({ session: target.kind });
    const done =
      target.kind === 'portforward'
        ? serveSpdyPortForward(conn, target, log)
        : serveSpdyExec(
            conn,
            neg.protocol,
            target,
            this.backend(target),
            this.opts.streamCreationTimeoutMs ?? DEFAULT_STREAM_CREATION_TIMEOUT_MS,
            log,
          );
    void done.catch((err: Error) => log.warn('streaming session error', { error: err.message }));
  }

  private upgradeWs(
    req: http.IncomingMessage,
    socket: Duplex,
    head: Buffer,
    target: StreamTarget,
    query: URLSearchParams,
  ): void {
    const offered = (req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    const supported = target.kind === 'portforward' ? PORTFORWARD_WS_PROTOCOLS : EXEC_WS_PROTOCOLS;
    const chosen = selectWsProtocol(offered, supported);
    if (chosen === null)
      return refuse(socket, 400, `unsupported websocket subprotocols; accepted: ${supported.join(', ')}`);
    let ports: number[] = [];
    if (target.kind === 'portforward') {
      try {
        ports = target.ports.length > 0 ? target.ports : parsePortsQuery(query.getAll('ports'));
      } catch (err) {
        return refuse(socket, 400, (err as Error).message);
      }
    }
    const log = this.log.child({ session: target.kind, transport: 'websocket' });
    const { WebSocketServer, serveWsExec, serveWsPortForward } = sessions();
    // ws picks the protocol from handleProtocols, so hand it the one we chose.
    const wss = new WebSocketServer({
      noServer: true,
      perMessageDeflate: false,
      maxPayload: 16 * 1024 * 1024,
      handleProtocols: () => chosen || false,
    });
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      wss.close();
      const proto = wsProtocolInfo(chosen);
      const done =
        target.kind === 'portforward'
          ? serveWsPortForward(ws, proto, target, ports, log)
          : serveWsExec(ws, proto, target, this.backend(target), log);
      void done.catch((err: Error) => log.warn('streaming session error', { error: err.message }));
    });
  }

  private backend(target: ExecTarget | AttachTarget): ExecBackend {
    const log = this.log;
    const { runExec, runAttach } = sessions();
    if (target.kind === 'exec') return (io) => runExec(target, io, this.opts.workDir, log);
    return (io) => runAttach(target, io, log);
  }
}

function refuse(
  socket: Duplex,
  status: number,
  message: string,
  headers: Record<string, string[]> = {},
): void {
  const extra = Object.entries(headers)
    .flatMap(([k, vs]) => vs.map((v) => `${k}: ${v}\r\n`))
    .join('');
  const body = `${message}\n`;
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? ''}\r\nContent-Type: text/plain\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n${extra}\r\n${body}`,
  );
}

/** Host part of a URL for a listening address; an unspecified address is reached on loopback. */
export function urlHost(address: string): string {
  if (address === '0.0.0.0' || address === '') return '127.0.0.1';
  if (address === '::') return '[::1]';
  return address.includes(':') ? `[${address}]` : address;
}
