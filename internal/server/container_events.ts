// GetContainerEvents: a server stream of container lifecycle events for kubelet's evented PLEG,
// the pod sandboxes' own included (container_id = sandbox id, as containerd sends them).
// One listener on the container and sandbox services builds each response once (pod status and the pod's
// container statuses as they are at that moment) and fans it out. Each subscriber has a bounded
// queue: a client that stops reading is dropped with RESOURCE_EXHAUSTED instead of holding the
// daemon's memory; nothing a subscriber does can block the emitter.
import type { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import type { ContainerEventResponse, GetEventsRequest__Output } from '../../api/generated';
import type { ContainerEvent } from '../container/service';
import { Status } from '../errors';
import type { Logger } from '../log';
import type { ServerDeps } from './deps';
import { toContainerStatus, toPodSandboxStatus } from './convert';

/** Events a subscriber may fall behind by before its stream is ended. */
export const EVENT_BUFFER = 1000;

/** The part of a grpc server stream a subscriber uses (a Node Writable in object mode). */
export interface EventStream {
  write(msg: ContainerEventResponse): boolean;
  once(event: 'drain', fn: () => void): unknown;
  emit(event: 'error', err: Partial<grpc.StatusObject>): boolean;
}

class Subscriber {
  private readonly queue: ContainerEventResponse[] = [];
  private waiting = false;
  closed = false;

  constructor(
    private readonly stream: EventStream,
    private readonly limit: number,
    private readonly onOverflow: () => void,
  ) {}

  push(msg: ContainerEventResponse): void {
    if (this.closed) return;
    if (this.waiting) {
      if (this.queue.length >= this.limit) return this.overflow();
      this.queue.push(msg);
      return;
    }
    if (!this.stream.write(msg)) this.waitDrain();
  }

  private waitDrain(): void {
    this.waiting = true;
    this.stream.once('drain', () => this.flush());
  }

  private flush(): void {
    this.waiting = false;
    while (!this.closed && this.queue.length) {
      if (!this.stream.write(this.queue.shift()!)) return this.waitDrain();
    }
  }

  private overflow(): void {
    this.closed = true;
    this.queue.length = 0;
    this.onOverflow();
    const details = `container event stream fell more than ${this.limit} events behind; reconnect and relist`;
    // ends the call with this status once what is already written has been read
    this.stream.emit('error', { code: Status.RESOURCE_EXHAUSTED, details });
  }
}

/** Fans events of `sources` ('event' with a ContainerEvent) out to subscribers. */
export class ContainerEventHub {
  private readonly subs = new Set<Subscriber>();
  private readonly listener = (e: ContainerEvent): void => {
    if (this.subs.size === 0) return;
    let msg: ContainerEventResponse;
    try {
      msg = this.build(e);
    } catch (err) {
      this.log.warn('building a container event failed', { id: e.containerId, error: String(err) });
      return;
    }
    for (const s of this.subs) s.push(msg);
  };

  constructor(
    private readonly sources: EventEmitter[],
    private readonly build: (e: ContainerEvent) => ContainerEventResponse,
    private readonly log: Logger,
    private readonly limit = EVENT_BUFFER,
  ) {}

  get size(): number {
    return this.subs.size;
  }

  /** Adds a subscriber; the returned function removes it (idempotent). */
  subscribe(stream: EventStream): () => void {
    const sub = new Subscriber(stream, this.limit, () => remove());
    const remove = (): void => {
      sub.closed = true;
      this.subs.delete(sub);
      if (this.subs.size === 0) for (const s of this.sources) s.off('event', this.listener);
    };
    if (this.subs.size === 0) for (const s of this.sources) s.on('event', this.listener);
    this.subs.add(sub);
    return remove;
  }
}

/** The CRI message of an event: the pod's status and all its containers' statuses right now. */
export function eventResponse(deps: ServerDeps, e: ContainerEvent): ContainerEventResponse {
  const pod = e.pod ?? deps.sandboxes.get(e.podId);
  return {
    container_id: e.containerId,
    container_event_type: e.type,
    created_at: e.createdAt,
    pod_sandbox_status: pod ? toPodSandboxStatus(pod) : undefined,
    containers_statuses: deps.containers
      .list({ podId: e.podId })
      .filter((r) => r.podId === e.podId)
      .map(toContainerStatus),
  };
}

export function getContainerEvents(
  deps: ServerDeps,
): grpc.handleServerStreamingCall<GetEventsRequest__Output, ContainerEventResponse> {
  const log = deps.log.child({ component: 'events' });
  const hub = new ContainerEventHub(
    [deps.containers.events, deps.sandboxes.events],
    (e) => eventResponse(deps, e),
    log,
  );
  return (call) => {
    const remove = hub.subscribe(call);
    log.debug('event subscriber joined', { subscribers: hub.size });
    const leave = (): void => {
      remove();
      log.debug('event subscriber left', { subscribers: hub.size });
    };
    call.on('cancelled', leave);
    call.on('close', leave);
    call.on('finish', leave);
  };
}
