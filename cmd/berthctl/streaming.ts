// berthctl's streaming commands: exec -i/-t, attach and port-forward. The CRI Exec, Attach and
// PortForward RPCs hand back a URL on the streaming server; these speak SPDY/3.1 (default) or
// WebSocket to it with the same client code kubectl-style tests use (internal/streaming/client).
import * as net from 'node:net';
import { PassThrough, type Readable } from 'node:stream';
import { call, type CriClients } from '../../api/client';
import {
  portForwardSpdy,
  portForwardWs,
  streamExec,
  type PortForwarder,
} from '../../internal/streaming/client';
import type { TerminalSize } from '../../internal/streaming/channel';
import { UsageError, type Out } from './common';
import { parseFlags, transportFlag, type ExecArgs, type Transport } from './flags';
import { resolveContainerId, resolvePodId } from './ids';

/** What a streaming session needs from the process: its stdio (process.* unless a test says so). */
interface Stdio {
  stdin: NodeJS.ReadStream;
  stdout: NodeJS.WriteStream;
  stderr: NodeJS.WriteStream;
}

const processStdio = (): Stdio => ({ stdin: process.stdin, stdout: process.stdout, stderr: process.stderr });

/**
 * A terminal knows no end of input: a remote tty only sees EOF when ^D arrives at the start of a
 * line. When our stdin is a pipe (no local terminal to type ^D), its end becomes that ^D — two if
 * the last line had no newline, since the first one only flushes the partial line.
 */
export function eofAsCtrlD(input: Readable): Readable {
  const out = new PassThrough();
  let last = 0x0a;
  input.on('data', (c: Buffer) => {
    if (c.length) last = c[c.length - 1];
    if (!out.write(c)) input.pause();
  });
  out.on('drain', () => input.resume());
  input.on('end', () => out.write(last === 0x0a ? '\x04' : '\x04\x04'));
  input.on('error', (e) => out.destroy(e));
  return out;
}

function termSize(s: NodeJS.WriteStream): TerminalSize | undefined {
  return s.isTTY && s.columns > 0 && s.rows > 0 ? { width: s.columns, height: s.rows } : undefined;
}

interface SessionOptions {
  transport: Transport;
  stdin: boolean;
  tty: boolean;
}

/**
 * Runs one exec/attach session on the process's terminal: raw mode when -t and stdin is a
 * terminal, the terminal's size first and on every SIGWINCH, stdin piped when -i. Resolves with
 * the remote exit code.
 */
async function session(url: string, o: SessionOptions, io: Stdio = processStdio()): Promise<number> {
  const rawTerminal = o.tty && o.stdin && io.stdin.isTTY === true;
  let input: Readable | undefined;
  if (o.stdin) input = o.tty && !io.stdin.isTTY ? eofAsCtrlD(io.stdin) : io.stdin;
  let stopResize = (): void => undefined;
  if (rawTerminal) io.stdin.setRawMode(true);
  try {
    const res = await streamExec(url, {
      transport: o.transport,
      tty: o.tty,
      stdin: input,
      stdout: io.stdout,
      stderr: o.tty ? undefined : io.stderr,
      // Without a local terminal the remote one still needs a size; 80x24 spares the server
      // from waiting for one.
      initialSize: o.tty ? (termSize(io.stdout) ?? { width: 80, height: 24 }) : undefined,
      onResize: (send) => {
        if (!o.tty || !io.stdout.isTTY) return;
        // Node's 'resize' is SIGWINCH, emitted after it has refreshed columns/rows.
        const onWinch = (): void => {
          const s = termSize(io.stdout);
          if (s) send(s);
        };
        io.stdout.on('resize', onWinch);
        stopResize = () => io.stdout.off('resize', onWinch);
      },
    });
    return res.exitCode;
  } finally {
    stopResize();
    if (rawTerminal) io.stdin.setRawMode(false);
    // stdin (a terminal or a pipe still open) would keep berthctl alive after the session.
    if (o.stdin) io.stdin.destroy();
  }
}

