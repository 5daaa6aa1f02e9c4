// Assembles the CRI RuntimeService and ImageService from the per-RPC handler files and serves them
// on the daemon's unix socket. Every RPC of CRI runtime.v1 has a handler (see the README's
// "Status of the CRI" table for what each does on this host).
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { criService } from '../../api/proto-root';
import type { ImageServiceHandlers } from '../../api/generated/runtime/v1/ImageService';
import type { RuntimeServiceHandlers } from '../../api/generated/runtime/v1/RuntimeService';
import type { ServerDeps } from './deps';
import { decodedStream, unary, type Handler } from './rpc';
import { strictService } from './decode';
import { prepareSocketPath } from './listen';
import { listenUnix } from './unix_listener';
import { version } from './runtime_version';
import { status } from './runtime_status';
import { runtimeConfig } from './runtime_config';
import { pullImage } from './image_pull';
import { imageStatus } from './image_status';
import { listImages } from './image_list';
import { removeImage } from './image_remove';
import { imageFsInfo } from './image_fs_info';
import { runPodSandbox } from './sandbox_run';
import { stopPodSandbox } from './sandbox_stop';
import { removePodSandbox } from './sandbox_remove';
import { podSandboxStatus } from './sandbox_status';
import { listPodSandbox } from './sandbox_list';
import { createContainer } from './container_create';
import { startContainer } from './container_start';
import { stopContainer } from './container_stop';
import { removeContainer } from './container_remove';
import { containerStatus } from './container_status';
import { listContainers } from './container_list';
import { execSync } from './container_exec_sync';
import { reopenContainerLog } from './container_reopen_log';
import { exec } from './container_exec';
import { attach } from './container_attach';
import { portForward } from './pod_port_forward';
import { updateContainerResources } from './container_update';
import { updateRuntimeConfig } from './runtime_config_update';
import { checkpointContainer } from './container_checkpoint';
import { getContainerEvents } from './container_events';
import { containerStats } from './container_stats';
import { listContainerStats } from './container_stats_list';
import { podSandboxStats } from './sandbox_stats';
import { listPodSandboxStats } from './sandbox_stats_list';
import { listMetricDescriptors } from './metric_descriptors_list';
import { listPodSandboxMetrics } from './sandbox_metrics_list';
import { streamPodSandboxes } from './sandbox_stream';
import { streamContainers } from './container_stream';
import { streamContainerStats } from './container_stats_stream';
import { streamPodSandboxStats } from './sandbox_stats_stream';
import { streamPodSandboxMetrics } from './sandbox_metrics_stream';
import { streamImages } from './image_stream';
import { checkpointPod } from './pod_checkpoint';
import { restorePod } from './pod_restore';
import { updatePodSandboxResources } from './sandbox_update_resources';

type Unary = grpc.handleUnaryCall<never, never>;

