// A SPDY/3.1 connection over a byte stream (net.Socket, TLS socket), client or server side,
// with each SPDY stream exposed as a Node Duplex.
//
// Interoperability notes (Go's moby/spdystream, used by kubelet's client-go and crictl):
// - its streams carry arbitrary headers (streamtype, port, requestid), no :method/:path;
// - it waits for a SYN_REPLY to every SYN_STREAM it sends, so the server side replies at once;
// - it implements no flow control at all: it never sends SETTINGS or WINDOW_UPDATE and
//   ignores ours. A sender that honoured a 64 KiB window towards it would stall forever.
//   So with flowControl 'auto' (the default) we keep exact window accounting always, but
//   only block on the peer's windows once the peer has shown that it does flow control
//   (it sent SETTINGS or WINDOW_UPDATE; our own peer sends SETTINGS first thing). Towards
//   a peer that ignores our windows, memory stays bounded by pausing the socket while a
//   stream holds more unread data than its window.
import { Duplex } from 'stream';
import { EventEmitter } from 'events';
import {
  SpdyFrame,
  SpdyFrameEncoder,
  SpdyFrameParser,
  SpdyProtocolError,
  encodeDataHeader,
  FLAG_FIN,
  FLAG_UNIDIRECTIONAL,
  GoAwayStatus,
  RstStatus,
  SettingsId,
  MAX_WINDOW,
} from './spdy-frames';
import { SpdyHeaders } from './spdy-zlib';

export type { SpdyHeaders } from './spdy-zlib';

/** The SPDY/3.1 default for both the per-stream and the connection window. */
export const DEFAULT_WINDOW = 64 * 1024;

export interface SpdyConnectionOptions {
  /** Which side of the connection we are: decides stream-id and ping-id parity. */
  mode: 'server' | 'client';
  /** Per-stream receive window we advertise with SETTINGS_INITIAL_WINDOW_SIZE. Default 64 KiB. */
  initialWindowSize?: number;
  /** Connection-level receive window (raised from 64 KiB by a WINDOW_UPDATE on stream 0). Default 64 KiB. */
  sessionWindowSize?: number;
  /** 'auto' (default): block on the peer's windows once it shows it does flow control. 'always': from the start. */
  flowControl?: 'auto' | 'always';
  /** Largest DATA payload we send in one frame. Default 32 KiB. */
  maxDataFrame?: number;
  /** Bytes read past the HTTP upgrade response/request (the 'upgrade' event's head). */
  head?: Buffer;
  /** Decides whether to accept a stream the peer opens; a refusal is RST_STREAM REFUSED_STREAM. */
  acceptStream?: (headers: SpdyHeaders, streamId: number) => boolean;
  /** Peer-opened streams open at once beyond which new ones are refused. Default 1000. */
  maxConcurrentStreams?: number;
}

export interface OpenStreamOptions {
  /** Send SYN_STREAM with FLAG_FIN: we will send no data on this stream. */
  fin?: boolean;
  /** 0 (highest) .. 7. */
  priority?: number;
}

export class SpdyStreamResetError extends Error {
  constructor(readonly status: number) {
    super(`SPDY stream reset (status ${status})`);
  }
}

interface PendingWrite {
  chunk: Buffer;
  off: number;
  cb: (err?: Error | null) => void;
}

/**
 * One SPDY stream. Writes become DATA frames, end() sends an empty DATA frame with FLAG_FIN,
 * reset() sends RST_STREAM. The peer's FIN ends the readable side; the peer's RST_STREAM
 * emits 'reset' (status) and destroys the stream without an error (finished()/pipeline()
 * report a premature close); so does the loss of the connection.
 *
 * Events besides Duplex ones: 'reply' (headers) when SYN_REPLY arrives on a stream we
 * opened; 'headers' (headers) for a HEADERS frame; 'reset' (status, byPeer).
 */
