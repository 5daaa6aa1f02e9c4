// Reads a new connection's first HTTP/2 request before any HTTP/2 server sees it, to decide
// whether the connection needs the authority rewriter (h2_authority.ts) at all.
//
// The rewriter puts a JavaScript stream between the socket and nghttp2 and re-encodes every
// request header block: measured on this VM, it doubles the daemon's CPU per call (0.33 against
// 0.18 ms for an ImageStatus) and adds ~0.15 ms to each call's latency. Only clients that send an
// authority nghttp2 refuses need it (grpc-java sends the socket's path); grpc-go (kubelet, crictl:
// `localhost` for unix targets since grpc-go 1.31), grpc-js and most others send one nghttp2
// accepts, and their connections go to nghttp2 directly, on the socket's own handle.
//
// Many clients (grpc-go among them) send their first request only after the server's connection
// preface, a SETTINGS frame. So the listener sends an empty SETTINGS itself (SERVER_PREFACE), and
// the client's SETTINGS ACK for it is cut out of the bytes the HTTP/2 server later gets: that
// server sends its own SETTINGS (a second SETTINGS frame is ordinary HTTP/2) and gets exactly one
// ACK, its own. The decision waits for both the ACK and the end of the first request's header
// block; the bytes read so far are then replayed to whichever path was chosen.
//
// A connection keeps the path its first request chose: a later request with an authority nghttp2
// refuses, on a connection that went direct, is reset by nghttp2 (clients keep one authority per
// connection).
import {
  FLAG_ACK,
  FLAG_END_HEADERS,
  FRAME_CONTINUATION,
  FRAME_HEADERS,
  FRAME_SETTINGS,
  H2ProtocolError,
  PREFACE,
  decodeHeaderBlock,
  frameHeader,
  headersFragment,
  isAcceptedAuthority,
} from './h2_authority';
import { HpackDecoder } from './hpack';

/** The listener's own server connection preface: a SETTINGS frame with no settings. */
export const SERVER_PREFACE = frameHeader(0, FRAME_SETTINGS, 0, 0);
/** Bytes read before deciding that pass this go to the rewriter (which refuses what it must). */
const MAX_SNIFF_BYTES = 1024 * 1024;

export interface Sniffed {
  /** everything read from the client, minus the ACK of SERVER_PREFACE (when it came) */
  bytes: Buffer;
  /** the ACK of SERVER_PREFACE was read (and cut out); if not, the path taken must drop it */
  ackSeen: boolean;
  /** the first request's authority is one nghttp2 accepts: no rewriting needed */
  direct: boolean;
}

export class FirstRequestSniffer {
  private all: Buffer = Buffer.alloc(0);
  private pos = 0;
  private ack: [number, number] | undefined;
  private block: Buffer[] | undefined;
  private direct: boolean | undefined;

  /**
   * Takes the next bytes from the client; returns the decision once the first request's header
   * block and the ACK are both in, or when enough bytes came without them (then `direct` is false).
   * Throws H2ProtocolError when the bytes are not HTTP/2.
   */
  push(chunk: Buffer): Sniffed | undefined {
    this.all = this.all.length ? Buffer.concat([this.all, chunk]) : chunk;
    this.parse();
    if (this.direct !== undefined && this.ack) return this.result(this.direct);
    if (this.all.length > MAX_SNIFF_BYTES) return this.result(false);
    return undefined;
  }

  /** What was read so far, for a connection that must be decided now (the rewriter's). */
  giveUp(): Sniffed {
    return this.result(false);
  }

  private result(direct: boolean): Sniffed {
    const bytes = this.ack
      ? Buffer.concat([this.all.subarray(0, this.ack[0]), this.all.subarray(this.ack[1])])
      : this.all;
    return { bytes, ackSeen: this.ack !== undefined, direct };
  }

  private parse(): void {
    const b = this.all;
    if (this.pos === 0) {
      const n = Math.min(b.length, PREFACE.length);
      if (!b.subarray(0, n).equals(PREFACE.subarray(0, n)))
        throw new H2ProtocolError('not an HTTP/2 preface');
      if (b.length < PREFACE.length) return;
      this.pos = PREFACE.length;
    }
    while (b.length - this.pos >= 9) {
      const len = b.readUIntBE(this.pos, 3);
      const type = b[this.pos + 3];
      const flags = b[this.pos + 4];
      const end = this.pos + 9 + len;
      if (b.length < end) return;
      const payload = b.subarray(this.pos + 9, end);
      if (this.block && type !== FRAME_CONTINUATION)
        throw new H2ProtocolError('a frame other than CONTINUATION inside a header block');
      if (type === FRAME_SETTINGS && flags & FLAG_ACK && !this.ack) {
        if (len !== 0) throw new H2ProtocolError('SETTINGS ACK with a payload');
        this.ack = [this.pos, end];
      } else if (this.direct === undefined && (type === FRAME_HEADERS || type === FRAME_CONTINUATION)) {
        this.headerFrame(type, flags, payload);
      }
      this.pos = end;
    }
  }

  private headerFrame(type: number, flags: number, payload: Buffer): void {
    if (type === FRAME_CONTINUATION) {
      if (!this.block) throw new H2ProtocolError('CONTINUATION without HEADERS');
      this.block.push(payload);
    } else {
      this.block = [headersFragment(flags, payload).fragment];
    }
    if (!(flags & FLAG_END_HEADERS)) return;
    // the connection's first header block: HPACK's dynamic table is still empty
    const fields = decodeHeaderBlock(new HpackDecoder(), Buffer.concat(this.block));
    this.block = undefined;
    const authorities = fields.filter((f) => f.name === ':authority' || f.name === 'host');
    this.direct = authorities.length > 0 && authorities.every((f) => isAcceptedAuthority(f.value));
  }
}
