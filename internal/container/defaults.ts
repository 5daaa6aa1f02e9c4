// CRI defaults that depend on the pod: a container config that carries no namespace options
// takes the pod's (kubelet always sends both, other clients often send only the pod's).
import type { ContainerConfig__Output, PodSandboxConfig__Output } from '../../api/generated';

export function withPodNamespaces(
  config: ContainerConfig__Output,
  pod: PodSandboxConfig__Output,
): ContainerConfig__Output {
  const podNs = pod.linux?.security_context?.namespace_options;
  if (!podNs || config.linux?.security_context?.namespace_options) return config;
  const linux = config.linux ?? ({} as NonNullable<ContainerConfig__Output['linux']>);
  const sc = linux.security_context ?? ({} as NonNullable<typeof linux.security_context>);
  return { ...config, linux: { ...linux, security_context: { ...sc, namespace_options: podNs } } };
}
