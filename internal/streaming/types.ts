// What the CRI handlers hand the streaming server: a fully resolved request, checked at RPC time,
// kept behind a single-use token until the client connects.
import type { Logger } from '../log';

export interface ExecTarget {
  kind: 'exec';
  containerId: string;
  cmd: string[];
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  /** runc binary and --root of the container's runtime handler */
  runtimePath: string;
  runtimeRoot: string;
  /** the container's OCI bundle (config.json gives the process to derive from) */
  bundle: string;
}

export interface AttachTarget {
  kind: 'attach';
  containerId: string;
  tty: boolean;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  /** conmon's SOCK_SEQPACKET attach socket */
  attachSocket: string;
  /** conmon's control FIFO (resize messages) */
  ctlFifo: string;
}

export interface PortForwardTarget {
  kind: 'portforward';
  podId: string;
  /** pinned network namespace of the pod; undefined for a host-network pod */
  netnsPath?: string;
  /** ports from the CRI request (WebSocket clients may name them in ?ports= instead) */
  ports: number[];
}

export type StreamTarget = ExecTarget | AttachTarget | PortForwardTarget;

export interface StreamingOptions {
  address: string;
  port: number;
  tlsCert?: string;
  tlsKey?: string;
  idleTimeoutSeconds: number;
  /** Where exec process specs are written (mode 0700). */
  workDir: string;
  log: Logger;
  /** How long an unused token stays valid (default 60 s; tests shorten it). */
  tokenTtlMs?: number;
  /** How long to wait for the client's SPDY streams after the upgrade (default 30 s). */
  streamCreationTimeoutMs?: number;
}

/** Where a runtime handler's runc and conmon files are (built by the daemon from its config). */
export interface RuntimeLocation {
  runtimePath: string;
  runtimeRoot: string;
  attachSocket(containerId: string): string;
}

/** What the CRI Exec/Attach/PortForward handlers need. */
export interface StreamingDeps {
  server: {
    requestExec(t: Omit<ExecTarget, 'kind'>): string;
    requestAttach(t: Omit<AttachTarget, 'kind'>): string;
    requestPortForward(t: Omit<PortForwardTarget, 'kind'>): string;
  };
  runtime(handler: string): RuntimeLocation | undefined;
}
