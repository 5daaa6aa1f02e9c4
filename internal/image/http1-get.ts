// A small HTTP/1.1 GET client for blob bodies (layers of hundreds of MB). node:http hands the body
// over in pieces that each live in fresh memory (a new buffer for every socket read, and llhttp
// copies every body piece into another), and on this 2-core VM fresh memory is what a download
// costs: reading the 211 MB of the pull bench's image (and dropping it) took 350-550 ms of CPU
// through node:http and ~90 ms through a socket reading into one reused buffer (net `onread`).
// So big blob GETs come here (registry.ts getBlob: 4 MiB or more); manifests, tokens and small
// blobs stay on node:http and its kept-alive connections.
//
// One request per connection (`Connection: close`), so no pooling or keep-alive state. The body is
// a Readable of chunks of up to BODY_CHUNK bytes, framed by Content-Length, chunked transfer coding
// or the connection's end; a connection that ends before its framing says fails the body. The
// socket stops reading while the body's consumer is behind (backpressure), and a partial chunk is
// passed on when FLUSH_MS of reading passed since the last one, so a slow download still reports
// progress.
import type { IncomingHttpHeaders } from 'node:http';
import * as net from 'node:net';
import { Readable } from 'node:stream';
import * as tls from 'node:tls';
import { ChunkGatherer } from './chunk-gatherer';

export const BODY_CHUNK = 1024 * 1024;
const READ_BUFFER = 64 * 1024;
/** status line and headers, at most */
export const MAX_HEAD = 64 * 1024;
/**
 * A partial chunk is passed on after this long without one while the body flows (a download of
 * under 1 MiB/s still reports progress); the chunk's buffer is then spent, so not sooner.
 */
const FLUSH_MS = 1000;
const MAX_CHUNK_LINE = 4096;

export interface ResponseHead {
  status: number;
  headers: IncomingHttpHeaders;
}

export class HttpProtocolError extends Error {}

/** Headers that keep their first value when repeated (as node:http does); others join with ", ". */
const SINGLE = new Set([
  'age',
  'authorization',
  'content-length',
  'content-type',
  'etag',
  'expires',
  'from',
  'host',
  'if-modified-since',
  'if-unmodified-since',
  'last-modified',
  'location',
  'max-forwards',
  'proxy-authorization',
  'referer',
  'retry-after',
  'server',
  'user-agent',
]);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Parses a response head: the status line and header lines, without the blank line that ends it. */
export function parseResponseHead(text: string): ResponseHead {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.[01] (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (!m) throw new HttpProtocolError(`bad status line ${JSON.stringify(lines[0]?.slice(0, 80))}`);
  const headers: IncomingHttpHeaders = {};
  const raw = headers as Record<string, string | string[]>;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon).toLowerCase() : '';
    if (!TOKEN.test(name))
      throw new HttpProtocolError(`bad header line ${JSON.stringify(line.slice(0, 80))}`);
    const value = line.slice(colon + 1).trim();
    const had = raw[name];
    if (name === 'set-cookie') raw[name] = [...((had as string[] | undefined) ?? []), value];
    else if (had === undefined) raw[name] = value;
    else if (!SINGLE.has(name)) raw[name] = `${had as string}, ${value}`;
  }
  return { status: Number(m[1]), headers };
}

/** How a response's body ends. */
export type Framing = { kind: 'length'; bytes: number } | { kind: 'chunked' } | { kind: 'close' };

/** The body framing of a response to a GET (RFC 9112 §6.3). */
export function bodyFraming(head: ResponseHead): Framing {
  if (head.status === 204 || head.status === 304) return { kind: 'length', bytes: 0 };
  const te = head.headers['transfer-encoding'];
  if (te !== undefined) {
    const codings = String(te)
      .split(',')
      .map((c) => c.trim().toLowerCase());
    return codings.at(-1) === 'chunked' ? { kind: 'chunked' } : { kind: 'close' };
  }
  const cl = head.headers['content-length'];
  if (cl === undefined) return { kind: 'close' };
  if (!/^\d{1,15}$/.test(cl))
    throw new HttpProtocolError(`bad Content-Length ${JSON.stringify(cl.slice(0, 40))}`);
  return { kind: 'length', bytes: Number(cl) };
}

