// Kubernetes remotecommand / portforward channel protocols, as kubelet's streaming server
// (pkg/kubelet/cri/streaming) and client-go speak them: SPDY stream types and protocol
// negotiation, the error-stream status encoding, resize messages, and the WebSocket
// channel framing (binary, base64, and v5's close signal).
import { Duplex } from 'stream';
import { EventEmitter } from 'events';
import type { WebSocket, RawData } from 'ws';

// ---- SPDY ----

/** SPDY stream headers (names as they are on the wire: lower case). */
export const HEADER_STREAM_TYPE = 'streamtype';
export const HEADER_PORT = 'port';
export const HEADER_REQUEST_ID = 'requestid';

export type ExecStreamType = 'error' | 'stdin' | 'stdout' | 'stderr' | 'resize';
export type PortForwardStreamType = 'data' | 'error';

/** HTTP headers of the SPDY upgrade negotiation. */
export const HEADER_PROTOCOL_VERSION = 'X-Stream-Protocol-Version';
export const HEADER_ACCEPTED_PROTOCOL_VERSIONS = 'X-Accepted-Stream-Protocol-Versions';

/** Exec/attach over SPDY, most preferred first (kubelet's list). */
export const EXEC_SPDY_PROTOCOLS = [
  'v4.channel.k8s.io',
  'v3.channel.k8s.io',
  'v2.channel.k8s.io',
  'channel.k8s.io',
];
/** Port-forward over SPDY. */
export const PORTFORWARD_SPDY_PROTOCOLS = ['portforward.k8s.io'];

/** Splits X-Stream-Protocol-Version values: repeated headers and/or comma-separated lists. */
export function parseProtocolHeader(value: string | string[] | undefined): string[] {
  const values = value === undefined ? [] : Array.isArray(value) ? value : [value];
  return values.flatMap((v) => v.split(',').map((p) => p.trim())).filter((p) => p.length > 0);
}

export type Negotiation =
  | { ok: true; protocol: string; responseHeaders: Record<string, string> }
  | { ok: false; status: 400 | 403; message: string; responseHeaders: Record<string, string[]> };

/**
 * kubelet's httpstream.Handshake: the first protocol in the client's order that the server
 * supports. No header at all is 400; no common protocol is 403, listing what we accept.
 */
export function negotiateStreamProtocol(
  clientHeader: string | string[] | undefined,
  serverProtocols: readonly string[],
): Negotiation {
  const client = parseProtocolHeader(clientHeader);
  if (client.length === 0) {
    return {
      ok: false,
      status: 400,
      message: `unable to upgrade: ${HEADER_PROTOCOL_VERSION} is required`,
      responseHeaders: {},
    };
  }
  const chosen = client.find((p) => serverProtocols.includes(p));
  if (chosen === undefined) {
    return {
      ok: false,
      status: 403,
      message:
        `unable to upgrade: unable to negotiate protocol: client supports [${client.join(' ')}], ` +
        `server accepts [${serverProtocols.join(' ')}]`,
      responseHeaders: { [HEADER_ACCEPTED_PROTOCOL_VERSIONS]: [...serverProtocols] },
    };
  }
  return { ok: true, protocol: chosen, responseHeaders: { [HEADER_PROTOCOL_VERSION]: chosen } };
}

/** remotecommand version of a protocol name: 1 for "channel.k8s.io"/"base64.channel.k8s.io"/"". */
export function protocolVersion(protocol: string): number {
  const m = /^v(\d+)\./.exec(protocol);
  return m ? Number(m[1]) : 1;
}

/** v3+ carries terminal resize messages. */
export function supportsResize(protocol: string): boolean {
  return protocolVersion(protocol) >= 3;
}

/** v4+ writes metav1.Status JSON on the error stream (and so carries exit codes). */
export function usesStatusJson(protocol: string): boolean {
  return protocolVersion(protocol) >= 4;
}

