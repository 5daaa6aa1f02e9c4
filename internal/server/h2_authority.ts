// Lets every gRPC client through the daemon's unix socket whatever `:authority` it sends.
//
// crictl, kubelet and the C-core/Java gRPC stacks send the socket's path (`/run/berth/berth.sock`)
// or nothing as the HTTP/2 `:authority`. Node's HTTP/2 server (nghttp2) checks the authority's
// characters while it parses a request's header block and resets the stream with PROTOCOL_ERROR
// before grpc-js sees it; no Node option turns that check off. On a unix socket the authority
// means nothing, so Berth reads the client's bytes before nghttp2 does: it follows the client's
// HPACK state, and re-encodes every request header block (as literals that leave nghttp2's
// dynamic table empty) with an authority nghttp2 accepts: `localhost` in place of a value it
// would refuse, or added when the request has none. All other frames pass through unchanged.
import { encodeBlock, HpackDecoder, HpackError, type HeaderField } from './hpack';

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
export const FRAME_HEADERS = 0x1;
export const FRAME_CONTINUATION = 0x9;
export const FRAME_SETTINGS = 0x4;
export const FLAG_ACK = 0x1;
export const FLAG_END_STREAM = 0x1;
export const FLAG_END_HEADERS = 0x4;
export const FLAG_PADDED = 0x8;
export const FLAG_PRIORITY = 0x20;
/** Every HTTP/2 peer accepts frames this large (SETTINGS_MAX_FRAME_SIZE's floor). */
const OUT_FRAME_MAX = 16384;
/** A header block larger than this closes the connection (nghttp2 refuses far less anyway). */
const MAX_HEADER_BLOCK = 1024 * 1024;
export const SOCKET_AUTHORITY = 'localhost';

/** RFC 3986 authority characters (what nghttp2 lets through in a request's :authority/host). */
export function isAcceptedAuthority(v: string): boolean {
  return /^[A-Za-z0-9\-._~!$&'()*+,;=:@[\]%]+$/.test(v);
}

/** The request's header list with an authority nghttp2 accepts. Trailers are left alone. */
export function fixAuthority(fields: HeaderField[]): HeaderField[] {
  if (!fields.some((f) => f.name === ':method')) return fields;
  let hasAuthority = false;
  const out = fields.map((f) => {
    if (f.name !== ':authority' && f.name !== 'host') return f;
    hasAuthority = true;
    return isAcceptedAuthority(f.value) ? f : { ...f, value: SOCKET_AUTHORITY };
  });
  if (!hasAuthority) {
    // pseudo-headers come first: put it right after the last one
    let i = 0;
    while (i < out.length && out[i].name.startsWith(':')) i++;
    out.splice(i, 0, { name: ':authority', value: SOCKET_AUTHORITY });
  }
  return out;
}

export function frameHeader(len: number, type: number, flags: number, stream: number): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(len, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream & 0x7fffffff, 5);
  return h;
}

/** HEADERS (+ CONTINUATION) frames carrying `block`, split to fit every peer's frame size. */
export function headerFrames(stream: number, block: Buffer, endStream: boolean, priority?: Buffer): Buffer[] {
  const out: Buffer[] = [];
  const firstRoom = OUT_FRAME_MAX - (priority ? priority.length : 0);
  let off = Math.min(firstRoom, block.length);
  const first = block.subarray(0, off);
  let flags = (endStream ? FLAG_END_STREAM : 0) | (priority ? FLAG_PRIORITY : 0);
  if (off === block.length) flags |= FLAG_END_HEADERS;
  const payload = priority ? Buffer.concat([priority, first]) : first;
  out.push(frameHeader(payload.length, FRAME_HEADERS, flags, stream), payload);
  while (off < block.length) {
    const part = block.subarray(off, off + OUT_FRAME_MAX);
    off += part.length;
    const f = off === block.length ? FLAG_END_HEADERS : 0;
    out.push(frameHeader(part.length, FRAME_CONTINUATION, f, stream), part);
  }
  return out;
}

export class H2ProtocolError extends Error {}

/** A HEADERS frame's header block fragment and priority field, its padding cut off. */
export function headersFragment(flags: number, payload: Buffer): { fragment: Buffer; priority?: Buffer } {
  let p = payload;
  if (flags & FLAG_PADDED) {
    if (p.length < 1 || p[0] >= p.length) throw new H2ProtocolError('bad HEADERS padding');
    p = p.subarray(1, p.length - p[0]);
  }
  if (!(flags & FLAG_PRIORITY)) return { fragment: p };
  if (p.length < 5) throw new H2ProtocolError('short HEADERS priority');
  return { fragment: p.subarray(5), priority: p.subarray(0, 5) };
}

