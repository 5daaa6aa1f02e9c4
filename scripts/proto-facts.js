#!/usr/bin/env node
// One-off tool kept for audit: emits the wire facts (services, messages, fields, enums) of a CRI
// proto as a comment-free proto3 file. We used it to seed api/runtime/v1/api.proto from the
// published contract; the file's prose is ours. Usage: node scripts/proto-facts.js REF.proto
'use strict';
const fs = require('fs');
const protobuf = require('protobufjs');
const text = fs
  .readFileSync(process.argv[2], 'utf8')
  .replace(/^\s*import\s+"github\.com\/gogo\/[^"]*";\s*$/gm, '')
  .replace(/^\s*option\s+\(gogoproto\.[^;]*;\s*$/gm, '')
  .replace(/\s*\[\s*\(gogoproto\.[^\]]*\]/g, '');
const root = protobuf.parse(text, { keepCase: true }).root.resolveAll();
const out = [];
const pad = (n) => '  '.repeat(n);
function typeName(f) {
  if (!f.resolvedType) return f.type;
  const full = f.resolvedType.fullName.replace(/^\./, '');
  return full.startsWith('runtime.v1.') ? full.slice('runtime.v1.'.length) : full;
}
function emit(obj, depth) {
  if (obj instanceof protobuf.Service) {
    out.push(`${pad(depth)}service ${obj.name} {`);
    for (const m of obj.methodsArray) {
      const rq = (m.requestStream ? 'stream ' : '') + m.requestType;
      const rs = (m.responseStream ? 'stream ' : '') + m.responseType;
      out.push(`${pad(depth + 1)}rpc ${m.name}(${rq}) returns (${rs}) {}`);
    }
    out.push(`${pad(depth)}}`, '');
  } else if (obj instanceof protobuf.Enum) {
    out.push(`${pad(depth)}enum ${obj.name} {`);
    for (const [k, v] of Object.entries(obj.values)) out.push(`${pad(depth + 1)}${k} = ${v};`);
    out.push(`${pad(depth)}}`);
    if (depth === 0) out.push('');
  } else if (obj instanceof protobuf.Type) {
    out.push(`${pad(depth)}message ${obj.name} {`);
    for (const n of obj.nestedArray) emit(n, depth + 1);
    const inOneof = new Set();
    for (const o of obj.oneofsArray) {
      out.push(`${pad(depth + 1)}oneof ${o.name} {`);
      for (const f of o.fieldsArray) {
        inOneof.add(f.name);
        out.push(`${pad(depth + 2)}${typeName(f)} ${f.name} = ${f.id};`);
      }
      out.push(`${pad(depth + 1)}}`);
    }
    for (const f of obj.fieldsArray) {
      if (inOneof.has(f.name)) continue;
      let t;
      if (f.map) t = `map<${f.keyType}, ${typeName(f)}>`;
      else t = (f.repeated ? 'repeated ' : '') + typeName(f);
      out.push(`${pad(depth + 1)}${t} ${f.name} = ${f.id};`);
    }
    out.push(`${pad(depth)}}`);
    if (depth === 0) out.push('');
  }
}
const ns = root.lookup('runtime.v1');
for (const o of ns.nestedArray) if (o instanceof protobuf.Service) emit(o, 0);
for (const o of ns.nestedArray) if (!(o instanceof protobuf.Service)) emit(o, 0);
process.stdout.write(out.join('\n'));
