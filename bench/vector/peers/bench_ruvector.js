#!/usr/bin/env node
// bench_ruvector.js: ruvector (@ruvector/core, hnsw_rs inside) on the benchmark's files.
//
//   node bench_ruvector.js BASE QUERIES TRUTH --metric l2 --M 16 --efc 200 --ef 16,32,64
//
// Same protocol as vecbench.c: build (insertBatch in chunks of 1000; timed), then every
// query once per ef, awaited one after another (its API has no batch search), recall@k
// against TRUTH and queries/s. Runs in-memory (no storagePath) from a scratch directory,
// so nothing is written next to the repository. Prints "RESULT" lines like vecbench.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');

function readFile(p, magic, Ctor) {
  const buf = fs.readFileSync(p);
  if (buf.toString('latin1', 0, 4) !== magic) throw new Error(`${p}: bad magic`);
  const a = buf.readUInt32LE(4), b = buf.readUInt32LE(8);
  const data = new Ctor(buf.buffer.slice(buf.byteOffset + 12, buf.byteOffset + 12 + a * b * 4));
  return { a, b, data };
}

function rssMb() { return process.memoryUsage().rss / 1048576; }

async function main() {
  const args = process.argv.slice(2);
  const [basePath, qPath, truthPath] = args;
  const opt = { metric: 'l2', M: 16, efc: 200, ef: '16,32,64,128', k: 10 };
  for (let i = 3; i < args.length; i += 2) opt[args[i].replace(/^--/, '')] = args[i + 1];
  const k = Number(opt.k);
  const base = readFile(basePath, 'MKVF', Float32Array);
  const q = readFile(qPath, 'MKVF', Float32Array);
  const truth = readFile(truthPath, 'MKVG', Uint32Array);
  const dim = base.b;
  process.chdir(fs.mkdtempSync(path.join(os.tmpdir(), 'ruvector-bench-')));
  const { VectorDb } = require(path.join(__dirname, 'node_modules', '@ruvector', 'core'));
  const metric = { l2: 'Euclidean', cosine: 'Cosine', dot: 'DotProduct' }[opt.metric];
  const r0 = rssMb();
  const t0 = process.hrtime.bigint(), c0 = process.cpuUsage();
  const db = new VectorDb({
    dimensions: dim,
    distanceMetric: metric,
    hnswConfig: { m: Number(opt.M), efConstruction: Number(opt.efc), efSearch: 64, maxElements: base.a },
  });
  for (let s = 0; s < base.a; s += 1000) {
    const batch = [];
    for (let i = s; i < Math.min(base.a, s + 1000); i++)
      batch.push({ id: String(i), vector: base.data.subarray(i * dim, (i + 1) * dim) });
    await db.insertBatch(batch);
  }
  const buildS = Number(process.hrtime.bigint() - t0) / 1e9;
  const bu = process.cpuUsage(c0), buildCpu = (bu.user + bu.system) / 1e6;
  console.log(`RESULT impl=ruvector phase=build threads=${os.availableParallelism ? os.availableParallelism() : 1} ` +
              `build_s=${buildS.toFixed(2)} build_cpu_s=${buildCpu.toFixed(2)} rss_mb=${(rssMb() - r0).toFixed(1)}`);
  const efs = opt.ef === 'none' ? [] : String(opt.ef).split(',');
  for (const efStr of efs) {
    const ef = Math.max(Number(efStr), k);
    let hits = 0;
    const t1 = process.hrtime.bigint(), c1 = process.cpuUsage();
    for (let i = 0; i < q.a; i++) {
      const res = await db.search({ vector: q.data.subarray(i * dim, (i + 1) * dim), k, efSearch: ef });
      const want = new Set(truth.data.subarray(i * truth.b, i * truth.b + k));
      for (const r of res) if (want.has(Number(r.id))) hits++;
    }
    const dt = Number(process.hrtime.bigint() - t1) / 1e9;
    const cu = process.cpuUsage(c1), dc = (cu.user + cu.system) / 1e6;
    console.log(`RESULT impl=ruvector phase=search ef=${ef} recall=${(hits / (q.a * k)).toFixed(4)} ` +
                `qps=${(q.a / dt).toFixed(0)} cpu_qps=${(q.a / dc).toFixed(0)}`);
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
