// SPDY/3.1 frame codec: encoder and an incremental parser that accepts bytes split at any
// boundary. Control frames: 8-byte header (C=1, version 3, type, flags, 24-bit length);
// data frames: 8-byte header (C=0, 31-bit stream id, flags, 24-bit length).
import {
  SpdyHeaders,
  SpdyHeaderCompressor,
  SpdyHeaderDecompressor,
  SpdyCompressionError,
  encodeHeaderBlock,
  decodeHeaderBlock,
} from './spdy-zlib';

export const SPDY_VERSION = 3;

export const FrameType = {
  SYN_STREAM: 1,
  SYN_REPLY: 2,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  HEADERS: 8,
  WINDOW_UPDATE: 9,
} as const;

export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;
export const FLAG_SETTINGS_CLEAR = 0x01;

/** RST_STREAM status codes. */
export const RstStatus = {
  PROTOCOL_ERROR: 1,
  INVALID_STREAM: 2,
  REFUSED_STREAM: 3,
  UNSUPPORTED_VERSION: 4,
  CANCEL: 5,
  INTERNAL_ERROR: 6,
  FLOW_CONTROL_ERROR: 7,
  STREAM_IN_USE: 8,
  STREAM_ALREADY_CLOSED: 9,
  FRAME_TOO_LARGE: 11,
} as const;

/** GOAWAY status codes. */
export const GoAwayStatus = { OK: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 } as const;

/** SETTINGS ids. */
export const SettingsId = {
  MAX_CONCURRENT_STREAMS: 4,
  INITIAL_WINDOW_SIZE: 7,
} as const;

export const MAX_FRAME_LENGTH = 0xffffff;
export const MAX_WINDOW = 0x7fffffff;

export interface SettingsEntry {
  id: number;
  flags: number;
  value: number;
}

export type SpdyFrame =
  | { type: 'data'; streamId: number; flags: number; data: Buffer }
  | {
      type: 'syn_stream';
      streamId: number;
      associatedStreamId: number;
      priority: number;
      slot: number;
      flags: number;
      headers: SpdyHeaders;
    }
  | { type: 'syn_reply'; streamId: number; flags: number; headers: SpdyHeaders }
  | { type: 'headers'; streamId: number; flags: number; headers: SpdyHeaders }
  | { type: 'rst_stream'; streamId: number; status: number }
  | { type: 'settings'; flags: number; entries: SettingsEntry[] }
  | { type: 'ping'; id: number }
  | { type: 'goaway'; lastGoodStreamId: number; status: number }
  | { type: 'window_update'; streamId: number; delta: number }
  /** A control frame of a type SPDY/3.1 does not define; the spec says to ignore it. */
  | { type: 'unknown'; frameType: number; flags: number; payload: Buffer };

/**
 * A connection-level protocol error (the connection must send GOAWAY and close), or, when
 * streamId is set, an error confined to that stream (RST_STREAM with status).
 */
export class SpdyProtocolError extends Error {
  constructor(
    message: string,
    readonly status: number = RstStatus.PROTOCOL_ERROR,
    readonly streamId = 0,
  ) {
    super(message);
  }
}

function controlHeader(type: number, flags: number, length: number): Buffer {
  if (length > MAX_FRAME_LENGTH) throw new SpdyProtocolError('frame too large', RstStatus.FRAME_TOO_LARGE);
  const b = Buffer.alloc(8);
  b.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  b.writeUInt16BE(type, 2);
  b.writeUInt32BE(((flags & 0xff) << 24) | length, 4);
  return b;
}

/** The 8-byte header of a DATA frame; the payload is written separately (no copy). */
export function encodeDataHeader(streamId: number, flags: number, length: number): Buffer {
  if (streamId <= 0 || streamId > MAX_WINDOW) throw new RangeError(`invalid stream id ${streamId}`);
  if (length > MAX_FRAME_LENGTH) throw new RangeError('data frame too large');
  const b = Buffer.alloc(8);
  b.writeUInt32BE(streamId, 0);
  b.writeUInt32BE(((flags & 0xff) << 24) | length, 4);
  return b;
}

/**
 * Encodes frames. Holds the sending direction's header compression context, so frames
 * carrying headers must be written to the wire in the order they were encoded.
 */
export class SpdyFrameEncoder {
  private readonly zlib = new SpdyHeaderCompressor();

