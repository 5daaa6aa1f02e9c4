// berthctl version / info.
import { call, type CriClients } from '../../api/client';
import { encode } from './format';
import { UsageError, type Out } from './common';
import { checkDocOutput, DOC_OUTPUT, parseFlags } from './flags';

export async function version(c: CriClients, _argv: string[], out: Out): Promise<void> {
  const v = await call(c.runtime, 'Version', { version: 'v1' });
  out.write(
    `Version:  ${v.version}\nRuntimeName:  ${v.runtime_name}\nRuntimeVersion:  ${v.runtime_version}\nRuntimeApiVersion:  ${v.runtime_api_version}\n`,
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
