#!/usr/bin/env node
// Summarises a V8 .cpuprofile (from `node --cpu-prof`): how busy the main thread was, and the top
// functions and files by self time, and how busy it was in each 10 s slice.
// Usage: node scripts/cpuprofile-summary.js FILE [TOP] [--from S] [--to S]
//   --from/--to keep only the samples between S seconds after the profile's start and S seconds
//   (e.g. a benchmark's load window, leaving out set-up and teardown).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

function summarise(file, top, from, to) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map(); // node id -> µs
  const deltas = prof.timeDeltas;
  const slices = []; // per 10 s: [busy µs, total µs]
  let t = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    t += deltas[i] ?? 0;
    const dt = deltas[i + 1] ?? 0;
    const s = t / 1e6;
    if (s < from || s > to) continue;
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt);
    const k = Math.floor(s / 10);
    slices[k] ??= [0, 0];
    slices[k][1] += dt;
    if (byId.get(prof.samples[i]).callFrame.functionName !== '(idle)') slices[k][0] += dt;
  }
  let total = 0;
  let idle = 0;
  const fn = new Map();
  const files = new Map();
  for (const [id, us] of self) {
    const n = byId.get(id);
    const f = n.callFrame;
    total += us;
    if (f.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const where = f.url ? shorten(f.url) : `(${f.functionName || 'anonymous'})`;
    const key = `${f.functionName || '(anonymous)'}  ${where}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    fn.set(key, (fn.get(key) ?? 0) + us);
    files.set(where, (files.get(where) ?? 0) + us);
  }
  const busy = total - idle;
  const pct = (us) => ((100 * us) / busy).toFixed(1).padStart(5);
  const lines = [];
  lines.push(
    `${path.basename(file)}: ${(total / 1e6).toFixed(1)} s profiled, main thread busy ${(busy / 1e6).toFixed(1)} s (${((100 * busy) / total).toFixed(1)} %)`,
  );
  lines.push(
    `busy % per 10 s slice: ${slices
      .map((v, k) => (v ? `${k * 10}s:${((100 * v[0]) / v[1]).toFixed(0)}` : ''))
      .filter(Boolean)
      .join(' ')}`,
  );
  lines.push(`top functions by self time (% of busy):`);
  for (const [k, us] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top))
    lines.push(`  ${pct(us)} %  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`);
  lines.push(`top files by self time (% of busy):`);
  for (const [k, us] of [...files].sort((a, b) => b[1] - a[1]).slice(0, top))
    lines.push(`  ${pct(us)} %  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`);
  return lines.join('\n');
}

function shorten(url) {
  const u = url.replace(/^file:\/\//, '');
  const i = u.indexOf('/node_modules/');
  if (i >= 0) return u.slice(i + 1);
  const d = u.indexOf('/dist/');
  if (d >= 0) return u.slice(d + 6);
  return u;
}

const args = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = Number(args[i + 1]);
  args.splice(i, 2);
  return v;
};
const from = opt('--from', 0);
const to = opt('--to', Infinity);
const [file, top] = args;
if (!file || Number.isNaN(from) || Number.isNaN(to)) {
  process.stderr.write(
    'usage: node scripts/cpuprofile-summary.js FILE.cpuprofile [TOP] [--from S] [--to S]\n',
  );
  process.exit(2);
}
process.stdout.write(`${summarise(file, Number(top ?? 15), from, to)}\n`);