export class SpdyStream extends Duplex {
  /** Headers of the SYN_STREAM that opened the stream (sent by us or by the peer). */
  readonly headers: SpdyHeaders;
  /** Headers of the SYN_REPLY, once received (streams we opened). */
  replyHeaders: SpdyHeaders | undefined;
  /** RST_STREAM status, if the stream was reset by either side. */
  resetStatus: number | undefined;
  /** True if the stream was torn down before both sides finished (reset or connection loss). */
  aborted = false;

  /** @internal flow-control and state fields, driven by SpdyConnection. */
  sendWindow: number;
  received = 0;
  acked = 0;
  pushed = 0;
  consumedSeen = 0;
  unackedStream = 0;
  replied: boolean;
  localClosed = false;
  remoteClosed = false;
  pendingWrite: PendingWrite | null = null;
  pendingFinal: ((err?: Error | null) => void) | null = null;
  private replyWaiters: { resolve: (h: SpdyHeaders) => void; reject: (e: Error) => void }[] = [];

  constructor(
    private readonly conn: SpdyConnection,
    readonly id: number,
    headers: SpdyHeaders,
    readonly localInitiated: boolean,
    sendWindow: number,
    highWaterMark: number,
  ) {
    super({ allowHalfOpen: true, readableHighWaterMark: highWaterMark, decodeStrings: true });
    this.headers = headers;
    this.sendWindow = sendWindow;
    this.replied = !localInitiated;
  }

  /** Resolves with the SYN_REPLY headers; rejects if the stream is reset or the connection lost first. */
  waitReply(): Promise<SpdyHeaders> {
    if (this.replyHeaders) return Promise.resolve(this.replyHeaders);
    if (this.resetStatus !== undefined) return Promise.reject(new SpdyStreamResetError(this.resetStatus));
    if (this.destroyed) return Promise.reject(new Error('SPDY stream closed before reply'));
    return new Promise((resolve, reject) => this.replyWaiters.push({ resolve, reject }));
  }

  /** Aborts both directions with RST_STREAM (default status CANCEL). */
  reset(status: number = RstStatus.CANCEL): void {
    this.conn.resetStream(this, status, false);
  }

  /** @internal */
  settleReply(err: Error | null): void {
    const waiters = this.replyWaiters;
    this.replyWaiters = [];
    for (const w of waiters) {
      if (err) w.reject(err);
      else w.resolve(this.replyHeaders ?? {});
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.localClosed) {
      cb(new Error('write after the SPDY stream was closed'));
      return;
    }
    this.pendingWrite = { chunk, off: 0, cb };
    this.conn.flushStream(this);
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.replied && !this.localClosed) {
      // Our stream, not answered yet: the FIN waits for the reply like the data does.
      this.pendingFinal = cb;
      return;
    }
    this.conn.finishLocal(this);
    cb();
  }

  override _read(): void {
    // Readable calls _read before it removes the chunk being read from the buffer, and not
    // again until the next push: account for the consumption once the read has completed.
    process.nextTick(() => this.conn.onStreamRead(this));
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.conn.onStreamDestroy(this);
    if (this.replyWaiters.length > 0) this.settleReply(err ?? new Error('SPDY stream closed before reply'));
    cb(err);
  }
}

interface PendingPing {
  start: bigint;
  resolve: (rttMs: number) => void;
  reject: (err: Error) => void;
}

/**
 * Events: 'stream' (stream: SpdyStream, headers) for each stream the peer opens and we accept
 * (the SYN_REPLY has already been sent); 'goaway' (lastGoodStreamId, status);
 * 'close' (err?: Error) once the socket is gone and every stream torn down.
 */
export class SpdyConnection extends EventEmitter {
  private readonly socket: Duplex;
  private readonly mode: 'server' | 'client';
  private readonly encoder = new SpdyFrameEncoder();
  private readonly parser = new SpdyFrameParser();
  private readonly streams = new Map<number, SpdyStream>();
  private readonly recvWindow: number;
  private readonly recvSessionWindow: number;
  private readonly maxDataFrame: number;
  private readonly maxConcurrent: number;
  private readonly acceptStream?: (headers: SpdyHeaders, streamId: number) => boolean;
  private readonly hwm: number;