/**
 * Decodes chunked transfer coding as bytes arrive: push() hands the data bytes to `out` (views of
 * the input, valid during the call) and returns how many input bytes it used; it stops at the end
 * of the body (after the trailers), where `done` turns true.
 */
export class ChunkedDecoder {
  private state: 'size' | 'data' | 'data-end' | 'trailer' = 'size';
  private line = '';
  private left = 0;
  done = false;

  push(
    buf: Uint8Array,
    start: number,
    end: number,
    out: (b: Uint8Array, s: number, e: number) => void,
  ): number {
    let i = start;
    while (i < end && !this.done) {
      if (this.state === 'data') {
        const n = Math.min(this.left, end - i);
        out(buf, i, i + n);
        i += n;
        this.left -= n;
        if (this.left === 0) this.state = 'data-end';
        continue;
      }
      // the other states read lines
      const nl = buf.indexOf(0x0a, i);
      const stop = nl < 0 || nl >= end ? end : nl;
      this.line += Buffer.from(buf.buffer, buf.byteOffset + i, stop - i).toString('latin1');
      if (this.line.length > MAX_CHUNK_LINE) throw new HttpProtocolError('chunk line too long');
      if (stop === end) return end - start;
      i = stop + 1;
      const line = this.line.endsWith('\r') ? this.line.slice(0, -1) : this.line;
      this.line = '';
      if (this.state === 'size') {
        const m = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(line);
        if (!m) throw new HttpProtocolError(`bad chunk size line ${JSON.stringify(line.slice(0, 40))}`);
        this.left = parseInt(m[1] as string, 16);
        this.state = this.left === 0 ? 'trailer' : 'data';
      } else if (this.state === 'data-end') {
        if (line !== '') throw new HttpProtocolError('chunk data longer than its size');
        this.state = 'size';
      } else if (line === '') {
        this.done = true;
      }
    }
    return i - start;
  }
}

export interface Http1GetOptions {
  headers: Record<string, string>;
  signal: AbortSignal;
  /** for https: URLs (CA list and the like; the server name is the URL's host) */
  tls?: tls.ConnectionOptions;
  /**
   * Where the body's chunk buffers come from (BODY_CHUNK bytes each; default: fresh memory). A
   * consumer that hands spent chunks back to it saves the page faults of fresh memory.
   */
  chunk?: () => Buffer;
}

export interface Http1Response extends ResponseHead {
  body: Readable;
}

