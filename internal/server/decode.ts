// Requests the server cannot decode answer INVALID_ARGUMENT ("cannot decode ExecSyncRequest: ..."),
// not grpc-js's INTERNAL "Error deserializing request". Every method's deserializer is wrapped:
// the bytes are first checked against the message's schema (every tag's wire type, every length
// and varint within bounds, strings UTF-8, nested messages and map entries recursively; unknown
// fields of any valid wire type pass), since protobufjs decodes many malformed inputs into
// garbage without a word; a failure becomes a DecodeFailure value the handler wrappers answer.
import * as protobuf from 'protobufjs';
import type * as grpc from '@grpc/grpc-js';
import { criRoot } from '../../api/proto-root';

/** What a wrapped deserializer returns for bytes it cannot decode. */
export class DecodeFailure {
  constructor(
    readonly typeName: string,
    readonly reason: string,
  ) {}

  get message(): string {
    return `cannot decode ${this.typeName}: ${this.reason}`;
  }
}

class WireError extends Error {}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The wire type a field's values use (2 for strings, bytes, messages, maps). */
function wireTypeOf(f: protobuf.Field): number {
  if (f.map) return 2;
  const basic = (protobuf.types.basic as Record<string, number | undefined>)[f.type];
  if (basic !== undefined && basic !== 2) return basic;
  if (f.resolvedType instanceof protobuf.Enum) return 0;
  return 2;
}

function readVarint(b: Buffer, p: number, end: number): [number, number] {
  let v = 0;
  for (let i = 0; i < 10; i++) {
    if (p >= end) throw new WireError(`truncated varint at offset ${p}`);
    const byte = b[p++];
    if (i < 7) v += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return [v, p];
  }
  throw new WireError(`varint longer than 10 bytes at offset ${p}`);
}

/** Skips one value of wire type `wt` at `p`; returns the offset after it and, for type 2, its bounds. */
function skipValue(b: Buffer, p: number, end: number, wt: number): { next: number; start: number } {
  switch (wt) {
    case 0:
      return { next: readVarint(b, p, end)[1], start: p };
    case 1:
      if (p + 8 > end) throw new WireError(`truncated 64-bit value at offset ${p}`);
      return { next: p + 8, start: p };
    case 5:
      if (p + 4 > end) throw new WireError(`truncated 32-bit value at offset ${p}`);
      return { next: p + 4, start: p };
    case 2: {
      const [len, q] = readVarint(b, p, end);
      if (q + len > end) throw new WireError(`length ${len} at offset ${p} runs past the end`);
      return { next: q + len, start: q };
    }
    default:
      throw new WireError(`invalid wire type ${wt} at offset ${p}`);
  }
}

function checkScalar(b: Buffer, start: number, end: number, type: string, where: string): void {
  if (type === 'string') {
    try {
      utf8.decode(b.subarray(start, end));
    } catch {
      throw new WireError(`${where}: not valid UTF-8`);
    }
  }
}

/** Throws WireError unless `b[start, end)` is a well-formed encoding of `type`. */
export function checkWire(type: protobuf.Type, b: Buffer, start = 0, end = b.length, path = ''): void {
  let p = start;
  while (p < end) {
    const tagAt = p;
    const [tag, q] = readVarint(b, p, end);
    const id = Math.floor(tag / 8);
    const wt = tag % 8;
    if (id === 0) throw new WireError(`field number 0 at offset ${tagAt}`);
    const f = type.fieldsById[id];
    const { next, start: vs } = skipValue(b, q, end, wt);
    if (f) {
      const where = `${path}${f.name}`;
      const want = wireTypeOf(f);
      const packed = f.repeated && want !== 2 && wt === 2;
      if (wt !== want && !packed)
        throw new WireError(`field ${where} (${f.type}) has wire type ${wt}, expected ${want}`);
      if (packed) {
        for (let r = vs; r < next; ) r = skipValue(b, r, next, want).next;
      } else if (f.map) {
        checkMapEntry(f as unknown as protobuf.MapField, b, vs, next, where);
      } else if (wt === 2) {
        if (f.resolvedType instanceof protobuf.Type) checkWire(f.resolvedType, b, vs, next, `${where}.`);
        else checkScalar(b, vs, next, f.type, where);
      }
    }
    p = next;
  }
}

function checkMapEntry(f: protobuf.MapField, b: Buffer, start: number, end: number, where: string): void {
  let p = start;
  while (p < end) {
    const [tag, q] = readVarint(b, p, end);
    const id = Math.floor(tag / 8);
    const wt = tag % 8;
    const { next, start: vs } = skipValue(b, q, end, wt);
    const t = id === 1 ? f.keyType : id === 2 ? f.type : undefined;
    if (t !== undefined) {
      const basic = (protobuf.types.basic as Record<string, number | undefined>)[t];
      const want = basic !== undefined ? basic : id === 2 && f.resolvedType instanceof protobuf.Enum ? 0 : 2;
      if (wt !== want)
        throw new WireError(`map ${where} entry field ${id} has wire type ${wt}, expected ${want}`);
      if (wt === 2) {
        if (id === 2 && f.resolvedType instanceof protobuf.Type)
          checkWire(f.resolvedType, b, vs, next, `${where}.`);
        else checkScalar(b, vs, next, t, `${where}`);
      }
    }
    p = next;
  }
}

interface MethodWithType {
  requestDeserialize: grpc.deserialize<unknown>;
  /** api/proto-root.ts's definitions name the request type here */
  requestTypeName?: string;
  /** proto-loader's (api/proto.ts) here */
  requestType?: { type?: { name?: string } };
  path: string;
}

/**
 * The service definition with every request deserializer checking the bytes first and returning
 * a DecodeFailure (never throwing) when they are not a well-formed request.
 */
export function strictService<S extends grpc.ServiceDefinition>(service: S, pkg = 'runtime.v1'): S {
  const out: Record<string, unknown> = {};
  for (const [name, def] of Object.entries(service)) {
    const m = def as unknown as MethodWithType;
    const typeName = m.requestTypeName ?? m.requestType?.type?.name ?? `${name}Request`;
    const type = criRoot().lookupType(`${pkg}.${typeName}`);
    const decode = m.requestDeserialize;
    out[name] = {
      ...def,
      requestDeserialize: (buf: Buffer): unknown => {
        try {
          checkWire(type, buf);
          return decode(buf);
        } catch (err) {
          return new DecodeFailure(typeName, err instanceof Error ? err.message : String(err));
        }
      },
    };
  }
  return out as S;
}