export function runtimeHandlers(deps: ServerDeps): RuntimeServiceHandlers {
  const log = deps.log.child({ component: 'cri' });
  const u = <Req, Res>(name: string, fn: Handler<Req, Res>): Unary =>
    unary(log, name, fn) as unknown as Unary;
  return {
    Version: u('Version', version(deps)),
    Status: u('Status', status(deps)),
    RuntimeConfig: u('RuntimeConfig', runtimeConfig(deps)),
    RunPodSandbox: u('RunPodSandbox', runPodSandbox(deps)),
    StopPodSandbox: u('StopPodSandbox', stopPodSandbox(deps)),
    RemovePodSandbox: u('RemovePodSandbox', removePodSandbox(deps)),
    PodSandboxStatus: u('PodSandboxStatus', podSandboxStatus(deps)),
    ListPodSandbox: u('ListPodSandbox', listPodSandbox(deps)),
    CreateContainer: u('CreateContainer', createContainer(deps)),
    StartContainer: u('StartContainer', startContainer(deps)),
    StopContainer: u('StopContainer', stopContainer(deps)),
    RemoveContainer: u('RemoveContainer', removeContainer(deps)),
    ListContainers: u('ListContainers', listContainers(deps)),
    ContainerStatus: u('ContainerStatus', containerStatus(deps)),
    UpdateContainerResources: u('UpdateContainerResources', updateContainerResources(deps)),
    ReopenContainerLog: u('ReopenContainerLog', reopenContainerLog(deps)),
    ExecSync: u('ExecSync', execSync(deps)),
    Exec: u('Exec', exec(deps)),
    Attach: u('Attach', attach(deps)),
    PortForward: u('PortForward', portForward(deps)),
    ContainerStats: u('ContainerStats', containerStats(deps)),
    ListContainerStats: u('ListContainerStats', listContainerStats(deps)),
    PodSandboxStats: u('PodSandboxStats', podSandboxStats(deps)),
    ListPodSandboxStats: u('ListPodSandboxStats', listPodSandboxStats(deps)),
    UpdateRuntimeConfig: u('UpdateRuntimeConfig', updateRuntimeConfig(deps)),
    CheckpointContainer: u('CheckpointContainer', checkpointContainer(deps)),
    GetContainerEvents: decodedStream(log, 'GetContainerEvents', getContainerEvents(deps)),
    ListMetricDescriptors: u('ListMetricDescriptors', listMetricDescriptors(deps)),
    ListPodSandboxMetrics: u('ListPodSandboxMetrics', listPodSandboxMetrics(deps)),
    StreamPodSandboxes: decodedStream(log, 'StreamPodSandboxes', streamPodSandboxes(deps)),
    StreamContainers: decodedStream(log, 'StreamContainers', streamContainers(deps)),
    StreamContainerStats: decodedStream(log, 'StreamContainerStats', streamContainerStats(deps)),
    StreamPodSandboxStats: decodedStream(log, 'StreamPodSandboxStats', streamPodSandboxStats(deps)),
    StreamPodSandboxMetrics: decodedStream(log, 'StreamPodSandboxMetrics', streamPodSandboxMetrics(deps)),
    CheckpointPod: u('CheckpointPod', checkpointPod(deps)),
    RestorePod: u('RestorePod', restorePod(deps)),
    UpdatePodSandboxResources: u('UpdatePodSandboxResources', updatePodSandboxResources(deps)),
  } as RuntimeServiceHandlers;
}

export function imageHandlers(deps: ServerDeps): ImageServiceHandlers {
  const log = deps.log.child({ component: 'cri' });
  const u = <Req, Res>(name: string, fn: Handler<Req, Res>): Unary =>
    unary(log, name, fn) as unknown as Unary;
  return {
    PullImage: u('PullImage', pullImage(deps)),
    ImageStatus: u('ImageStatus', imageStatus(deps)),
    ListImages: u('ListImages', listImages(deps)),
    RemoveImage: u('RemoveImage', removeImage(deps)),
    ImageFsInfo: u('ImageFsInfo', imageFsInfo(deps)),
    StreamImages: decodedStream(log, 'StreamImages', streamImages(deps)),
  } as ImageServiceHandlers;
}

export interface RunningServer {
  server: grpc.Server;
  socket: string;
  /** Stops accepting calls, lets running ones finish for up to `graceMs`, removes the socket. */
  close(graceMs?: number): Promise<void>;
}

export async function serve(deps: ServerDeps): Promise<RunningServer> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  });
  // strictService: undecodable requests reach the handlers as DecodeFailure (INVALID_ARGUMENT)
  server.addService(strictService(criService('RuntimeService')), runtimeHandlers(deps));
  server.addService(strictService(criService('ImageService')), imageHandlers(deps));
  const socket = deps.config.socket;
  await prepareSocketPath(socket);
  // Berth accepts the socket's connections itself so that any :authority gets through (h2_authority.ts)
  const listener = await listenUnix(server, socket, (err) =>
    deps.log.info('closed a connection that is not HTTP/2', { error: err.message }),
  );
  fs.chmodSync(socket, 0o660);
  return {
    server,
    socket,
    close: (graceMs = 5000) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(() => server.forceShutdown(), graceMs);
        void listener.close();
        server.tryShutdown(() => {
          clearTimeout(t);
          fs.rmSync(socket, { force: true });
          resolve();
        });
      }),
  };
}