  encode(frame: SpdyFrame): Buffer {
    switch (frame.type) {
      case 'data': {
        return Buffer.concat([encodeDataHeader(frame.streamId, frame.flags, frame.data.length), frame.data]);
      }
      case 'syn_stream': {
        const block = this.zlib.compress(encodeHeaderBlock(frame.headers));
        const fixed = Buffer.alloc(10);
        fixed.writeUInt32BE(frame.streamId & MAX_WINDOW, 0);
        fixed.writeUInt32BE(frame.associatedStreamId & MAX_WINDOW, 4);
        fixed[8] = (frame.priority & 0x07) << 5;
        fixed[9] = frame.slot & 0xff;
        return Buffer.concat([
          controlHeader(FrameType.SYN_STREAM, frame.flags, 10 + block.length),
          fixed,
          block,
        ]);
      }
      case 'syn_reply':
      case 'headers': {
        const block = this.zlib.compress(encodeHeaderBlock(frame.headers));
        const id = Buffer.alloc(4);
        id.writeUInt32BE(frame.streamId & MAX_WINDOW, 0);
        const type = frame.type === 'syn_reply' ? FrameType.SYN_REPLY : FrameType.HEADERS;
        return Buffer.concat([controlHeader(type, frame.flags, 4 + block.length), id, block]);
      }
      case 'rst_stream': {
        const b = controlHeader(FrameType.RST_STREAM, 0, 8);
        return Buffer.concat([b, u32pair(frame.streamId & MAX_WINDOW, frame.status)]);
      }
      case 'settings': {
        const body = Buffer.alloc(4 + 8 * frame.entries.length);
        body.writeUInt32BE(frame.entries.length, 0);
        frame.entries.forEach((e, i) => {
          body.writeUInt32BE((((e.flags & 0xff) << 24) | (e.id & 0xffffff)) >>> 0, 4 + 8 * i);
          body.writeUInt32BE(e.value >>> 0, 8 + 8 * i);
        });
        return Buffer.concat([controlHeader(FrameType.SETTINGS, frame.flags, body.length), body]);
      }
      case 'ping': {
        const body = Buffer.alloc(4);
        body.writeUInt32BE(frame.id >>> 0, 0);
        return Buffer.concat([controlHeader(FrameType.PING, 0, 4), body]);
      }
      case 'goaway':
        return Buffer.concat([
          controlHeader(FrameType.GOAWAY, 0, 8),
          u32pair(frame.lastGoodStreamId & MAX_WINDOW, frame.status),
        ]);
      case 'window_update':
        return Buffer.concat([
          controlHeader(FrameType.WINDOW_UPDATE, 0, 8),
          u32pair(frame.streamId & MAX_WINDOW, frame.delta & MAX_WINDOW),
        ]);
      case 'unknown':
        return Buffer.concat([
          controlHeader(frame.frameType, frame.flags, frame.payload.length),
          frame.payload,
        ]);
    }
  }
}

function u32pair(a: number, b: number): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeUInt32BE(a >>> 0, 0);
  buf.writeUInt32BE(b >>> 0, 4);
  return buf;
}

export interface ParserOptions {
  /** Largest control frame accepted (header blocks are small); default 1 MiB. */
  maxControlFrame?: number;
  /** Largest DATA frame accepted; default the protocol maximum (16 MiB - 1). */
  maxDataFrame?: number;
}

/**
 * Incremental parser: push() any chunk of bytes, get back the frames completed by it.
 * Holds the receiving direction's header decompression context. Throws SpdyProtocolError;
 * after a connection-level error (streamId 0) the parser must not be used again.
 */
export class SpdyFrameParser {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private readonly zlib = new SpdyHeaderDecompressor();
  private readonly maxControl: number;
  private readonly maxData: number;

  constructor(opts: ParserOptions = {}) {
    this.maxControl = opts.maxControlFrame ?? 1024 * 1024;
    this.maxData = opts.maxDataFrame ?? MAX_FRAME_LENGTH;
  }

  /** Bytes received but not yet forming a whole frame. */
  get pending(): number {
    return this.buffered;
  }

  push(chunk: Buffer): SpdyFrame[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    const frames: SpdyFrame[] = [];
    for (;;) {
      if (this.buffered < 8) break;
      const head = this.peek(8);
      const length = head.readUInt32BE(4) & 0xffffff;
      const isControl = (head[0] & 0x80) !== 0;
      if (isControl ? length > this.maxControl : length > this.maxData) {
        throw new SpdyProtocolError(`frame of ${length} bytes exceeds the limit`, RstStatus.FRAME_TOO_LARGE);
      }
      if (this.buffered < 8 + length) break;
      this.take(8);
      const payload = this.take(length);
      frames.push(this.decode(head, payload));
    }
    return frames;
  }

