// A typed CRI client over a unix socket, for berthctl and the tests. Unary calls are promisified.
import * as grpc from '@grpc/grpc-js';
import { loadCri } from './proto';
import type { RuntimeServiceClient } from './generated/runtime/v1/RuntimeService';
import type { ImageServiceClient } from './generated/runtime/v1/ImageService';

export interface CriClients {
  runtime: RuntimeServiceClient;
  image: ImageServiceClient;
  close(): void;
}

export function endpointToTarget(endpoint: string): string {
  if (endpoint.startsWith('unix://')) return `unix:${endpoint.slice('unix://'.length)}`;
  if (endpoint.startsWith('unix:')) return endpoint;
  if (endpoint.startsWith('/')) return `unix:${endpoint}`;
  throw new Error(`endpoint must be a unix socket path or unix:// URL, got ${endpoint}`);
}

/** Clients of the runtime service on `endpoint` and of the image service on `imageEndpoint` (default: the same). */
export function connect(endpoint: string, imageEndpoint = endpoint): CriClients {
  const cri = loadCri();
  const target = endpointToTarget(endpoint);
  const imageTarget = endpointToTarget(imageEndpoint);
  const opts = { 'grpc.max_receive_message_length': 64 * 1024 * 1024 };
  const runtime = new cri.runtime.v1.RuntimeService(target, grpc.credentials.createInsecure(), opts);
  const image = new cri.runtime.v1.ImageService(imageTarget, grpc.credentials.createInsecure(), opts);
  return {
    runtime,
    image,
    close() {
      runtime.close();
      image.close();
    },
  };
}

// The generated client methods are overloaded; type inference sees the last overload, which is
// (request, callback).
type UnaryMethod<Req, Res> = (req: Req, cb: grpc.requestCallback<Res>) => grpc.ClientUnaryCall;
type FullUnary = (
  req: unknown,
  meta: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: grpc.requestCallback<unknown>,
) => grpc.ClientUnaryCall;

/**
 * Calls a unary method and resolves with its response: `await call(c.image, 'PullImage', req)`.
 * `timeoutMs` sets the gRPC deadline.
 */
export function call<C extends grpc.Client, M extends keyof C & string>(
  client: C,
  method: M,
  req: C[M] extends UnaryMethod<infer Req, infer _Res> ? Req : never,
  timeoutMs?: number,
): Promise<C[M] extends UnaryMethod<infer _Req, infer Res> ? Res : never> {
  return new Promise((resolve, reject) => {
    const opts: grpc.CallOptions = timeoutMs ? { deadline: Date.now() + timeoutMs } : {};
    const fn = client[method] as unknown as FullUnary;
    fn.call(client, req, new grpc.Metadata(), opts, (err, res) => {
      if (err) reject(err);
      else resolve(res as never);
    });
  });
}
