// The parts the pod and container state machines drive. Built once by internal/daemon.ts.
import type { PhaseStats } from '../util/phases';
import type { Config } from '../config/config';
import type { Logger } from '../log';
import type { ImageStore } from '../image/types';
import type { Snapshotter } from '../snapshot/types';
import type { OciRuntime } from '../runtime';
import type { CniManager } from '../network/cni';
import type { NetnsManager } from '../network/netns';
import type { HostFacts, RuntimeFeatures } from '../oci/spec';
import { invalidArgument, short } from '../errors';

export interface CoreDeps {
  config: Config;
  log: Logger;
  images: ImageStore;
  snapshotter: Snapshotter;
  /** one driver per configured runtime handler */
  runtimes: Map<string, OciRuntime>;
  network: CniManager;
  netns: NetnsManager;
  host: HostFacts;
  /** host-wide features (cgroup swap, hugetlb); the default for a handler without its own entry */
  features: RuntimeFeatures;
  /** per runtime handler: the host-wide features plus what that runtime binary supports (rro) */
  handlerFeatures?: Map<string, RuntimeFeatures>;
  /** where lifecycle RPCs spend their time (Status verbose `phases`, benchmarks) */
  phases?: PhaseStats;
}

/** The features the spec builder may use for containers of runtime handler `handler`. */
export function featuresFor(deps: CoreDeps, handler: string): RuntimeFeatures {
  return deps.handlerFeatures?.get(handler) ?? deps.features;
}

/** The runtime driver for a handler name ('' = the default handler). */
export function runtimeFor(deps: CoreDeps, handler: string): { name: string; runtime: OciRuntime } {
  const name = handler || deps.config.runtime.default_runtime;
  const runtime = deps.runtimes.get(name);
  if (!runtime)
    throw invalidArgument(
      `runtime handler ${short(name)} is not configured (configured: ${[...deps.runtimes.keys()].join(', ')})`,
    );
  return { name, runtime };
}
