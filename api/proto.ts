// Loads Berth's CRI proto for gRPC clients (berthctl, the tests) through @grpc/proto-loader; the
// daemon's server uses api/proto-root.ts instead. The options match the ones the types in
// api/generated were generated with (field names as in the proto, int64 as decimal strings, enums
// by name, defaults filled in), so the types describe exactly what arrives on the wire.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from './generated/api';
import { protoPath } from './proto-root';

export { protoPath };

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
};

let cached: ProtoGrpcType | undefined;

export function loadCri(): ProtoGrpcType {
  if (!cached) {
    const def = protoLoader.loadSync(protoPath(), LOADER_OPTIONS);
    cached = grpc.loadPackageDefinition(def) as unknown as ProtoGrpcType;
  }
  return cached;
}
