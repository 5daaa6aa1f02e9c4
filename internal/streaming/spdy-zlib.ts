// SPDY/3 header blocks: the name/value block layout and its zlib compression.
//
// SPDY/3 compresses every header block of a connection with ONE zlib stream per
// direction, seeded with a fixed dictionary and flushed with Z_SYNC_FLUSH at the end of
// each frame. Node has no synchronous API for a persistent zlib stream, but a sync flush
// leaves the deflate bit stream byte-aligned at a block boundary, and the only state a
// DEFLATE decoder carries across blocks is its 32 KiB history window. So each frame can be
// (de)compressed on its own with the raw deflate codec, using the last 32 KiB of
// everything sent/received so far (starting with the dictionary) as the preset
// dictionary. The wire bytes are exactly those of one continuous zlib stream.
import * as zlib from 'zlib';

/** A decoded header block. Names are lower case; several values of one name are joined by NUL. */
export type SpdyHeaders = Record<string, string>;

const WINDOW = 32 * 1024;
const SYNC = zlib.constants.Z_SYNC_FLUSH;

// The dictionary from the SPDY/3 draft (section 2.6.10.1): length-prefixed header names and
// common values, then a run of raw common strings. 1423 bytes.
const DICT_WORDS = [
  'options', 'head', 'post', 'put', 'delete', 'trace', 'accept', 'accept-charset',
  'accept-encoding', 'accept-language', 'accept-ranges', 'age', 'allow', 'authorization',
  'cache-control', 'connection', 'content-base', 'content-encoding', 'content-language',
  'content-length', 'content-location', 'content-md5', 'content-range', 'content-type', 'date',
  'etag', 'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match',
  'if-range', 'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'pragma',
  'proxy-authenticate', 'proxy-authorization', 'range', 'referer', 'retry-after', 'server', 'te',
  'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'vary', 'via', 'warning',
  'www-authenticate', 'method', 'get', 'status', '200 OK', 'version', 'HTTP/1.1', 'url', 'public',
  'set-cookie', 'keep-alive', 'origin',
]; // prettier-ignore
const DICT_TAIL =
  '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505' +
  '203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request' +
  '401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented' +
  '503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 ' +
  'Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,image/jpg,image/gif,' +
  'application/xml,application/xhtml+xml,text/plain,text/javascript,publicprivatemax-age=' +
  'gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.';

function buildDictionary(): Buffer {
  const parts: Buffer[] = [];
  for (const w of DICT_WORDS) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(w.length);
    parts.push(len, Buffer.from(w, 'latin1'));
  }
  parts.push(Buffer.from(DICT_TAIL, 'latin1'));
  return Buffer.concat(parts);
}

/** The SPDY/3 zlib dictionary. */
export const SPDY3_DICTIONARY: Buffer = buildDictionary();