/** The SPDY streams a client opens for exec/attach, as kubelet counts them. */
export function expectedExecStreams(
  opts: { stdin: boolean; stdout: boolean; stderr: boolean; tty: boolean },
  protocol: string,
): ExecStreamType[] {
  const out: ExecStreamType[] = ['error'];
  if (opts.stdin) out.push('stdin');
  if (opts.stdout) out.push('stdout');
  // kubelet drops stderr with a tty (it is merged into the terminal).
  if (opts.stderr && !opts.tty) out.push('stderr');
  if (opts.tty && supportsResize(protocol)) out.push('resize');
  return out;
}

// ---- error stream: metav1.Status ----

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

/** metav1.Status, with Go's field order (that is the order JSON.stringify keeps). */
export interface K8sStatus {
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: { causes: StatusCause[] };
  code?: number;
}

export function successStatus(): K8sStatus {
  return { metadata: {}, status: 'Success' };
}

/** Go's %v of a string slice: [a b c]. */
function goSlice(cmd: readonly string[]): string {
  return `[${cmd.join(' ')}]`;
}

/**
 * The status kubelet's ServeExec writes for a command that exited non-zero. The message
 * wraps the runtime's exit error; we word it as containerd's CRI server does.
 */
export function exitCodeStatus(code: number, cmd?: readonly string[]): K8sStatus {
  const inner = cmd ? `error executing command ${goSlice(cmd)}, exit code ${code}` : `exit code ${code}`;
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: ${inner}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  };
}

/** apierrors.NewInternalError(fmt.Errorf("error executing command in container: %v", err)). */
export function internalErrorStatus(message: string): K8sStatus {
  const err = `error executing command in container: ${message}`;
  return {
    metadata: {},
    status: 'Failure',
    message: `Internal error occurred: ${err}`,
    reason: 'InternalError',
    details: { causes: [{ message: err }] },
    code: 500,
  };
}

/** JSON as Go's encoding/json writes it (HTML-significant characters escaped). */
export function goJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * What to write on the error stream/channel for a finished exec, or null for nothing:
 * v4+ the Status JSON; v1-v3 the failure message as text and nothing on success.
 */
export function encodeErrorStream(status: K8sStatus, protocol: string): Buffer | null {
  if (usesStatusJson(protocol)) return Buffer.from(goJson(status));
  if (status.status === 'Success') return null;
  return Buffer.from(status.message ?? 'error');
}

// ---- resize ----

export interface TerminalSize {
  width: number;
  height: number;
}

/** One resize message as client-go's JSON encoder writes it: {"Width":W,"Height":H}\n */
export function encodeResize(size: TerminalSize): Buffer {
  return Buffer.from(`${JSON.stringify({ Width: size.width, Height: size.height })}\n`);
}

/**
 * Decodes the resize stream: a sequence of JSON objects, split across reads at any byte,
 * with or without newlines between them (kubelet uses a json.Decoder). Invalid input
 * throws (kubelet stops reading resizes at the first bad value).
 */
export class ResizeDecoder {
  private buf = '';

  push(chunk: Buffer | string): TerminalSize[] {
    this.buf += chunk.toString();
    if (this.buf.length > 64 * 1024) throw new Error('resize message too long');
    const out: TerminalSize[] = [];
    for (;;) {
      const start = this.buf.search(/\S/);
      if (start < 0) {
        this.buf = '';
        return out;
      }
      if (this.buf[start] !== '{') throw new Error('invalid resize message');
      const end = objectEnd(this.buf, start);
      if (end < 0) {
        this.buf = this.buf.slice(start);
        return out;
      }
      const v: unknown = JSON.parse(this.buf.slice(start, end));
      this.buf = this.buf.slice(end);
      const o = v as { Width?: unknown; Height?: unknown };
      const width = typeof o.Width === 'number' ? o.Width : 0;
      const height = typeof o.Height === 'number' ? o.Height : 0;
      if (!isU16(width) || !isU16(height)) throw new Error('invalid terminal size');
      out.push({ width, height });
    }
  }
}

function isU16(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n <= 0xffff;
}

