// berthctl version / info.
import { call, type CriClients } from '../../api/client';
import { CRI_API_VERSION } from '../../api/cri-version';
import { encode } from './format';
import { UsageError, type Out } from './common';
import { checkDocOutput, DOC_OUTPUT, parseFlags } from './flags';

export async function version(c: CriClients, _argv: string[], out: Out): Promise<void> {
  const v = await call(c.runtime, 'Version', { version: 'v1' });
  // the CRI revision the daemon speaks (verbose Status info); this berthctl's own if it does not say
  const st = await call(c.runtime, 'Status', { verbose: true }).catch(() => undefined);
  let criApi = CRI_API_VERSION;
  try {
    if (st?.info?.criApi) criApi = JSON.parse(st.info.criApi) as string;
  } catch {
    // not JSON: keep ours
  }
  out.write(
    `Version:  ${v.version}\nRuntimeName:  ${v.runtime_name}\nRuntimeVersion:  ${v.runtime_version}\nRuntimeApiVersion:  ${v.runtime_api_version}\nCriApi:  ${criApi}\n`,
  );
}

export async function info(c: CriClients, argv: string[], out: Out): Promise<void> {
  const usage = 'info [-o json|yaml]';
  const { values, positionals } = parseFlags(argv, DOC_OUTPUT, usage);
  if (positionals.length) throw new UsageError(usage);
  checkDocOutput(values.output, usage);
  const s = await call(c.runtime, 'Status', { verbose: true });
  const cfg = await call(c.runtime, 'RuntimeConfig', {});
  const infoFields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(s.info)) {
    try {
      infoFields[k] = JSON.parse(v);
    } catch {
      infoFields[k] = v;
    }
  }
  out.write(
    encode(
      {
        status: s.status,
        runtimeHandlers: s.runtime_handlers,
        features: s.features,
        cgroupDriver: cfg.linux?.cgroup_driver,
        ...infoFields,
      },
      values.output,
    ),
  );
}