/** exec -i/-t: the Exec RPC, then the session; the command's exit code becomes berthctl's. */
export async function execStream(c: CriClients, a: ExecArgs): Promise<number> {
  const id = await resolveContainerId(c, a.id);
  const { url } = await call(c.runtime, 'Exec', {
    container_id: id,
    cmd: a.cmd,
    tty: a.tty,
    stdin: a.interactive,
    stdout: true,
    stderr: !a.tty,
  });
  return session(url, { transport: a.transport, stdin: a.interactive, tty: a.tty });
}

export interface AttachArgs {
  stdin: boolean;
  tty: boolean;
  transport: Transport;
  id: string;
}

export const ATTACH_USAGE = 'attach [-i|--stdin] [-t|--tty] [--transport spdy|websocket] CONTAINER-ID';

export function parseAttachArgs(argv: string[]): AttachArgs {
  const { values, positionals } = parseFlags(
    argv,
    {
      stdin: { type: 'boolean', short: 'i' },
      tty: { type: 'boolean', short: 't' },
      transport: { type: 'string', default: 'spdy' },
    },
    ATTACH_USAGE,
  );
  if (positionals.length !== 1) throw new UsageError(ATTACH_USAGE);
  return {
    stdin: values.stdin ?? false,
    tty: values.tty ?? false,
    transport: transportFlag(values.transport, ATTACH_USAGE),
    id: positionals[0],
  };
}

/** attach: to the container's main process (-t must match how the container was created). */
export async function attach(c: CriClients, argv: string[]): Promise<number> {
  const a = parseAttachArgs(argv);
  const id = await resolveContainerId(c, a.id);
  const { url } = await call(c.runtime, 'Attach', {
    container_id: id,
    stdin: a.stdin,
    tty: a.tty,
    stdout: true,
    stderr: !a.tty,
  });
  return session(url, { transport: a.transport, stdin: a.stdin, tty: a.tty });
}

export interface PortSpec {
  /** 0: any free port */
  local: number;
  remote: number;
}

export interface PortForwardArgs {
  transport: Transport;
  pod: string;
  ports: PortSpec[];
}

export const PORT_FORWARD_USAGE =
  'port-forward [--transport spdy|websocket] POD-ID [LOCAL:]REMOTE|:REMOTE [...]';

function port(s: string, spec: string): number {
  const n = /^\d{1,5}$/.test(s) ? Number(s) : NaN;
  if (!(n >= 1 && n <= 65535))
    throw new UsageError(`${PORT_FORWARD_USAGE}\nbad port ${JSON.stringify(s)} in ${JSON.stringify(spec)}`);
  return n;
}

/** `8080` (same port both sides), `9000:8080`, or `:8080` (any free local port), as kubectl. */
export function parsePortSpec(spec: string): PortSpec {
  const i = spec.indexOf(':');
  if (i < 0) {
    const p = port(spec, spec);
    return { local: p, remote: p };
  }
  const local = spec.slice(0, i);
  return { local: local === '' ? 0 : port(local, spec), remote: port(spec.slice(i + 1), spec) };
}

export function parsePortForwardArgs(argv: string[]): PortForwardArgs {
  const { values, positionals } = parseFlags(
    argv,
    { transport: { type: 'string', default: 'spdy' } },
    PORT_FORWARD_USAGE,
  );
  if (positionals.length < 2) throw new UsageError(PORT_FORWARD_USAGE);
  const ports = positionals.slice(1).map(parsePortSpec);
  const seen = new Set<number>();
  for (const p of ports) {
    if (p.local !== 0 && seen.has(p.local))
      throw new UsageError(`${PORT_FORWARD_USAGE}\nlocal port ${p.local} given twice`);
    seen.add(p.local);
  }
  return { transport: transportFlag(values.transport, PORT_FORWARD_USAGE), pod: positionals[0], ports };
}