/** Index just past the JSON object starting at `start`, or -1 if it is not complete yet. */
function objectEnd(s: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < s.length; i++) {
    const c = s[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

// ---- WebSocket channels ----

export const Channel = { STDIN: 0, STDOUT: 1, STDERR: 2, ERROR: 3, RESIZE: 4 } as const;
/** v5: a message [255, n] closes the sender's side of channel n. */
export const CLOSE_SIGNAL = 255;

/** Exec/attach WebSocket subprotocols, preferred first. "" (none offered) means binary v1. */
export const EXEC_WS_PROTOCOLS = [
  'v5.channel.k8s.io',
  'v4.channel.k8s.io',
  'v4.base64.channel.k8s.io',
  'channel.k8s.io',
  'base64.channel.k8s.io',
];
/** Port-forward WebSocket subprotocols kubelet accepts (ports come from ?ports=). */
export const PORTFORWARD_WS_PROTOCOLS = ['v4.channel.k8s.io', 'v4.base64.channel.k8s.io'];

export interface WsChannelProtocol {
  /** The negotiated subprotocol ("" when the client offered none). */
  name: string;
  version: number;
  base64: boolean;
  /** v5: supports the [255, channel] half-close message. */
  closeSignal: boolean;
}

export function wsProtocolInfo(name: string): WsChannelProtocol {
  const base64 = name === 'base64.channel.k8s.io' || /^v\d+\.base64\.channel\.k8s\.io$/.test(name);
  const version = protocolVersion(name);
  return { name, version, base64, closeSignal: !base64 && version >= 5 };
}

/**
 * Picks the subprotocol as kubelet's wsstream does: the first one the client offers that we
 * support; "" when the client offers none; null when none of its offers is supported
 * (kubelet then refuses the upgrade).
 */
export function selectWsProtocol(offered: Iterable<string>, supported: readonly string[]): string | null {
  const list = [...offered];
  if (list.length === 0) return '';
  return list.find((p) => supported.includes(p)) ?? null;
}

/** Frames data for a channel: binary [ch, ...data], or text '0'+ch followed by base64. */
export function encodeWsMessage(
  proto: WsChannelProtocol,
  channel: number,
  data: Buffer,
): { data: Buffer | string; binary: boolean } {
  if (proto.base64) {
    if (channel > 9) throw new RangeError('base64 channel protocol carries channels 0-9 only');
    return { data: String.fromCharCode(48 + channel) + data.toString('base64'), binary: false };
  }
  const out = Buffer.allocUnsafe(data.length + 1);
  out[0] = channel;
  data.copy(out, 1);
  return { data: out, binary: true };
}

export type WsDecoded =
  | { kind: 'data'; channel: number; data: Buffer }
  | { kind: 'close'; channel: number }
  | { kind: 'empty' };

/** Decodes one message; throws on a malformed one (the caller skips it, as kubelet does). */
export function decodeWsMessage(proto: WsChannelProtocol, msg: Buffer): WsDecoded {
  if (msg.length === 0) return { kind: 'empty' };
  if (proto.closeSignal && msg[0] === CLOSE_SIGNAL) {
    if (msg.length !== 2) throw new Error('close signal must carry exactly one channel byte');
    return { kind: 'close', channel: msg[1] };
  }
  if (proto.base64) {
    const channel = msg[0] - 48;
    if (channel < 0 || channel > 9) throw new Error('invalid base64 channel character');
    const text = msg.toString('latin1', 1);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0)
      throw new Error('invalid base64 payload');
    return { kind: 'data', channel, data: Buffer.from(text, 'base64') };
  }
  return { kind: 'data', channel: msg[0], data: msg.subarray(1) };
}

/** Port-forward over WebSocket: channels 2i (data) and 2i+1 (error) serve the i-th port. */
export function portForwardChannels(index: number): { data: number; error: number } {
  return { data: 2 * index, error: 2 * index + 1 };
}

/** The first message on each port-forward channel: the port, uint16 little-endian. */
export function encodePortPrefix(port: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(port, 0);
  return b;
}

export function decodePortPrefix(b: Buffer): number {
  if (b.length < 2) throw new Error('port prefix needs 2 bytes');
  return b.readUInt16LE(0);
}

/** Parses kubelet's ?ports= values (repeated and/or comma-separated, 1-65535). */
export function parsePortsQuery(values: string[]): number[] {
  if (values.length === 0) throw new Error('query parameter "port" is required');
  const ports: number[] = [];
  for (const v of values) {
    if (v.length === 0) throw new Error('query parameter "port" cannot be empty');
    for (const p of v.split(',')) {
      if (!/^\d{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535)
        throw new Error(`unable to parse "${p}" as a port`);
      ports.push(Number(p));
    }
  }
  return ports;
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/**
 * Multiplexes channel Duplexes over one WebSocket (either end). Writing to channel(n) sends
 * framed messages; ending it sends [255, n] on v5 (nothing on older protocols, which have no
 * half-close). Messages from the peer are pushed to their channel's readable side; a v5 close
 * signal ends it, and so does the WebSocket closing. Reading is paused on the socket while a
 * channel's consumer lags (backpressure). Messages for channels never asked for are dropped.
 *
 * Events: 'close' (code, reason) when the WebSocket closes; 'protocolError' (err) for a
 * malformed message (skipped).
 */
export class WsChannelMux extends EventEmitter {
  private readonly channels = new Map<number, WsChannel>();
  private readonly lagging = new Set<number>();
  private closed = false;

  constructor(
    readonly ws: WebSocket,
    readonly protocol: WsChannelProtocol,
  ) {
    super();
    ws.on('message', (data: RawData) => this.onMessage(toBuffer(data)));
    ws.on('close', (code: number, reason: Buffer) => {
      this.closed = true;
      for (const c of this.channels.values()) c.remoteEnd();
      this.emit('close', code, reason.toString());
    });
    ws.on('error', () => {
      /* 'close' follows */
    });
  }

  /** The Duplex for channel n (created on first use; messages before that are dropped). */
  channel(n: number): Duplex {
    let c = this.channels.get(n);
    if (!c) {
      c = new WsChannel(this, n);
      this.channels.set(n, c);
      if (this.closed) c.remoteEnd();
    }
    return c;
  }

  /** Sends raw channel data (e.g. the empty "connected" message, or a port prefix). */
  send(channel: number, data: Buffer, cb?: (err?: Error) => void): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) {
      cb?.(new Error('websocket closed'));
      return;
    }
    const m = encodeWsMessage(this.protocol, channel, data);
    this.ws.send(m.data, { binary: m.binary }, cb);
  }

  /** v5 half-close of our side of a channel; a no-op before v5. */
  sendClose(channel: number, cb?: (err?: Error) => void): void {
    if (!this.protocol.closeSignal || this.closed || this.ws.readyState !== this.ws.OPEN) {
      cb?.();
      return;
    }
    this.ws.send(Buffer.from([CLOSE_SIGNAL, channel]), { binary: true }, cb);
  }

  /** Closes the WebSocket (normal closure). */
  close(code = 1000, reason = ''): void {
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING)
      this.ws.close(code, reason);
  }

  /** @internal */
  setLagging(n: number, lagging: boolean): void {
    if (lagging) {
      if (this.lagging.size === 0) this.ws.pause();
      this.lagging.add(n);
    } else if (this.lagging.delete(n) && this.lagging.size === 0) {
      this.ws.resume();
    }
  }

  private onMessage(msg: Buffer): void {
    let d: WsDecoded;
    try {
      d = decodeWsMessage(this.protocol, msg);
    } catch (err) {
      this.emit('protocolError', err);
      return;
    }
    if (d.kind === 'empty') return;
    const c = this.channels.get(d.channel);
    if (!c) return;
    if (d.kind === 'close') c.remoteEnd();
    else c.deliver(d.data);
  }
}

class WsChannel extends Duplex {
  private ended = false;

  constructor(
    private readonly mux: WsChannelMux,
    readonly num: number,
  ) {
    super({ allowHalfOpen: true });
  }

  deliver(data: Buffer): void {
    if (this.ended || data.length === 0) return;
    if (!this.push(data)) this.mux.setLagging(this.num, true);
  }

  remoteEnd(): void {
    if (this.ended) return;
    this.ended = true;
    this.push(null);
    this.mux.setLagging(this.num, false);
  }

  override _read(): void {
    this.mux.setLagging(this.num, false);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    // After the WebSocket is gone, writes are dropped (as to a closed terminal), not errors.
    this.mux.send(this.num, chunk, () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.mux.sendClose(this.num, () => cb());
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.mux.setLagging(this.num, false);
    cb(err);
  }
}
