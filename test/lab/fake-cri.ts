// Test support for berthctl's unit tests: an in-process gRPC server speaking Berth's CRI proto on
// a temp unix socket. Handlers are set per test; every request is recorded as it arrived on the
// wire (decoded with the same loader options as berthd: enums by name, int64 as strings).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadCri } from '../../api/proto';

export type Req = Record<string, unknown>;
export type Handler = (req: Req) => unknown;

export interface FakeCri {
  endpoint: string;
  dir: string;
  calls: { method: string; req: Req }[];
  /** Sets the handler of a method; a handler may throw `fail(code, msg)`. */
  on(method: string, fn: Handler): void;
  methods(): string[];
  close(): Promise<void>;
}

/** A gRPC error for a handler to throw. */
export function fail(code: grpc.status, details: string): Partial<grpc.ServiceError> {
  return { code, details, message: details };
}

export async function startFakeCri(): Promise<FakeCri> {
  const cri = loadCri();
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'berthctl-fake-'));
  const sock = path.join(dir, 'cri.sock');
  const handlers = new Map<string, Handler>();
  const calls: { method: string; req: Req }[] = [];
  const server = new grpc.Server();
  for (const svc of [cri.runtime.v1.RuntimeService.service, cri.runtime.v1.ImageService.service]) {
    const impl: grpc.UntypedServiceImplementation = {};
    for (const [name, def] of Object.entries(svc)) {
      if (def.requestStream || def.responseStream) continue;
      impl[name] = (callObj: grpc.ServerUnaryCall<Req, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        calls.push({ method: name, req: callObj.request });
        const h = handlers.get(name);
        if (!h) return cb({ code: grpc.status.UNIMPLEMENTED, details: `fake: no handler for ${name}` });
        try {
          cb(null, h(callObj.request));
        } catch (e) {
          cb(e as Partial<grpc.ServiceError>);
        }
      };
    }
    server.addService(svc, impl);
  }
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${sock}`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  return {
    endpoint: `unix://${sock}`,
    dir,
    calls,
    on: (method, fn) => void handlers.set(method, fn),
    methods: () => calls.map((c) => c.method),
    async close() {
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      await fs.promises.rm(dir, { recursive: true, force: true });
    },
  };
}

/** Collects what a command writes. */
export function sink(): { write(s: string): void; text: string } {
  return {
    text: '',
    write(s: string) {
      this.text += s;
    },
  };
}
