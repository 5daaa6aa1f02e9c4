// Checks of pod and container configs before any side effect. Each refusal is INVALID_ARGUMENT
// and names the field; user text is quoted shortened.
import * as path from 'node:path';
import type { ContainerConfig__Output, PodSandboxConfig__Output } from '../../api/generated';
import { invalidArgument, short } from '../errors';

const MAX_NAME = 253;

/**
 * A metadata value that ends up in CNI_ARGS, log paths and records: non-empty (when required),
 * bounded, printable, and free of the characters that would corrupt CNI_ARGS (`;`, `=`) or paths.
 */
export function checkMetaValue(value: string, field: string, required = true): void {
  if (!value) {
    if (required) throw invalidArgument(`${field} is required`);
    return;
  }
  if (value.length > MAX_NAME) throw invalidArgument(`${field} is too long (${value.length} > ${MAX_NAME})`);
  if (/[\x00-\x1f\x7f;=/\\]/.test(value) || !isWellFormed(value))
    throw invalidArgument(
      `${field} ${short(value)} has a character that is not allowed (control, ';', '=', '/', '\\')`,
    );
}

function isWellFormed(s: string): boolean {
  // lone surrogates would not survive UTF-8 encoding
  return !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(s);
}

export function validatePodConfig(
  cfg: PodSandboxConfig__Output | null | undefined,
): PodSandboxConfig__Output {
  if (!cfg) throw invalidArgument('config is required');
  const m = cfg.metadata;
  if (!m) throw invalidArgument('config.metadata is required');
  checkMetaValue(m.name, 'config.metadata.name');
  checkMetaValue(m.namespace, 'config.metadata.namespace');
  checkMetaValue(m.uid, 'config.metadata.uid');
  if (cfg.hostname && !/^[a-zA-Z0-9]([a-zA-Z0-9.-]{0,252})?$/.test(cfg.hostname))
    throw invalidArgument(`config.hostname ${short(cfg.hostname)} is not a valid hostname`);
  if (cfg.log_directory && !path.isAbsolute(cfg.log_directory))
    throw invalidArgument(`config.log_directory ${short(cfg.log_directory)} must be an absolute path`);
  for (const [i, p] of cfg.port_mappings.entries()) {
    if (p.container_port < 1 || p.container_port > 65535)
      throw invalidArgument(`config.port_mappings[${i}].container_port ${p.container_port} is not 1..65535`);
    if (p.host_port < 0 || p.host_port > 65535)
      throw invalidArgument(`config.port_mappings[${i}].host_port ${p.host_port} is not 0..65535`);
  }
  const dns = cfg.dns_config;
  if (dns) {
    for (const s of dns.servers)
      if (!/^[0-9a-fA-F.:%a-z]+$/.test(s))
        throw invalidArgument(`config.dns_config.servers: ${short(s)} is not an IP address`);
    for (const s of [...dns.searches, ...dns.options])
      if (/[\s\x00-\x1f]/.test(s))
        throw invalidArgument(`config.dns_config: ${short(s)} contains whitespace`);
  }
  // CRI: "RunAsGroup should only be specified when RunAsUser is specified; otherwise, the runtime
  // MUST error" (containerd and CRI-O refuse it too).
  const psc = cfg.linux?.security_context;
  if (psc?.run_as_group && !psc.run_as_user)
    throw invalidArgument(
      'config.linux.security_context.run_as_group is set without run_as_user (the CRI requires both)',
    );
  for (const [k, v] of Object.entries(cfg.linux?.sysctls ?? {})) {
    if (!/^[a-z0-9_./-]+$/i.test(k) || /[\n\x00]/.test(v))
      throw invalidArgument(`config.linux.sysctls ${short(k)} is not valid`);
  }
  return cfg;
}

export function validateContainerConfig(
  cfg: ContainerConfig__Output | null | undefined,
): ContainerConfig__Output {
  if (!cfg) throw invalidArgument('config is required');
  if (!cfg.metadata) throw invalidArgument('config.metadata is required');
  checkMetaValue(cfg.metadata.name, 'config.metadata.name');
  if (!cfg.image?.image) throw invalidArgument('config.image.image is required');
  if (cfg.log_path) {
    if (path.isAbsolute(cfg.log_path) || cfg.log_path.split('/').includes('..'))
      throw invalidArgument(
        `config.log_path ${short(cfg.log_path)} must be relative to the pod's log_directory, without '..'`,
      );
  }
  for (const [i, m] of cfg.mounts.entries()) {
    if (!path.isAbsolute(m.container_path))
      throw invalidArgument(`config.mounts[${i}].container_path ${short(m.container_path)} must be absolute`);
    if (m.host_path && !path.isAbsolute(m.host_path))
      throw invalidArgument(`config.mounts[${i}].host_path ${short(m.host_path)} must be absolute`);
  }
  for (const [i, e] of cfg.envs.entries()) {
    if (!e.key || e.key.includes('=') || e.key.includes('\0'))
      throw invalidArgument(`config.envs[${i}].key ${short(e.key)} is not a valid variable name`);
  }
  const sc = cfg.linux?.security_context;
  if (sc?.run_as_group && !sc.run_as_user && !sc.run_as_username)
    throw invalidArgument(
      'config.linux.security_context.run_as_group is set without run_as_user or run_as_username (the CRI requires one)',
    );
  for (const [i, a] of [...cfg.command, ...cfg.args].entries()) {
    if (a.includes('\0')) throw invalidArgument(`config command/args[${i}] contains a NUL byte`);
  }
  return cfg;
}

/** Ids from requests: non-empty, bounded, only the characters Berth's ids are made of. */
export function requireId(value: string | undefined, field: string): string {
  const v = value ?? '';
  if (!v) throw invalidArgument(`${field} is required`);
  if (v.length > 128 || !/^[a-zA-Z0-9_.-]+$/.test(v))
    throw invalidArgument(`${field} ${short(v)} is not a valid id`);
  return v;
}
