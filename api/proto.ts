// Loads Berth's CRI proto for the gRPC server and clients. The options match the ones the types
// in api/generated were generated with (field names as in the proto, int64 as decimal strings,
// enums by name, defaults filled in), so the types describe exactly what arrives on the wire.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from './generated/api';

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
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

let cached: ProtoGrpcType | undefined;

export function loadCri(): ProtoGrpcType {
  if (!cached) {
    const def = protoLoader.loadSync(protoPath(), LOADER_OPTIONS);
    cached = grpc.loadPackageDefinition(def) as unknown as ProtoGrpcType;
  }
  return cached;
}
