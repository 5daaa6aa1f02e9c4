// The CRI proto for the daemon: one protobufjs Root (api/runtime/v1/api.proto, field names as in
// the proto), shared by the gRPC service definitions, the request checks (internal/server/decode.ts)
// and the stream batch sizer. @grpc/proto-loader (api/proto.ts, for clients) is not loaded here:
// it parses the proto into a second Root and keeps a descriptor object for every message type,
// which cost berthd ~4 MB of RSS for nothing the server uses.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as protobuf from 'protobufjs';
import type * as grpc from '@grpc/grpc-js';

/** The toObject options the types in api/generated describe (and api/proto.ts's LOADER_OPTIONS). */
export const CONVERSION: protobuf.IConversionOptions = {
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

/** api/runtime/v1/api.proto, found from this file whether it runs from source or from dist/. */
export function protoPath(): string {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    const p = path.join(dir, 'runtime', 'v1', 'api.proto');
    if (fs.existsSync(p)) return p;
    const q = path.join(dir, 'api', 'runtime', 'v1', 'api.proto');
    if (fs.existsSync(q)) return q;
    dir = path.dirname(dir);
  }
  throw new Error('cannot find api/runtime/v1/api.proto next to the Berth installation');
}

let root: protobuf.Root | undefined;

/** The CRI proto, parsed once and resolved (keepCase: field names as in the proto). */
export function criRoot(): protobuf.Root {
  if (!root) {
    root = new protobuf.Root().loadSync(protoPath(), { keepCase: true });
    root.resolveAll();
  }
  return root;
}

/** A method's definition as grpc-js's Server.addService reads it. */
export interface CriMethod extends grpc.MethodDefinition<unknown, unknown> {
  /** the request message's type (for decode.ts's wire check) */
  requestTypeName: string;
}

/** The first letter lower-cased: grpc-js's alternative handler name (proto-loader's camelCase). */
export function originalName(method: string): string {
  return method.charAt(0).toLowerCase() + method.slice(1);
}

/**
 * `runtime.v1.<service>`'s methods with the (de)serializers proto-loader would make: encode after
 * fromObject, decode then toObject with CONVERSION.
 */
export function criService(service: 'RuntimeService' | 'ImageService'): Record<string, CriMethod> {
  const svc = criRoot().lookupService(`runtime.v1.${service}`);
  const out: Record<string, CriMethod> = {};
  for (const m of svc.methodsArray) {
    m.resolve();
    const req = m.resolvedRequestType!;
    const res = m.resolvedResponseType!;
    out[m.name] = {
      path: `/runtime.v1.${service}/${m.name}`,
      requestStream: !!m.requestStream,
      responseStream: !!m.responseStream,
      requestSerialize: serializer(req),
      requestDeserialize: deserializer(req),
      responseSerialize: serializer(res),
      responseDeserialize: deserializer(res),
      originalName: originalName(m.name),
      requestTypeName: req.name,
    };
  }
  return out;
}

function serializer(t: protobuf.Type): (v: unknown) => Buffer {
  return (v) => {
    if (Array.isArray(v)) throw new Error(`Failed to serialize message: expected ${t.name}, got an array`);
    // in Node protobufjs writes with its BufferWriter: finish() is a Buffer (no copy)
    return t.encode(t.fromObject(v as Record<string, unknown>)).finish() as Buffer;
  };
}

function deserializer(t: protobuf.Type): (b: Buffer) => unknown {
  return (b) => t.toObject(t.decode(b), CONVERSION);
}
