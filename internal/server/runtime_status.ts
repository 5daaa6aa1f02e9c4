// Status: the two conditions kubelet gates on (RuntimeReady, NetworkReady), the runtime handlers
// and their features, and with `verbose` the effective config and the event loop's health
// (`eventLoop`, see internal/util/loop-health.ts) and the pulls running now (`pulls`). All from memory: kubelet calls it every few
// seconds.
import { CRI_API_VERSION } from '../../api/cri-version';
import type { RuntimeHandler, StatusRequest__Output, StatusResponse } from '../../api/generated';
import type { ServerDeps } from './deps';

export function status(deps: ServerDeps) {
  return async (req: StatusRequest__Output): Promise<StatusResponse> => {
    const net = deps.network?.status() ?? {
      ready: false,
      reason: 'NetworkPluginNotReady',
      message: 'Network plugin returns error: CNI networking is not set up in this berthd',
    };
    const res: StatusResponse = {
      status: {
        conditions: [
          { type: 'RuntimeReady', status: true, reason: '', message: '' },
          {
            type: 'NetworkReady',
            status: net.ready,
            reason: net.ready ? '' : (net.reason ?? 'NetworkPluginNotReady'),
            message: net.ready ? '' : (net.message ?? ''),
          },
        ],
      },
      runtime_handlers: runtimeHandlerList(deps),
      // SupplementalGroupsPolicy Merge/Strict and ContainerStatus.user read from the process (KEP-3619);
      // Mount.mount_options: the bind options of internal/oci/mount-options.ts are applied, others
      // refused; a host-network pod may have a user namespace where the default handler can make
      // pod user namespaces (internal/sandbox/userns.ts; /sys is bound from the host)
      features: {
        supplemental_groups_policy: true,
        mount_options: true,
        user_namespaces_host_network:
          deps.handlerFeatures?.get(deps.config.runtime.default_runtime)?.userns ?? false,
      },
      info: {},
    };
    if (req.verbose) {
      res.info = { config: JSON.stringify(redactedConfig(deps)) };
      res.info.criApi = JSON.stringify(CRI_API_VERSION);
      if (deps.loopHealth) res.info.eventLoop = JSON.stringify(deps.loopHealth.report());
      if (deps.execStats) res.info.exec = JSON.stringify(deps.execStats());
      if (deps.phases) res.info.phases = JSON.stringify(deps.phases());
      // pulls running now, for `berthctl pull`'s progress bar
      res.info.pulls = JSON.stringify(deps.images.activePulls?.() ?? []);
    }
    return res;
  };
}

/**
 * Each configured handler with its features, then the default handler again under the name ''
 * (kubelet looks a pod without a RuntimeClass up by '', as containerd lists it).
 */
export function runtimeHandlerList(deps: Pick<ServerDeps, 'config' | 'handlerFeatures'>): RuntimeHandler[] {
  const list: RuntimeHandler[] = Object.keys(deps.config.runtime.runtimes).map((name) => ({
    name,
    features: {
      // what `<runtime> features` reported at start (mountOptions has "rro")
      recursive_read_only_mounts: deps.handlerFeatures?.get(name)?.rro ?? false,
      // the runtime lists user namespaces in `features` and the kernel lets berthd make one
      user_namespaces: deps.handlerFeatures?.get(name)?.userns ?? false,
    },
  }));
  const def = list.find((h) => h.name === deps.config.runtime.default_runtime);
  if (def) list.push({ ...def, name: '' });
  return list;
}

/** The config with registry secrets blanked, for `Status` verbose output. */
function redactedConfig(deps: ServerDeps): unknown {
  const c = structuredClone(deps.config);
  for (const a of Object.values(c.registry.auths)) {
    if (a.password) a.password = '<redacted>';
    if (a.auth) a.auth = '<redacted>';
    if (a.identity_token) a.identity_token = '<redacted>';
  }
  return c;
}
