// HPACK (RFC 7541) as far as the socket's authority rewriter needs it: a decoder that follows a
// peer's dynamic table (Huffman strings included), and an encoder that writes every field as a
// plain literal without indexing, so the re-encoded blocks never touch the receiver's table.

/** One decoded header field. `sensitive` is the "never indexed" form, kept when re-encoding. */
export interface HeaderField {
  name: string;
  value: string;
  sensitive?: boolean;
}

export class HpackError extends Error {}

// RFC 7541 Appendix A.
const STATIC_TABLE: Array<[string, string]> = [
  [':authority', ''],
  [':method', 'GET'],
  [':method', 'POST'],
  [':path', '/'],
  [':path', '/index.html'],
  [':scheme', 'http'],
  [':scheme', 'https'],
  [':status', '200'],
  [':status', '204'],
  [':status', '206'],
  [':status', '304'],
  [':status', '400'],
  [':status', '404'],
  [':status', '500'],
  ['accept-charset', ''],
  ['accept-encoding', 'gzip, deflate'],
  ['accept-language', ''],
  ['accept-ranges', ''],
  ['accept', ''],
  ['access-control-allow-origin', ''],
  ['age', ''],
  ['allow', ''],
  ['authorization', ''],
  ['cache-control', ''],
  ['content-disposition', ''],
  ['content-encoding', ''],
  ['content-language', ''],
  ['content-length', ''],
  ['content-location', ''],
  ['content-range', ''],
  ['content-type', ''],
  ['cookie', ''],
  ['date', ''],
  ['etag', ''],
  ['expect', ''],
  ['expires', ''],
  ['from', ''],
  ['host', ''],
  ['if-match', ''],
  ['if-modified-since', ''],
  ['if-none-match', ''],
  ['if-range', ''],
  ['if-unmodified-since', ''],
  ['last-modified', ''],
  ['link', ''],
  ['location', ''],
  ['max-forwards', ''],
  ['proxy-authenticate', ''],
  ['proxy-authorization', ''],
  ['range', ''],
  ['referer', ''],
  ['refresh', ''],
  ['retry-after', ''],
  ['server', ''],
  ['set-cookie', ''],
  ['strict-transport-security', ''],
  ['transfer-encoding', ''],
  ['user-agent', ''],
  ['vary', ''],
  ['via', ''],
  ['www-authenticate', ''],
];

// RFC 7541 Appendix B: code lengths of symbols 0..255 and EOS (256). The code is canonical
// (codes assigned in order of length, then symbol), so the lengths alone define it.
const HUFFMAN_LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28,
  28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7,
  8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19,
  13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13,
  28, 20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21,
  22, 23, 22, 23, 23, 24, 22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23,
  22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25,
  25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];

/** Canonical codes from the lengths: symbol → code (as a number of `HUFFMAN_LENGTHS[sym]` bits). */
export const HUFFMAN_CODES: number[] = ((): number[] => {
  const order = HUFFMAN_LENGTHS.map((len, sym) => ({ len, sym })).sort(
    (a, b) => a.len - b.len || a.sym - b.sym,
  );
  const codes = new Array<number>(HUFFMAN_LENGTHS.length);
  let code = 0;
  let prevLen = order[0].len;
  for (const { len, sym } of order) {
    code *= 2 ** (len - prevLen);
    prevLen = len;
    codes[sym] = code;
    code += 1;
  }
  return codes;
})();

// Decoding trie: node = [child0, child1]; a leaf is -(sym + 1).
const TRIE: Array<[number, number]> = ((): Array<[number, number]> => {
  const nodes: Array<[number, number]> = [[0, 0]];
  HUFFMAN_LENGTHS.forEach((len, sym) => {
    let n = 0;
    for (let i = len - 1; i >= 0; i--) {
      const bit = Math.floor(HUFFMAN_CODES[sym] / 2 ** i) % 2;
      if (i === 0) {
        nodes[n][bit] = -(sym + 1);
      } else {
        if (nodes[n][bit] === 0) {
          nodes.push([0, 0]);
          nodes[n][bit] = nodes.length - 1;
        }
        n = nodes[n][bit];
      }
    }
  });
  return nodes;
})();

/** Decodes a Huffman-coded string; padding must be at most 7 one-bits (a prefix of EOS). */
export function huffmanDecode(b: Buffer): Buffer {
  const out: number[] = [];
  let n = 0;
  let depth = 0;
  let allOnes = true;
  for (const byte of b) {
    for (let i = 7; i >= 0; i--) {
      const bit = (byte >> i) & 1;
      const next = TRIE[n][bit];
      depth++;
      allOnes = allOnes && bit === 1;
      if (next < 0) {
        const sym = -next - 1;
        if (sym === 256) throw new HpackError('Huffman string contains EOS');
        out.push(sym);
        n = 0;
        depth = 0;
        allOnes = true;
      } else if (next === 0) {
        throw new HpackError('invalid Huffman code');
      } else {
        n = next;
      }
    }
  }
  if (depth > 7 || !allOnes) throw new HpackError('invalid Huffman padding');
  return Buffer.from(out);
}