/** A whole header block decoded with `hpack` (its table updated); HPACK errors as H2ProtocolError. */
export function decodeHeaderBlock(hpack: HpackDecoder, block: Buffer): HeaderField[] {
  try {
    return hpack.decode(block);
  } catch (err) {
    if (err instanceof HpackError) throw new H2ProtocolError(`HPACK: ${err.message}`);
    throw err;
  }
}

/**
 * Rewrites the client→server byte stream of one HTTP/2 connection. `push` takes bytes as they
 * arrive and returns what to hand to the server; it throws H2ProtocolError on input no server
 * could accept (the caller closes the connection).
 */
export class AuthorityRewriter {
  /**
   * @param dropSettingsAck cut the client's first SETTINGS ACK out of the stream: it acknowledges
   *   the listener's own SETTINGS (h2_sniff.ts SERVER_PREFACE), not the server's
   */
  constructor(private dropSettingsAck = false) {}

  private buf: Buffer = Buffer.alloc(0);
  private prefaceDone = false;
  /** bytes of a pass-through frame's payload still to forward as they come */
  private passRemaining = 0;
  private readonly hpack = new HpackDecoder();
  private block: { stream: number; flags: number; priority?: Buffer; parts: Buffer[]; size: number } | null =
    null;

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      if (this.passRemaining > 0) {
        if (this.buf.length === 0) break;
        const n = Math.min(this.passRemaining, this.buf.length);
        out.push(this.buf.subarray(0, n));
        this.buf = this.buf.subarray(n);
        this.passRemaining -= n;
        continue;
      }
      if (!this.prefaceDone) {
        if (this.buf.length < PREFACE.length) {
          if (!PREFACE.subarray(0, this.buf.length).equals(this.buf))
            throw new H2ProtocolError('not an HTTP/2 preface');
          break;
        }
        if (!this.buf.subarray(0, PREFACE.length).equals(PREFACE))
          throw new H2ProtocolError('not an HTTP/2 preface');
        out.push(this.buf.subarray(0, PREFACE.length));
        this.buf = this.buf.subarray(PREFACE.length);
        this.prefaceDone = true;
        continue;
      }
      if (this.buf.length < 9) break;
      const len = this.buf.readUIntBE(0, 3);
      const type = this.buf[3];
      const flags = this.buf[4];
      const stream = this.buf.readUInt32BE(5) & 0x7fffffff;
      const isHeaderFrame = type === FRAME_HEADERS || type === FRAME_CONTINUATION;
      if (this.block && type !== FRAME_CONTINUATION) {
        throw new H2ProtocolError('a frame other than CONTINUATION inside a header block');
      }
      if (this.dropSettingsAck && type === FRAME_SETTINGS && flags & FLAG_ACK) {
        if (len !== 0) throw new H2ProtocolError('SETTINGS ACK with a payload');
        this.dropSettingsAck = false;
        this.buf = this.buf.subarray(9);
        continue;
      }
      if (!isHeaderFrame) {
        out.push(this.buf.subarray(0, 9));
        this.buf = this.buf.subarray(9);
        this.passRemaining = len;
        continue;
      }
      if (this.buf.length < 9 + len) break;
      const payload = this.buf.subarray(9, 9 + len);
      this.buf = this.buf.subarray(9 + len);
      out.push(...this.headerFrame(type, flags, stream, payload));
    }
    if (this.buf.length && this.buf.byteOffset > 0 && this.buf.buffer.byteLength > 4 * this.buf.length) {
      this.buf = Buffer.from(this.buf); // do not keep a large chunk alive for a few bytes
    }
    return out;
  }

  private headerFrame(type: number, flags: number, stream: number, payload: Buffer): Buffer[] {
    if (type === FRAME_CONTINUATION) {
      if (!this.block || this.block.stream !== stream)
        throw new H2ProtocolError('CONTINUATION without HEADERS');
      this.block.parts.push(payload);
      this.block.size += payload.length;
    } else {
      const { fragment, priority } = headersFragment(flags, payload);
      this.block = {
        stream,
        flags,
        priority: priority && Buffer.from(priority),
        parts: [Buffer.from(fragment)],
        size: fragment.length,
      };
    }
    if (this.block.size > MAX_HEADER_BLOCK) throw new H2ProtocolError('header block too large');
    if (!(flags & FLAG_END_HEADERS)) return [];
    const b = this.block;
    this.block = null;
    const fields = decodeHeaderBlock(this.hpack, Buffer.concat(b.parts));
    return headerFrames(
      b.stream,
      encodeBlock(fixAuthority(fields)),
      (b.flags & FLAG_END_STREAM) !== 0,
      b.priority,
    );
  }
}