/** The request's bytes; refuses header names and values that would break out of their line. */
export function requestHead(url: URL, headers: Record<string, string>): string {
  let head = `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (!TOKEN.test(name) || /[\r\n\0]/.test(value))
      throw new TypeError(`invalid HTTP header ${JSON.stringify(name)}`);
    head += `${name}: ${value}\r\n`;
  }
  return `${head}Connection: close\r\n\r\n`;
}

/**
 * GETs `url` (http: or https:) on a connection of its own. Resolves with the status and headers
 * once they are in; the body then streams. Rejects on connection errors before that, and with the
 * signal's reason when it aborts (the body, if already out, is destroyed then too).
 */
export function http1Get(url: URL, opts: Http1GetOptions): Promise<Http1Response> {
  const head = requestHead(url, opts.headers);
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const secure = url.protocol === 'https:';
  const port = Number(url.port || (secure ? 443 : 80));
  return new Promise<Http1Response>((resolve, reject) => {
    if (opts.signal.aborted) {
      reject(opts.signal.reason);
      return;
    }
    const readBuf = Buffer.allocUnsafeSlow(READ_BUFFER);
    let headBytes: Buffer[] = [];
    let headLen = 0;
    let body: Readable | undefined;
    let framing: Framing | undefined;
    let left = 0;
    let chunked: ChunkedDecoder | undefined;
    let lastPush = Date.now();
    let finished = false;
    const chunks = new ChunkGatherer(
      () => (opts.chunk ? opts.chunk() : Buffer.allocUnsafeSlow(BODY_CHUNK)),
      (chunk) => {
        lastPush = Date.now();
        if (!(body as Readable).push(chunk)) socket.pause();
      },
    );
    const append = (b: Uint8Array, s: number, e: number): void => chunks.add(b, s, e);
    const finish = (): void => {
      finished = true;
      chunks.flush();
      body?.push(null);
      socket.destroy();
    };
    const fail = (err: Error): void => {
      if (finished) return;
      finished = true;
      socket.destroy();
      if (body) body.destroy(err);
      else reject(err);
    };

    /** body bytes buf[s, e) as they came off the socket */
    const onBody = (buf: Buffer, s: number, e: number): void => {
      const f = framing as Framing;
      if (f.kind === 'length') {
        const n = Math.min(left, e - s);
        append(buf, s, s + n);
        left -= n;
        if (left === 0) finish();
      } else if (f.kind === 'chunked') {
        const dec = chunked as ChunkedDecoder;
        dec.push(buf, s, e, append);
        if (dec.done) finish();
      } else {
        append(buf, s, e);
      }
    };

    /** head bytes until the blank line; then the response goes out and the rest is body */
    const onHead = (buf: Buffer, n: number): void => {
      headBytes.push(Buffer.from(buf.subarray(0, n)));
      headLen += n;
      const all = headBytes.length === 1 ? (headBytes[0] as Buffer) : Buffer.concat(headBytes, headLen);
      headBytes = [all];
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) {
        if (headLen > MAX_HEAD) throw new HttpProtocolError(`response head larger than ${MAX_HEAD} bytes`);
        return;
      }
      const parsed = parseResponseHead(all.toString('latin1', 0, end));
      const rest = all.subarray(end + 4);
      if (parsed.status >= 100 && parsed.status < 200) {
        // an interim response (100 Continue, 103 Early Hints): the real one follows
        headBytes = [];
        headLen = 0;
        if (rest.length > 0) onHead(Buffer.from(rest), rest.length);
        return;
      }
      framing = bodyFraming(parsed);
      if (framing.kind === 'length') left = framing.bytes;
      if (framing.kind === 'chunked') chunked = new ChunkedDecoder();
      headBytes = [];
      body = new Readable({
        highWaterMark: BODY_CHUNK,
        read: () => {
          if (finished || !socket.isPaused()) return;
          lastPush = Date.now(); // the time paused was the consumer's, not the download's
          socket.resume();
        },
        destroy: (err, cb) => {
          finished = true;
          socket.destroy();
          cb(err);
        },
      });
      // a failure before the caller reads (it may await other things first) is kept on the stream
      // (errored) for its reader, not thrown as an unhandled 'error'
      body.on('error', () => undefined);
      resolve({ ...parsed, body });
      if (framing.kind === 'length' && left === 0) finish();
      else if (rest.length > 0) onBody(rest, 0, rest.length);
    };

    const onread = {
      buffer: readBuf,
      callback: (n: number, buf: Buffer): boolean => {
        if (finished) return false;
        try {
          if (!body) onHead(buf, n);
          else onBody(buf, 0, n);
          if (!finished && chunks.pending > 0 && Date.now() - lastPush >= FLUSH_MS) chunks.flush();
        } catch (err) {
          fail(err as Error);
        }
        return true;
      },
    };
    const socket: net.Socket = secure
      ? tls.connect({
          ...opts.tls,
          host,
          port,
          ...(net.isIP(host) ? {} : { servername: host }),
          ALPNProtocols: ['http/1.1'],
          // a TLS socket reads into a static buffer too (node >= 15.6), though @types/node lacks it
          onread,
        } as tls.ConnectionOptions)
      : net.connect({ host, port, onread });
    socket.setNoDelay(true);
    socket.on('error', fail);
    socket.on('close', () => {
      if (finished) return;
      if (framing?.kind === 'close') finish();
      else
        fail(
          new Error(
            body ? 'connection closed before the end of the body' : 'connection closed before a response',
          ),
        );
    });
    socket.write(head);

    const onAbort = (): void =>
      fail(opts.signal.reason instanceof Error ? opts.signal.reason : new Error('aborted'));
    opts.signal.addEventListener('abort', onAbort, { once: true });
    socket.once('close', () => opts.signal.removeEventListener('abort', onAbort));
  });
}