  private peerFlowControl: boolean;
  private peerInitialWindow = DEFAULT_WINDOW;
  private sessionSendWindow = DEFAULT_WINDOW;
  private sessionReceived = 0;
  private sessionAcked = 0;
  private unackedSession = 0;

  private nextStreamId: number;
  private lastPeerStreamId = 0;
  private nextPingId: number;
  private readonly pings = new Map<number, PendingPing>();
  private readonly blocked = new Set<SpdyStream>();
  private readonly congested = new Set<SpdyStream>();
  private drainWaiters: ((err?: Error | null) => void)[] = [];

  private goawaySent = false;
  private goawayReceived = false;
  private closing = false;
  private dead = false;
  private closeError: Error | undefined;

  constructor(socket: Duplex, opts: SpdyConnectionOptions) {
    super();
    this.socket = socket;
    this.mode = opts.mode;
    this.recvWindow = clampWindow(opts.initialWindowSize ?? DEFAULT_WINDOW);
    this.recvSessionWindow = Math.max(DEFAULT_WINDOW, clampWindow(opts.sessionWindowSize ?? DEFAULT_WINDOW));
    this.maxDataFrame = Math.max(1, Math.min(opts.maxDataFrame ?? 32 * 1024, 0xffffff));
    this.maxConcurrent = opts.maxConcurrentStreams ?? 1000;
    this.acceptStream = opts.acceptStream;
    this.peerFlowControl = opts.flowControl === 'always';
    this.hwm = Math.max(1, Math.min(16 * 1024, Math.floor(this.recvWindow / 2)));
    this.nextStreamId = this.mode === 'client' ? 1 : 2;
    this.nextPingId = this.mode === 'client' ? 1 : 2;

    // Announce our window: this also tells a peer like ourselves that we do flow control.
    this.writeFrame({
      type: 'settings',
      flags: 0,
      entries: [{ id: SettingsId.INITIAL_WINDOW_SIZE, flags: 0, value: this.recvWindow }],
    });
    if (this.recvSessionWindow > DEFAULT_WINDOW) {
      this.writeFrame({ type: 'window_update', streamId: 0, delta: this.recvSessionWindow - DEFAULT_WINDOW });
    }

    socket.on('error', (err: Error) => this.destroy(err));
    socket.on('end', () => this.onSocketEnd());
    socket.on('close', () => this.destroy());
    socket.on('drain', () => this.onDrain());
    // Deliver the upgrade head before any socket data, and only after the caller has had a
    // chance to attach 'stream' listeners.
    process.nextTick(() => {
      if (this.dead) return;
      if (opts.head && opts.head.length > 0) this.onBytes(opts.head);
      if (!this.dead) socket.on('data', (chunk: Buffer) => this.onBytes(chunk));
    });
  }

  /** Number of streams currently open (not yet closed in both directions). */
  get streamCount(): number {
    return this.streams.size;
  }

  /** True once the connection is torn down. */
  get destroyed(): boolean {
    return this.dead;
  }

  /** Opens a stream (SYN_STREAM with these headers). Data may be written before the reply arrives. */
  openStream(headers: SpdyHeaders, opts: OpenStreamOptions = {}): SpdyStream {
    if (this.dead) throw new Error('SPDY connection is closed');
    if (this.goawayReceived || this.goawaySent) throw new Error('SPDY connection is going away');
    const id = this.nextStreamId;
    if (id > MAX_WINDOW) throw new Error('SPDY stream ids exhausted');
    this.nextStreamId += 2;
    const stream = new SpdyStream(this, id, { ...headers }, true, this.peerInitialWindow, this.hwm);
    this.streams.set(id, stream);
    this.writeFrame({
      type: 'syn_stream',
      streamId: id,
      associatedStreamId: 0,
      priority: opts.priority ?? 0,
      slot: 0,
      flags: opts.fin ? FLAG_FIN : 0,
      headers,
    });
    if (opts.fin) {
      stream.localClosed = true;
      stream.end();
    }
    return stream;
  }

