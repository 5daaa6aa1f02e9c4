// A raw HTTP/2 gRPC client built from frames by hand, to send what Node's client will not: the
// unix socket path, an empty value or no `:authority` at all, the way crictl, kubelet and the
// C-core/Java stacks do. Requests on one connection share the client's HPACK table like grpc-go's
// (header fields added with incremental indexing, then referenced by index), Huffman-coded.
import * as net from 'node:net';
import {
  encodeIndexed,
  encodeIndexedLiteral,
  encodeLiteral,
  HpackDecoder,
  type HeaderField,
} from '../../internal/server/hpack';
import { FLAG_END_HEADERS, FLAG_END_STREAM, frameHeader, PREFACE } from '../../internal/server/h2_authority';

export interface RawReply {
  /** HTTP :status, or undefined when the stream was reset before any response */
  httpStatus?: string;
  grpcStatus?: number;
  grpcMessage?: string;
  /** the response message (without the 5-byte gRPC prefix) */
  message?: Buffer;
  /** the RST_STREAM error code when the server reset the stream */
  rstCode?: number;
}

/** One gRPC message with its length prefix. */
export function grpcFrame(msg: Buffer): Buffer {
  const h = Buffer.alloc(5);
  h.writeUInt32BE(msg.length, 1);
  return Buffer.concat([h, msg]);
}

export interface RawCall {
  path: string;
  /** the :authority to send; null sends none */
  authority: string | null;
  message: Buffer;
}

/**
 * Makes `calls` one after another on one connection to `socket` and returns each reply.
 * Throws when the connection closes before all replies (e.g. a GOAWAY).
 */
export function rawGrpcCalls(
  socket: string,
  calls: RawCall[],
  timeoutMs = 15000,
  opts: {
    /** send the first request only once the server's first SETTINGS came (as grpc-go does) */
    waitForServerSettings?: boolean;
  } = {},
): Promise<RawReply[]> {
  return new Promise((resolve, reject) => {
    const conn = net.connect(socket);
    const dec = new HpackDecoder();
    // the client's own table, mirrored to know which fields are already indexed
    const table: HeaderField[] = [];
    const replies: RawReply[] = [];
    let current: { stream: number; reply: RawReply; data: Buffer[] } | null = null;
    let nextStream = 1;
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error('raw HTTP/2 call timed out')), timeoutMs);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      conn.destroy();
      reject(err);
    };
    const encodeField = (f: HeaderField): Buffer => {
      const i = table.findIndex((t) => t.name === f.name && t.value === f.value);
      if (i >= 0) return encodeIndexed(62 + i);
      if (f.name === 'content-type' || f.name === 'te' || f.name === ':path') {
        table.unshift(f);
        return encodeIndexedLiteral(f, true);
      }
      if (f.name === ':authority' && f.value.length > 0) {
        table.unshift(f);
        return encodeIndexedLiteral(f, true);
      }
      return encodeLiteral(f, true);
    };
    const start = (): void => {
      const c = calls[replies.length];
      const stream = nextStream;
      nextStream += 2;
      current = { stream, reply: {}, data: [] };
      const fields: HeaderField[] = [
        { name: ':method', value: 'POST' },
        { name: ':scheme', value: 'http' },
        { name: ':path', value: c.path },
      ];
      if (c.authority !== null) fields.push({ name: ':authority', value: c.authority });
      fields.push({ name: 'content-type', value: 'application/grpc' }, { name: 'te', value: 'trailers' });
      const block = Buffer.concat(fields.map(encodeField));
      const body = grpcFrame(c.message);
      conn.write(
        Buffer.concat([
          frameHeader(block.length, 0x1, FLAG_END_HEADERS, stream),
          block,
          frameHeader(body.length, 0x0, FLAG_END_STREAM, stream),
          body,
        ]),
      );
    };
    const finish = (): void => {
      const cur = current!;
      if (cur.data.length) {
        const all = Buffer.concat(cur.data);
        cur.reply.message = all.subarray(5, 5 + all.readUInt32BE(1));
      }
      replies.push(cur.reply);
      current = null;
      if (replies.length === calls.length) {
        clearTimeout(timer);
        conn.end();
        resolve(replies);
      } else {
        start();
      }
    };
    let started = false;
    const onFrame = (type: number, flags: number, stream: number, payload: Buffer): void => {
      if (type === 0x4 && !(flags & 0x1)) {
        conn.write(frameHeader(0, 0x4, 0x1, 0)); // SETTINGS ack
        if (!started) {
          started = true;
          start();
        }
      }
      if (type === 0x6 && !(flags & 0x1)) conn.write(Buffer.concat([frameHeader(8, 0x6, 0x1, 0), payload])); // PING
      if (type === 0x7) fail(new Error(`GOAWAY, error code ${payload.readUInt32BE(4)}`));
      if (!current || stream !== current.stream) return;
      if (type === 0x3) {
        current.reply.rstCode = payload.readUInt32BE(0);
        finish();
      } else if (type === 0x0) {
        let p = payload;
        if (flags & 0x8) p = p.subarray(1, p.length - p[0]);
        current.data.push(Buffer.from(p));
        if (flags & FLAG_END_STREAM) finish();
      } else if (type === 0x1) {
        let p = payload;
        if (flags & 0x8) p = p.subarray(1, p.length - p[0]);
        if (flags & 0x20) p = p.subarray(5);
        if (!(flags & FLAG_END_HEADERS)) return fail(new Error('the raw client does not take CONTINUATION'));
        for (const f of dec.decode(p)) {
          if (f.name === ':status') current.reply.httpStatus = f.value;
          if (f.name === 'grpc-status') current.reply.grpcStatus = Number(f.value);
          if (f.name === 'grpc-message') current.reply.grpcMessage = decodeURIComponent(f.value);
        }
        if (flags & FLAG_END_STREAM) finish();
      }
    };
    conn.on('connect', () => {
      conn.write(Buffer.concat([PREFACE, frameHeader(0, 0x4, 0, 0)]));
      if (!opts.waitForServerSettings) {
        started = true;
        start();
      }
    });
    conn.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3);
        if (buf.length < 9 + len) break;
        const payload = buf.subarray(9, 9 + len);
        onFrame(buf[3], buf[4], buf.readUInt32BE(5) & 0x7fffffff, payload);
        buf = buf.subarray(9 + len);
      }
    });
    conn.on('error', fail);
    conn.on('close', () => {
      if (replies.length < calls.length) fail(new Error(`connection closed after ${replies.length} replies`));
    });
  });
}