  private decode(head: Buffer, payload: Buffer): SpdyFrame {
    const flags = head[4];
    if ((head[0] & 0x80) === 0) {
      const streamId = head.readUInt32BE(0) & MAX_WINDOW;
      if (streamId === 0) throw new SpdyProtocolError('DATA frame on stream 0');
      return { type: 'data', streamId, flags, data: payload };
    }
    const version = head.readUInt16BE(0) & 0x7fff;
    const type = head.readUInt16BE(2);
    if (version !== SPDY_VERSION) {
      throw new SpdyProtocolError(`unsupported SPDY version ${version}`, RstStatus.UNSUPPORTED_VERSION);
    }
    const need = (n: number, what: string): void => {
      if (payload.length < n) throw new SpdyProtocolError(`${what} frame too short`);
    };
    switch (type) {
      case FrameType.SYN_STREAM: {
        need(10, 'SYN_STREAM');
        const streamId = payload.readUInt32BE(0) & MAX_WINDOW;
        const headers = this.headers(payload.subarray(10));
        if (streamId === 0) throw new SpdyProtocolError('SYN_STREAM on stream 0');
        return {
          type: 'syn_stream',
          streamId,
          associatedStreamId: payload.readUInt32BE(4) & MAX_WINDOW,
          priority: payload[8] >> 5,
          slot: payload[9],
          flags,
          headers,
        };
      }
      case FrameType.SYN_REPLY:
      case FrameType.HEADERS: {
        need(4, type === FrameType.SYN_REPLY ? 'SYN_REPLY' : 'HEADERS');
        const streamId = payload.readUInt32BE(0) & MAX_WINDOW;
        // Decompress even for a bad stream id: the shared zlib context must stay in step.
        const headers = this.headers(payload.subarray(4));
        if (streamId === 0) throw new SpdyProtocolError('header frame on stream 0');
        return { type: type === FrameType.SYN_REPLY ? 'syn_reply' : 'headers', streamId, flags, headers };
      }
      case FrameType.RST_STREAM: {
        if (payload.length !== 8) throw new SpdyProtocolError('RST_STREAM length must be 8');
        return {
          type: 'rst_stream',
          streamId: payload.readUInt32BE(0) & MAX_WINDOW,
          status: payload.readUInt32BE(4),
        };
      }
      case FrameType.SETTINGS: {
        need(4, 'SETTINGS');
        const n = payload.readUInt32BE(0);
        if (payload.length !== 4 + 8 * n) throw new SpdyProtocolError('SETTINGS length mismatch');
        const entries: SettingsEntry[] = [];
        for (let i = 0; i < n; i++) {
          const idf = payload.readUInt32BE(4 + 8 * i);
          entries.push({ flags: idf >>> 24, id: idf & 0xffffff, value: payload.readUInt32BE(8 + 8 * i) });
        }
        return { type: 'settings', flags, entries };
      }
      case FrameType.PING: {
        if (payload.length !== 4) throw new SpdyProtocolError('PING length must be 4');
        return { type: 'ping', id: payload.readUInt32BE(0) };
      }
      case FrameType.GOAWAY: {
        // SPDY/2 peers sent 4 bytes; accept that too.
        if (payload.length !== 8 && payload.length !== 4)
          throw new SpdyProtocolError('GOAWAY length must be 8');
        return {
          type: 'goaway',
          lastGoodStreamId: payload.readUInt32BE(0) & MAX_WINDOW,
          status: payload.length === 8 ? payload.readUInt32BE(4) : 0,
        };
      }
      case FrameType.WINDOW_UPDATE: {
        if (payload.length !== 8) throw new SpdyProtocolError('WINDOW_UPDATE length must be 8');
        return {
          type: 'window_update',
          streamId: payload.readUInt32BE(0) & MAX_WINDOW,
          delta: payload.readUInt32BE(4) & MAX_WINDOW,
        };
      }
      default:
        return { type: 'unknown', frameType: type, flags, payload };
    }
  }

  private headers(block: Buffer): SpdyHeaders {
    try {
      return decodeHeaderBlock(this.zlib.decompress(block));
    } catch (err) {
      if (err instanceof SpdyCompressionError) throw new SpdyProtocolError(err.message);
      throw err;
    }
  }

  /** First n buffered bytes without consuming them (n <= buffered). */
  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0].subarray(0, n);
    this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0].subarray(0, n);
  }

  /** Consumes n bytes; copies only when they span several chunks. */
  private take(n: number): Buffer {
    this.buffered -= n;
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0];
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0];
      const k = Math.min(c.length, n - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }
}