  /** Sends a PING and resolves with the round-trip time in milliseconds. */
  ping(timeoutMs = 30_000): Promise<number> {
    if (this.dead) return Promise.reject(new Error('SPDY connection is closed'));
    const id = this.nextPingId;
    this.nextPingId += 2;
    if (this.nextPingId > MAX_WINDOW) this.nextPingId = this.mode === 'client' ? 1 : 2;
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(id);
        reject(new Error('SPDY ping timed out'));
      }, timeoutMs);
      timer.unref();
      this.pings.set(id, {
        start: process.hrtime.bigint(),
        resolve: (ms) => {
          clearTimeout(timer);
          resolve(ms);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.writeFrame({ type: 'ping', id });
    });
  }

  /**
   * Graceful close: sends GOAWAY (no new streams), and ends the socket once every stream
   * is closed. With resetStreams, first resets all open streams (what kubelet does when an
   * exec finishes), so the socket ends at once after the frames already queued.
   */
  close(opts: { resetStreams?: boolean } = {}): void {
    if (this.dead) return;
    this.sendGoaway(GoAwayStatus.OK);
    this.closing = true;
    if (opts.resetStreams) {
      for (const s of [...this.streams.values()]) this.resetStream(s, RstStatus.CANCEL, false);
    }
    this.maybeEnd();
  }

  /** Tears everything down at once: socket destroyed, every stream destroyed (aborted). */
  destroy(err?: Error): void {
    this.teardown(err, false);
  }

  private teardown(err: Error | undefined, flushSocket: boolean): void {
    if (this.dead) return;
    this.dead = true;
    this.closeError = err;
    const lost = new Error('SPDY connection closed');
    for (const s of [...this.streams.values()]) {
      s.aborted = true;
      s.pendingWrite = null;
      s.destroy();
    }
    this.streams.clear();
    this.blocked.clear();
    this.congested.clear();
    for (const p of this.pings.values()) p.reject(err ?? lost);
    this.pings.clear();
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w(err ?? lost);
    if (flushSocket) {
      // Let frames already queued (a GOAWAY) reach the wire, but do not wait long.
      this.socket.end();
      setTimeout(() => this.socket.destroy(), 2000).unref();
    } else {
      this.socket.destroy();
    }
    // 'close' after the socket's own close so callers see a fully released connection.
    process.nextTick(() => this.emit('close', this.closeError));
  }

  // ---- stream-facing internals (called by SpdyStream) ----

  /** @internal Sends as much of the stream's pending write as the windows allow. */
  flushStream(s: SpdyStream): void {
    const p = s.pendingWrite;
    if (!p) return;
    // Data on a stream we opened waits for its SYN_REPLY (as Go's client does). The peer's
    // SETTINGS precede its reply on the wire, so by then we know whether it does flow control.
    if (!s.replied) return;
    if (this.dead) {
      s.pendingWrite = null;
      p.cb(new Error('SPDY connection is closed'));
      return;
    }
    while (p.off < p.chunk.length) {
      let n = Math.min(p.chunk.length - p.off, this.maxDataFrame);
      if (this.peerFlowControl) {
        n = Math.min(n, s.sendWindow, this.sessionSendWindow);
        if (n <= 0) {
          this.blocked.add(s);
          return;
        }
      }
      this.writeData(s.id, 0, p.chunk.subarray(p.off, p.off + n));
      s.sendWindow -= n;
      this.sessionSendWindow -= n;
      p.off += n;
    }
    s.pendingWrite = null;
    this.blocked.delete(s);
    // Propagate socket backpressure to the stream writer.
    if (this.socket.writableNeedDrain) this.drainWaiters.push(p.cb);
    else p.cb();
  }

  /** @internal end() on the stream: FIN as an empty DATA frame. */
  finishLocal(s: SpdyStream): void {
    if (s.localClosed || this.dead) return;
    s.localClosed = true;
    this.writeData(s.id, FLAG_FIN, Buffer.alloc(0));
    this.maybeRetire(s);
  }

  /** @internal The stream's consumer wants more: acknowledge what it consumed. */
  onStreamRead(s: SpdyStream): void {
    if (this.dead) return;
    this.ack(s);
    if (this.congested.has(s) && s.readableLength <= this.recvWindow) {
      this.congested.delete(s);
      if (this.congested.size === 0) this.socket.resume();
    }
  }

  /** @internal */
  onStreamDestroy(s: SpdyStream): void {
    // Unread data will never be consumed: give its share of the connection window back.
    const unread = s.pushed - s.consumedSeen;
    s.consumedSeen = s.pushed;
    if (unread > 0) this.ackSession(unread);
    this.blocked.delete(s);
    if (this.congested.delete(s) && this.congested.size === 0 && !this.dead) this.socket.resume();
    if (this.streams.get(s.id) === s) {
      if (!this.dead && !(s.localClosed && s.remoteClosed) && s.resetStatus === undefined) {
        // Destroyed mid-flight by its user: tell the peer.
        s.resetStatus = RstStatus.CANCEL;
        s.aborted = true;
        this.writeFrame({ type: 'rst_stream', streamId: s.id, status: RstStatus.CANCEL });
      }
      this.streams.delete(s.id);
      this.maybeEnd();
    }
  }

  /** @internal */
  resetStream(s: SpdyStream, status: number, byPeer: boolean): void {
    if (s.resetStatus !== undefined || (s.localClosed && s.remoteClosed && this.streams.get(s.id) !== s))
      return;
    s.resetStatus = status;
    s.aborted = true;
    s.localClosed = true;
    s.remoteClosed = true;
    if (!byPeer && !this.dead) this.writeFrame({ type: 'rst_stream', streamId: s.id, status });
    s.pendingWrite = null;
    s.settleReply(new SpdyStreamResetError(status));
    s.emit('reset', status, byPeer);
    s.destroy();
  }

  // ---- inbound ----

  private onBytes(chunk: Buffer): void {
    if (this.dead) return;
    let frames: SpdyFrame[];
    try {
      frames = this.parser.push(chunk);
    } catch (err) {
      this.protocolError(err as Error);
      return;
    }
    for (const f of frames) {
      if (this.dead) return;
      try {
        this.onFrame(f);
      } catch (err) {
        if (err instanceof SpdyProtocolError) this.protocolError(err);
        else throw err;
      }
    }
  }

  private onFrame(f: SpdyFrame): void {
    switch (f.type) {
      case 'data':
        return this.onData(f.streamId, f.flags, f.data);
      case 'syn_stream':
        return this.onSynStream(f.streamId, f.flags, f.headers);
      case 'syn_reply': {
        const s = this.streams.get(f.streamId);
        if (!s) return this.rstUnknown(f.streamId);
        if (!s.localInitiated || s.replied) return; // duplicate reply: ignored, as Go does
        s.replied = true;
        s.replyHeaders = f.headers;
        s.emit('reply', f.headers);
        s.settleReply(null);
        this.flushStream(s);
        if (s.pendingFinal && !s.pendingWrite) {
          const cb = s.pendingFinal;
          s.pendingFinal = null;
          this.finishLocal(s);
          cb();
        }
        if (f.flags & FLAG_FIN) this.remoteFin(s);
        return;
      }
      case 'headers': {
        const s = this.streams.get(f.streamId);
        if (!s) return this.rstUnknown(f.streamId);
        s.emit('headers', f.headers);
        if (f.flags & FLAG_FIN) this.remoteFin(s);
        return;
      }
      case 'rst_stream': {
        const s = this.streams.get(f.streamId);
        if (s) this.resetStream(s, f.status, true);
        return;
      }
      case 'settings':
        this.peerFlowControl = true;
        for (const e of f.entries) {
          if (e.id === SettingsId.INITIAL_WINDOW_SIZE) {
            if (e.value > MAX_WINDOW) throw new SpdyProtocolError('initial window too large');
            const delta = e.value - this.peerInitialWindow;
            this.peerInitialWindow = e.value;
            for (const s of this.streams.values()) s.sendWindow += delta;
            if (delta > 0) this.flushBlocked();
          }
        }
        return;
      case 'window_update': {
        this.peerFlowControl = true;
        if (f.streamId === 0) {
          if (this.sessionSendWindow + f.delta > MAX_WINDOW)
            throw new SpdyProtocolError('session window overflow');
          this.sessionSendWindow += f.delta;
          this.flushBlocked();
          return;
        }
        const s = this.streams.get(f.streamId);
        if (!s) return;
        if (s.sendWindow + f.delta > MAX_WINDOW) {
          this.resetStream(s, RstStatus.FLOW_CONTROL_ERROR, false);
          return;
        }
        s.sendWindow += f.delta;
        this.flushStream(s);
        return;
      }
      case 'ping': {
        const ours = f.id % 2 === this.nextPingId % 2;
        if (!ours) {
          this.writeFrame({ type: 'ping', id: f.id });
          return;
        }
        const p = this.pings.get(f.id);
        if (p) {
          this.pings.delete(f.id);
          p.resolve(Number(process.hrtime.bigint() - p.start) / 1e6);
        }
        return;
      }
      case 'goaway': {
        this.goawayReceived = true;
        for (const s of [...this.streams.values()]) {
          // Our streams the peer never processed are dead; it will not answer them.
          if (s.localInitiated && s.id > f.lastGoodStreamId)
            this.resetStream(s, RstStatus.REFUSED_STREAM, true);
        }
        this.emit('goaway', f.lastGoodStreamId, f.status);
        this.closing = true;
        this.maybeEnd();
        return;
      }
      case 'unknown':
        return; // SPDY/3: unknown control frames are ignored
    }
  }

  private onSynStream(id: number, flags: number, headers: SpdyHeaders): void {
    const peerParity = this.mode === 'server' ? 1 : 0;
    if (id % 2 !== peerParity || id <= this.lastPeerStreamId) {
      this.writeFrame({ type: 'rst_stream', streamId: id, status: RstStatus.PROTOCOL_ERROR });
      return;
    }
    this.lastPeerStreamId = id;
    if (this.goawaySent || this.closing) {
      this.writeFrame({ type: 'rst_stream', streamId: id, status: RstStatus.REFUSED_STREAM });
      return;
    }
    let peerOpen = 0;
    for (const s of this.streams.values()) if (!s.localInitiated) peerOpen++;
    if (peerOpen >= this.maxConcurrent || (this.acceptStream && !this.acceptStream(headers, id))) {
      this.writeFrame({ type: 'rst_stream', streamId: id, status: RstStatus.REFUSED_STREAM });
      return;
    }
    const s = new SpdyStream(this, id, headers, false, this.peerInitialWindow, this.hwm);
    this.streams.set(id, s);
    if (flags & FLAG_UNIDIRECTIONAL) {
      // We may not send on it, and it gets no reply.
      s.localClosed = true;
      s.end();
    } else {
      this.writeFrame({ type: 'syn_reply', streamId: id, flags: 0, headers: {} });
    }
    this.emit('stream', s, headers);
    if (flags & FLAG_FIN) this.remoteFin(s);
  }

  private onData(id: number, flags: number, data: Buffer): void {
    const len = data.length;
    this.sessionReceived += len;
    if (this.peerFlowControl && this.sessionReceived - this.sessionAcked > this.recvSessionWindow) {
      throw new SpdyProtocolError('peer overran the connection flow-control window');
    }
    const s = this.streams.get(id);
    if (!s || s.remoteClosed) {
      this.ackSession(len);
      if (!s) this.rstUnknown(id);
      else this.resetStream(s, RstStatus.STREAM_ALREADY_CLOSED, false);
      return;
    }
    if (len > 0) {
      s.received += len;
      if (this.peerFlowControl && s.received - s.acked > this.recvWindow) {
        this.resetStream(s, RstStatus.FLOW_CONTROL_ERROR, false);
        return;
      }
      s.pushed += len;
      s.push(data);
      this.ack(s);
      if (s.readableLength > this.recvWindow && !this.congested.has(s)) {
        // Only a peer ignoring our window gets here: stop reading until this stream drains.
        if (this.congested.size === 0) this.socket.pause();
        this.congested.add(s);
      }
    }
    if (flags & FLAG_FIN) this.remoteFin(s);
  }

  /** DATA/SYN_REPLY/HEADERS for a stream we do not have. */
  private rstUnknown(id: number): void {
    const ours = id % 2 === this.nextStreamId % 2;
    const seen = ours ? id < this.nextStreamId : id <= this.lastPeerStreamId;
    // A stream that existed and is gone (closed, reset) may still see frames in flight: ignore.
    if (!seen) this.writeFrame({ type: 'rst_stream', streamId: id, status: RstStatus.INVALID_STREAM });
  }

  private remoteFin(s: SpdyStream): void {
    if (s.remoteClosed) return;
    s.remoteClosed = true;
    s.push(null);
    this.maybeRetire(s);
  }

  private maybeRetire(s: SpdyStream): void {
    if (s.localClosed && s.remoteClosed && this.streams.get(s.id) === s) {
      this.streams.delete(s.id);
      this.blocked.delete(s);
      this.maybeEnd();
    }
  }

  /** Sends WINDOW_UPDATEs for what the stream's consumer has taken since last time. */
  private ack(s: SpdyStream): void {
    const consumed = s.pushed - s.readableLength;
    const delta = consumed - s.consumedSeen;
    if (delta <= 0 || this.dead) return;
    s.consumedSeen = consumed;
    if (!s.remoteClosed) {
      s.unackedStream += delta;
      if (s.unackedStream >= this.recvWindow / 2) {
        this.writeFrame({ type: 'window_update', streamId: s.id, delta: s.unackedStream });
        s.acked += s.unackedStream;
        s.unackedStream = 0;
      }
    }
    this.ackSession(delta);
  }

  private ackSession(n: number): void {
    if (this.dead) return;
    this.unackedSession += n;
    if (this.unackedSession >= this.recvSessionWindow / 2) {
      this.writeFrame({ type: 'window_update', streamId: 0, delta: this.unackedSession });
      this.sessionAcked += this.unackedSession;
      this.unackedSession = 0;
    }
  }

  private flushBlocked(): void {
    for (const s of [...this.blocked]) {
      if (this.peerFlowControl && this.sessionSendWindow <= 0) return;
      this.flushStream(s);
    }
  }

  // ---- outbound / lifecycle ----

  private writeFrame(frame: SpdyFrame): void {
    if (this.dead) return;
    this.socket.write(this.encoder.encode(frame));
  }

  private writeData(id: number, flags: number, payload: Buffer): void {
    if (this.dead) return;
    const head = encodeDataHeader(id, flags, payload.length);
    if (payload.length === 0) {
      this.socket.write(head);
      return;
    }
    this.socket.cork();
    this.socket.write(head);
    this.socket.write(payload);
    this.socket.uncork();
  }

  private onDrain(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  private sendGoaway(status: number): void {
    if (this.goawaySent || this.dead) return;
    this.goawaySent = true;
    this.writeFrame({ type: 'goaway', lastGoodStreamId: this.lastPeerStreamId, status });
  }

  private maybeEnd(): void {
    if (!this.closing || this.dead || this.streams.size > 0 || this.socket.writableEnded) return;
    this.socket.end();
    // A peer that never closes its side must not hold the connection open.
    setTimeout(() => this.destroy(), 5000).unref();
  }

  private onSocketEnd(): void {
    // The peer will send nothing more: whatever is still open can no longer complete.
    if (this.dead) return;
    this.destroy();
  }

  private protocolError(err: Error): void {
    if (err instanceof SpdyProtocolError && err.streamId !== 0) {
      const s = this.streams.get(err.streamId);
      if (s) this.resetStream(s, err.status, false);
      return;
    }
    this.sendGoaway(GoAwayStatus.PROTOCOL_ERROR);
    this.teardown(err, true);
  }
}

function clampWindow(n: number): number {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`invalid SPDY window ${n}`);
  return Math.min(n, MAX_WINDOW);
}