interface Forwarder extends PortForwarder {
  /** Checks the pod can be forwarded to (the RPC; for SPDY also the upgrade) before listening. */
  ready(): Promise<void>;
}

/**
 * One forwarder for the whole run. Over SPDY all connections share one streaming connection; if
 * that one is gone (idle timeout, daemon restart), the next local connection dials a new one.
 */
function forwarder(c: CriClients, podId: string, remotes: number[], transport: Transport): Forwarder {
  const newUrl = async (): Promise<string> =>
    (await call(c.runtime, 'PortForward', { pod_sandbox_id: podId, port: remotes })).url;
  if (transport === 'websocket') {
    // The protocol has one WebSocket per connection, each on its own single-use URL.
    const pf = portForwardWs(newUrl);
    return {
      ready: () => newUrl().then(() => undefined),
      connect: (p) => pf.connect(p),
      close: () => pf.close(),
    };
  }
  let current: Promise<PortForwarder> | undefined;
  const dial = (): Promise<PortForwarder> => (current = newUrl().then((u) => portForwardSpdy(u)));
  return {
    ready: () => dial().then(() => undefined),
    async connect(p) {
      const used = current ?? dial();
      const pf = await used;
      try {
        return await pf.connect(p);
      } catch {
        // Dial again only once per lost connection, however many local connections noticed.
        let next = current;
        if (next === undefined || next === used) {
          pf.close();
          next = dial();
        }
        return (await next).connect(p);
      }
    },
    close() {
      void current?.then((pf) => pf.close()).catch(() => undefined);
    },
  };
}

/** Resolves on the first SIGINT or SIGTERM (which then no longer end the process by themselves). */
function interrupted(): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      process.off('SIGINT', done);
      process.off('SIGTERM', done);
      resolve();
    };
    process.on('SIGINT', done);
    process.on('SIGTERM', done);
  });
}

/**
 * port-forward: a listener on 127.0.0.1 per LOCAL port; each accepted connection becomes a
 * forwarded connection to REMOTE in the pod's network namespace. Runs until SIGINT/SIGTERM.
 */
export async function portForward(c: CriClients, argv: string[], out: Out, err: Out): Promise<number> {
  const a = parsePortForwardArgs(argv);
  const podId = await resolvePodId(c, a.pod);
  const pf = forwarder(
    c,
    podId,
    a.ports.map((p) => p.remote),
    a.transport,
  );
  // Fail early (unknown pod, pod not ready) rather than on the first connection.
  await pf.ready();
  const stop = interrupted();
  const sockets = new Set<net.Socket>();
  const servers: net.Server[] = [];
  try {
    for (const spec of a.ports) {
      const server = net.createServer({ allowHalfOpen: true }, (sock) => {
        sockets.add(sock);
        sock.on('close', () => sockets.delete(sock));
        sock.on('error', () => undefined);
        sock.pause();
        pf.connect(spec.remote).then(
          (remote) => {
            remote.on('error', (e: Error) => {
              err.write(`berthctl port-forward: ${e.message}\n`);
              sock.destroy();
            });
            sock.on('close', () => remote.destroy());
            remote.on('close', () => sock.destroy());
            sock.pipe(remote);
            remote.pipe(sock);
            sock.resume();
          },
          (e: Error) => {
            err.write(`berthctl port-forward: connection to port ${spec.remote}: ${e.message}\n`);
            sock.destroy();
          },
        );
      });
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(spec.local, '127.0.0.1', () => {
          server.off('error', reject);
          resolve();
        });
      });
      const local = (server.address() as net.AddressInfo).port;
      out.write(`Forwarding from 127.0.0.1:${local} -> ${spec.remote}\n`);
    }
    await stop;
    return 0;
  } finally {
    for (const s of servers) s.close();
    for (const s of sockets) s.destroy();
    pf.close();
  }
}
