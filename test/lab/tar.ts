// A small ustar/pax tar writer for building test layers. Written by hand (not tar-stream) so tests
// get exact control: names go out verbatim (hostile '../x' or '/abs' included), mode 0 stays 0,
// and output is byte-for-byte reproducible for the same entries.
import { gzipSync } from 'node:zlib';

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarEntry {
  path: string;
  type?: TarEntryType;
  content?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  mtime?: Date;
  /** extra pax records, e.g. { 'SCHILY.xattr.user.foo': 'bar' } */
  pax?: Record<string, string>;
}

/** Default mtime for entries without one, so layers are reproducible. */
export const LAB_MTIME = new Date('2024-01-01T00:00:00Z');

const BLOCK = 512;
const TYPEFLAG: Record<TarEntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  dir: '5',
  fifo: '6',
};
// Largest value an octal ustar numeric field of `width` bytes holds (width-1 digits + NUL).
const octalMax = (width: number): number => 8 ** (width - 1) - 1;

function defaultMode(type: TarEntryType): number {
  switch (type) {
    case 'dir':
      return 0o755;
    case 'symlink':
      return 0o777;
    default:
      return 0o644;
  }
}

function writeOctal(buf: Buffer, offset: number, width: number, value: number): void {
  buf.write(value.toString(8).padStart(width - 1, '0') + '\0', offset, width, 'ascii');
}

/** One pax record: "<len> <key>=<value>\n" where <len> counts the whole record, itself included. */
function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let len = bodyLen + 1;
  while (String(len).length + bodyLen !== len) len = String(len).length + bodyLen;
  return Buffer.from(`${len}${body}`, 'utf8');
}

function padBlock(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
}

interface HeaderFields {
  name: string;
  prefix: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  devmajor: number;
  devminor: number;
}

function encodeHeader(h: HeaderFields): Buffer {
  const buf = Buffer.alloc(BLOCK);
  buf.write(h.name, 0, 100, 'utf8');
  writeOctal(buf, 100, 8, h.mode);
  writeOctal(buf, 108, 8, h.uid);
  writeOctal(buf, 116, 8, h.gid);
  writeOctal(buf, 124, 12, h.size);
  writeOctal(buf, 136, 12, h.mtime);
  buf.write('        ', 148, 8, 'ascii'); // checksum is computed with this field as spaces
  buf.write(h.typeflag, 156, 1, 'ascii');
  buf.write(h.linkname, 157, 100, 'utf8');
  buf.write('ustar\0', 257, 6, 'ascii');
  buf.write('00', 263, 2, 'ascii');
  writeOctal(buf, 329, 8, h.devmajor);
  writeOctal(buf, 337, 8, h.devminor);
  buf.write(h.prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of buf) sum += b;
  buf.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return buf;
}

/** Splits a long name into ustar prefix/name at a '/', or returns undefined when it cannot fit. */
function splitUstarName(name: string): { prefix: string; name: string } | undefined {
  if (Buffer.byteLength(name) <= 100) return { prefix: '', name };
  for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest.length > 0) {
      return { prefix, name: rest };
    }
  }
  return undefined;
}

function encodeEntry(e: TarEntry): Buffer[] {
  const type = e.type ?? 'file';
  const content =
    type === 'file'
      ? typeof e.content === 'string'
        ? Buffer.from(e.content, 'utf8')
        : (e.content ?? Buffer.alloc(0))
      : Buffer.alloc(0);
  const mtime = Math.floor((e.mtime ?? LAB_MTIME).getTime() / 1000);
  const uid = e.uid ?? 0;
  const gid = e.gid ?? 0;
  const linkname = e.linkname ?? '';

  // Whatever ustar cannot hold exactly goes into a pax extended header before the entry.
  const pax: [string, string][] = [];
  let split = splitUstarName(e.path);
  if (!split) {
    pax.push(['path', e.path]);
    split = { prefix: '', name: Buffer.from(e.path, 'utf8').subarray(0, 100).toString('utf8') };
  }
  if (Buffer.byteLength(linkname) > 100) pax.push(['linkpath', linkname]);
  if (uid > octalMax(8)) pax.push(['uid', String(uid)]);
  if (gid > octalMax(8)) pax.push(['gid', String(gid)]);
  if (content.length > octalMax(12)) pax.push(['size', String(content.length)]);
  for (const [k, v] of Object.entries(e.pax ?? {})) pax.push([k, v]);

  const out: Buffer[] = [];
  if (pax.length > 0) {
    const body = Buffer.concat(pax.map(([k, v]) => paxRecord(k, v)));
    out.push(
      encodeHeader({
        name: 'PaxHeaders/' + split.name.slice(0, 80),
        prefix: '',
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: body.length,
        mtime,
        typeflag: 'x',
        linkname: '',
        devmajor: 0,
        devminor: 0,
      }),
      body,
      Buffer.alloc(padBlock(body.length)),
    );
  }
  out.push(
    encodeHeader({
      name: split.name,
      prefix: split.prefix,
      mode: (e.mode ?? defaultMode(type)) & 0o7777,
      uid: Math.min(uid, octalMax(8)),
      gid: Math.min(gid, octalMax(8)),
      size: content.length,
      mtime,
      typeflag: TYPEFLAG[type],
      linkname: Buffer.from(linkname, 'utf8').subarray(0, 100).toString('utf8'),
      devmajor: e.devmajor ?? 0,
      devminor: e.devminor ?? 0,
    }),
  );
  if (content.length > 0) out.push(content, Buffer.alloc(padBlock(content.length)));
  return out;
}

/** Builds an uncompressed tar of `entries`, in order, ending with the two zero blocks. */
export async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  return makeTarSync(entries);
}

export function makeTarSync(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) parts.push(...encodeEntry(e));
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

/** gzip with Node's fixed header (mtime 0), so the same input gives the same bytes. */
export function gzipBuffer(b: Buffer): Buffer {
  return gzipSync(b, { level: 6 });
}

/** The OCI whiteout entry that deletes `path` ('a/b' → 'a/.wh.b') in a layer. */
export function whiteout(path: string): TarEntry {
  const p = path.replace(/\/+$/, '');
  const i = p.lastIndexOf('/');
  return { path: `${p.slice(0, i + 1)}.wh.${p.slice(i + 1)}`, content: '' };
}

/** The OCI opaque whiteout for `dir`: hides everything lower layers put in it. */
export function opaqueWhiteout(dir: string): TarEntry {
  return { path: `${dir.replace(/\/+$/, '')}/.wh..wh..opq`, content: '' };
}
