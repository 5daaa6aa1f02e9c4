// berthctl version / info.
import { call, type CriClients } from '../../api/client';
import { json } from './format';
import type { Out } from './common';

export async function version(c: CriClients, _argv: string[], out: Out): Promise<void> {
  const v = await call(c.runtime, 'Version', { version: 'v1' });
  out.write(
    `Version:  ${v.version}\nRuntimeName:  ${v.runtime_name}\nRuntimeVersion:  ${v.runtime_version}\nRuntimeApiVersion:  ${v.runtime_api_version}\n`,
  );
}

export async function info(c: CriClients, _argv: string[], out: Out): Promise<void> {
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
    json({
      status: s.status,
      runtimeHandlers: s.runtime_handlers,
      features: s.features,
      cgroupDriver: cfg.linux?.cgroup_driver,
      ...infoFields,
    }),
  );
}
