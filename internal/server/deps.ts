// What the CRI handlers are given: the parts of the daemon, each behind its narrow interface.
// cmd/berthd builds one of these; tests can build one with real parts in temp dirs.
import type { Config } from '../config/config';
import type { Logger } from '../log';
import type { ImageStore } from '../image/types';
import type { SandboxService } from '../sandbox/service';
import type { ContainerService } from '../container/service';
import type { StreamingDeps } from '../streaming/types';
import type { StatsService } from '../stats/service';
import type { RuntimeFeatures } from '../oci/spec';
import type { PodCidrStore } from '../network/pod-cidr';
import type { LoopHealthReport } from '../util/loop-health';

export interface NetworkStatusSource {
  status(): { ready: boolean; reason?: string; message?: string };
}

export interface ServerDeps {
  config: Config;
  log: Logger;
  images: ImageStore;
  /** CNI readiness; absent until networking is wired in, which reports NetworkReady false. */
  network?: NetworkStatusSource;
  /** berthd's own version string (package.json). */
  version: string;
  sandboxes: SandboxService;
  containers: ContainerService;
  /** container and pod stats and metrics (internal/stats) */
  stats: StatsService;
  /** per runtime handler, what its binary supports (Status lists them) */
  handlerFeatures?: Map<string, RuntimeFeatures>;
  /** the pod CIDR from UpdateRuntimeConfig, persisted and handed to CNI */
  podCidr?: PodCidrStore;
  /** Exec/Attach/PortForward URLs; absent when the streaming server is not running. */
  streaming?: StreamingDeps;
  /** event-loop delay and utilisation (Status verbose `eventLoop`) */
  loopHealth?: { report(): LoopHealthReport };
  /** per runtime handler, how ExecSyncs ran: berth-exec or the runtime binary (Status verbose `exec`) */
  execStats?: () => Record<string, { native: number; runtime: number }>;
  /** where lifecycle RPCs spent their time, per RPC and step (Status verbose `phases`) */
  phases?: () => Record<string, Record<string, { n: number; p50: number; p90: number; max: number }>>;
}