/** Encodes a string with the Huffman code (for tests that play a client such as grpc-go). */
export function huffmanEncode(s: Buffer): Buffer {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const sym of s) {
    const len = HUFFMAN_LENGTHS[sym];
    const code = HUFFMAN_CODES[sym];
    for (let i = len - 1; i >= 0; i--) {
      acc = (acc << 1) | Math.floor(code / 2 ** i) % 2;
      bits++;
      if (bits === 8) {
        out.push(acc);
        acc = 0;
        bits = 0;
      }
    }
  }
  if (bits > 0) out.push(((acc << (8 - bits)) | ((1 << (8 - bits)) - 1)) & 0xff);
  return Buffer.from(out);
}

/** An HPACK integer with an N-bit prefix; `first` holds the representation's flag bits. */
export function encodeInt(value: number, prefixBits: number, first = 0): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([first | value]);
  const out = [first | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

function encodeString(s: string, huffman: boolean): Buffer {
  const raw = Buffer.from(s, 'latin1');
  const body = huffman ? huffmanEncode(raw) : raw;
  return Buffer.concat([encodeInt(body.length, 7, huffman ? 0x80 : 0), body]);
}

/** A header field as a literal without indexing (or never indexed), new name, no Huffman. */
export function encodeLiteral(f: HeaderField, huffman = false): Buffer {
  return Buffer.concat([
    Buffer.from([f.sensitive ? 0x10 : 0x00]),
    encodeString(f.name, huffman),
    encodeString(f.value, huffman),
  ]);
}

/** A header field as a literal with incremental indexing, new name (tests use it to fill a table). */
export function encodeIndexedLiteral(f: HeaderField, huffman = false): Buffer {
  return Buffer.concat([Buffer.from([0x40]), encodeString(f.name, huffman), encodeString(f.value, huffman)]);
}

/** An indexed header field (index into the static table, then the dynamic one). */
export function encodeIndexed(index: number): Buffer {
  return encodeInt(index, 7, 0x80);
}

export function encodeBlock(fields: HeaderField[]): Buffer {
  return Buffer.concat(fields.map((f) => encodeLiteral(f)));
}

/** Follows one peer's HPACK encoder across the header blocks of a connection. */
export class HpackDecoder {
  private dynamic: Array<[string, string]> = [];
  private size = 0;
  private maxSize: number;

  /** `limit` is the largest table size the peer may switch to (what we let it use). */
  constructor(
    private readonly limit = 65536,
    initial = 4096,
  ) {
    this.maxSize = initial;
  }

  private entry(index: number): [string, string] {
    if (index <= 0) throw new HpackError('header index 0');
    if (index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1];
    const e = this.dynamic[index - STATIC_TABLE.length - 1];
    if (!e) throw new HpackError(`header index ${index} is not in the table`);
    return e;
  }

  private add(name: string, value: string): void {
    const sz = name.length + value.length + 32;
    this.dynamic.unshift([name, value]);
    this.size += sz;
    this.evict();
  }

  private evict(): void {
    while (this.size > this.maxSize && this.dynamic.length > 0) {
      const [n, v] = this.dynamic.pop()!;
      this.size -= n.length + v.length + 32;
    }
  }

  /** Decodes one complete header block. Throws HpackError on malformed input. */
  decode(block: Buffer): HeaderField[] {
    const out: HeaderField[] = [];
    let p = 0;
    const int = (prefixBits: number): number => {
      if (p >= block.length) throw new HpackError('truncated integer');
      const max = (1 << prefixBits) - 1;
      let v = block[p++] & max;
      if (v < max) return v;
      let shift = 0;
      for (;;) {
        if (p >= block.length) throw new HpackError('truncated integer');
        const b = block[p++];
        v += (b & 0x7f) * 2 ** shift;
        shift += 7;
        if (shift > 28) throw new HpackError('integer too large');
        if ((b & 0x80) === 0) return v;
      }
    };
    const str = (): string => {
      if (p >= block.length) throw new HpackError('truncated string');
      const huff = (block[p] & 0x80) !== 0;
      const len = int(7);
      if (p + len > block.length) throw new HpackError('truncated string');
      const raw = block.subarray(p, p + len);
      p += len;
      return (huff ? huffmanDecode(raw) : raw).toString('latin1');
    };
    let fieldSeen = false;
    while (p < block.length) {
      const b = block[p];
      if (b & 0x80) {
        const [name, value] = this.entry(int(7));
        out.push({ name, value });
        fieldSeen = true;
      } else if (b & 0x40) {
        const idx = int(6);
        const name = idx ? this.entry(idx)[0] : str();
        const value = str();
        this.add(name, value);
        out.push({ name, value });
        fieldSeen = true;
      } else if (b & 0x20) {
        if (fieldSeen) throw new HpackError('dynamic table size update after a header field');
        const size = int(5);
        if (size > this.limit) throw new HpackError(`dynamic table size ${size} above ${this.limit}`);
        this.maxSize = size;
        this.evict();
      } else {
        const sensitive = (b & 0x10) !== 0;
        const idx = int(4);
        const name = idx ? this.entry(idx)[0] : str();
        const value = str();
        out.push(sensitive ? { name, value, sensitive } : { name, value });
        fieldSeen = true;
      }
    }
    return out;
  }
}
