#!/usr/bin/env node
// Summarises a V8 .cpuprofile (from `node --cpu-prof`): how busy the main thread was, and the top
// functions and files by self time. Usage: node scripts/cpuprofile-summary.js FILE [TOP]
'use strict';
const fs = require('node:fs');
const path = require('node:path');

function summarise(file, top) {
  const prof = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map(); // node id -> µs
  const deltas = prof.timeDeltas;
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = deltas[i + 1] ?? 0;
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt);
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

const [file, top] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: node scripts/cpuprofile-summary.js FILE.cpuprofile [TOP]\n');
  process.exit(2);
}
process.stdout.write(`${summarise(file, Number(top ?? 15))}\n`);
