// Assembles the CRI RuntimeService and ImageService from the per-RPC handler files and serves them
// on the daemon's unix socket. An RPC whose feature is not built yet answers UNIMPLEMENTED with a
// message saying so (see the README's "Status of the CRI" table).
import * as fs from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { loadCri } from '../../api/proto';
import type { ImageServiceHandlers } from '../../api/generated/runtime/v1/ImageService';
import type { RuntimeServiceHandlers } from '../../api/generated/runtime/v1/RuntimeService';
import { Status } from '../errors';
import type { ServerDeps } from './deps';
import { unary, type Handler } from './rpc';
import { prepareSocketPath } from './listen';
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

type Unary = grpc.handleUnaryCall<never, never>;

function notYet(rpc: string, what: string): grpc.UntypedHandleCall {
  const message = `${rpc} is not implemented by this berthd yet (${what})`;
  return (_call: unknown, callback?: grpc.sendUnaryData<never>) => {
    const err = { code: Status.UNIMPLEMENTED, details: message, message };
    if (callback) callback(err, null);
    else
      (_call as grpc.ServerWritableStream<unknown, unknown>).destroy(Object.assign(new Error(message), err));
  };
}

export function runtimeHandlers(deps: ServerDeps): RuntimeServiceHandlers {
  const log = deps.log.child({ component: 'cri' });
  const u = <Req, Res>(name: string, fn: Handler<Req, Res>): Unary =>
    unary(log, name, fn) as unknown as Unary;
  const streaming = 'the streaming server arrives with the streaming work';
  const stats = 'stats and metrics arrive with the rest-of-CRI work';
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
    UpdateContainerResources: notYet(
      'UpdateContainerResources',
      'live resource updates arrive with the rest-of-CRI work',
    ),
    ReopenContainerLog: u('ReopenContainerLog', reopenContainerLog(deps)),
    ExecSync: u('ExecSync', execSync(deps)),
    Exec: notYet('Exec', streaming),
    Attach: notYet('Attach', streaming),
    PortForward: notYet('PortForward', streaming),
    ContainerStats: notYet('ContainerStats', stats),
    ListContainerStats: notYet('ListContainerStats', stats),
    PodSandboxStats: notYet('PodSandboxStats', stats),
    ListPodSandboxStats: notYet('ListPodSandboxStats', stats),
    UpdateRuntimeConfig: notYet('UpdateRuntimeConfig', 'pod CIDR hand-off arrives with the rest-of-CRI work'),
    CheckpointContainer: notYet('CheckpointContainer', 'checkpointing arrives with the rest-of-CRI work'),
    GetContainerEvents: notYet('GetContainerEvents', 'container events arrive with the rest-of-CRI work'),
    ListMetricDescriptors: notYet('ListMetricDescriptors', stats),
    ListPodSandboxMetrics: notYet('ListPodSandboxMetrics', stats),
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
  } as ImageServiceHandlers;
}

export interface RunningServer {
  server: grpc.Server;
  socket: string;
  /** Stops accepting calls, lets running ones finish for up to `graceMs`, removes the socket. */
  close(graceMs?: number): Promise<void>;
}

export async function serve(deps: ServerDeps): Promise<RunningServer> {
  const cri = loadCri();
  const server = new grpc.Server({
    'grpc.max_receive_message_length': 16 * 1024 * 1024,
    'grpc.max_send_message_length': 64 * 1024 * 1024,
  });
  server.addService(cri.runtime.v1.RuntimeService.service, runtimeHandlers(deps));
  server.addService(cri.runtime.v1.ImageService.service, imageHandlers(deps));
  const socket = deps.config.socket;
  await prepareSocketPath(socket);
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  fs.chmodSync(socket, 0o660);
  return {
    server,
    socket,
    close: (graceMs = 5000) =>
      new Promise<void>((resolve) => {
        const t = setTimeout(() => server.forceShutdown(), graceMs);
        server.tryShutdown(() => {
          clearTimeout(t);
          fs.rmSync(socket, { force: true });
          resolve();
        });
      }),
  };
}