/** Adler-32 (RFC 1950), used as the zlib dictionary id. */
export function adler32(buf: Buffer): number {
  let a = 1;
  let b = 0;
  // 5552 is the largest n keeping b below 2^32 before the modulo (RFC 1950's NMAX).
  for (let i = 0; i < buf.length; ) {
    const end = Math.min(i + 5552, buf.length);
    for (; i < end; i++) {
      a += buf[i];
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

const DICT_ID = adler32(SPDY3_DICTIONARY);

export class SpdyCompressionError extends Error {}

function appendHistory(history: Buffer, data: Buffer): Buffer {
  if (data.length >= WINDOW) return Buffer.from(data.subarray(data.length - WINDOW));
  const keep = Math.min(history.length, WINDOW - data.length);
  return Buffer.concat([history.subarray(history.length - keep), data]);
}

/** The sending side's zlib stream: compress(block) returns the bytes to put in one frame. */
export class SpdyHeaderCompressor {
  private history: Buffer = SPDY3_DICTIONARY;
  private started = false;

  compress(block: Buffer): Buffer {
    const body = zlib.deflateRawSync(block, {
      dictionary: this.history,
      finishFlush: SYNC,
      level: zlib.constants.Z_BEST_COMPRESSION,
    });
    this.history = appendHistory(this.history, block);
    if (this.started) return body;
    this.started = true;
    // zlib header: CM=8 (deflate), CINFO=7 (32 KiB window), FDICT set, FLEVEL=3, then the
    // dictionary id; FCHECK makes the 16-bit header a multiple of 31.
    const cmf = 0x78;
    let flg = (3 << 6) | 0x20;
    flg |= 31 - ((cmf * 256 + flg) % 31);
    const head = Buffer.alloc(6);
    head[0] = cmf;
    head[1] = flg;
    head.writeUInt32BE(DICT_ID, 2);
    return Buffer.concat([head, body]);
  }
}

/** The receiving side's zlib stream: decompress(frameBytes) returns that frame's header block. */
export class SpdyHeaderDecompressor {
  private history: Buffer = SPDY3_DICTIONARY;
  private started = false;

  constructor(private readonly maxBlock = 1024 * 1024) {}

  decompress(data: Buffer): Buffer {
    let body = data;
    if (!this.started) {
      if (data.length < 2) throw new SpdyCompressionError('header block too short for a zlib header');
      const cmf = data[0];
      const flg = data[1];
      if ((cmf & 0x0f) !== 8 || cmf >> 4 > 7 || (cmf * 256 + flg) % 31 !== 0) {
        throw new SpdyCompressionError('invalid zlib header in header block');
      }
      if (flg & 0x20) {
        if (data.length < 6) throw new SpdyCompressionError('truncated zlib dictionary id');
        if (data.readUInt32BE(2) !== DICT_ID) {
          throw new SpdyCompressionError('header block compressed with an unknown dictionary');
        }
        body = data.subarray(6);
      } else {
        // The peer did not use the dictionary: its window starts empty.
        this.history = Buffer.alloc(0);
        body = data.subarray(2);
      }
      this.started = true;
    }
    let out: Buffer;
    try {
      out = zlib.inflateRawSync(body, {
        dictionary: this.history.length > 0 ? this.history : undefined,
        finishFlush: SYNC,
        maxOutputLength: this.maxBlock,
      });
    } catch (err) {
      throw new SpdyCompressionError(`header block decompression failed: ${(err as Error).message}`);
    }
    this.history = appendHistory(this.history, out);
    return out;
  }
}

/** Serialises headers as a SPDY/3 name/value block (32-bit counts and lengths). */
export function encodeHeaderBlock(headers: SpdyHeaders): Buffer {
  const entries = Object.entries(headers);
  const parts: Buffer[] = [];
  const count = Buffer.alloc(4);
  count.writeUInt32BE(entries.length);
  parts.push(count);
  for (const [name, value] of entries) {
    const n = Buffer.from(name.toLowerCase(), 'utf8');
    const v = Buffer.from(value, 'utf8');
    const nl = Buffer.alloc(4);
    nl.writeUInt32BE(n.length);
    const vl = Buffer.alloc(4);
    vl.writeUInt32BE(v.length);
    parts.push(nl, n, vl, v);
  }
  return Buffer.concat(parts);
}

/** Parses a name/value block. Throws SpdyCompressionError on a malformed block. */
export function decodeHeaderBlock(block: Buffer): SpdyHeaders {
  const bad = (what: string): never => {
    throw new SpdyCompressionError(`malformed header block: ${what}`);
  };
  if (block.length < 4) bad('missing count');
  const count = block.readUInt32BE(0);
  let off = 4;
  const headers: SpdyHeaders = Object.create(null) as SpdyHeaders;
  for (let i = 0; i < count; i++) {
    if (off + 4 > block.length) bad('truncated name length');
    const nlen = block.readUInt32BE(off);
    off += 4;
    if (nlen === 0 || off + nlen > block.length) bad('bad name length');
    // Go's reader lower-cases names too; a duplicate name is a protocol error there, we join.
    const name = block.toString('utf8', off, off + nlen).toLowerCase();
    off += nlen;
    if (off + 4 > block.length) bad('truncated value length');
    const vlen = block.readUInt32BE(off);
    off += 4;
    if (off + vlen > block.length) bad('bad value length');
    const value = block.toString('utf8', off, off + vlen);
    off += vlen;
    headers[name] = name in headers ? `${headers[name]}\0${value}` : value;
  }
  if (off !== block.length) bad('trailing bytes');
  return headers;
}
