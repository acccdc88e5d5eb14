// agentdb_bench: the peer side of bench/memory — agentdb (npm, installed in this folder)
// doing what memory_bench does, on the data memory_bench exported (--export DIR):
//
//   node agentdb_bench.mjs DIR [--n 100000] [--queries 2000]
//
//   insert     ReflexionMemory.storeEpisode (SQL insert + embedding row), episodes/s
//   search     ReflexionMemory.retrieveRelevant({task, k: 5}) at 10k and N (its episode
//              search: every stored embedding is compared in JS), and its fastest
//              "pattern search": HNSWIndex (hnswlib-node) over pattern_embeddings,
//              query embedding included; p50/p99 in µs
//   recall@5   from retrieveRelevant at 10k, intent kept in the episode's tags
//   sessions   agentdb has no session-state store; the nearest is LearningSystem's
//              learning_sessions table: startSession (write) and a SELECT of one
//              session by id through the same database handle (read)
//
// Embeddings: agentdb embeds with transformers.js (Xenova/all-MiniLM-L6-v2). Offline
// neither part can be had: the model is downloaded from huggingface.co at first use,
// and transformers.js needs sharp, whose install script downloads libvips from
// GitHub (with --ignore-scripts sharp is left unbuilt, and loading transformers.js
// then fails asynchronously and kills the process). agentdb's own answer to a failed
// model load is its hash-based mock embedding; we select that path directly
// (provider 'local'). The numbers then measure agentdb's storage and search code with
// a near-free embedder, and its recall is the mock's. MAYAK_AGENTDB_TRANSFORMERS=1
// asks for the real model where it can be installed; the JSON says which ran.
import fs from 'fs';
import path from 'path';
import { fileURLToPath } from 'url';
import { createDatabase, EmbeddingService, ReflexionMemory, ReasoningBank, HNSWIndex, LearningSystem } from 'agentdb';

const args = process.argv.slice(2);
const dir = args[0];
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const N = opt('--n', 100000);
const NQ = opt('--queries', 2000);
if (!dir) {
  console.error('usage: node agentdb_bench.mjs DIR [--n N] [--queries Q]');
  process.exit(2);
}
const readJsonl = (f) => fs.readFileSync(path.join(dir, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const episodes = readJsonl('episodes.jsonl').slice(0, N);
const queries = readJsonl('queries.jsonl').slice(0, NQ);

const here = path.dirname(fileURLToPath(import.meta.url));
const schemaDir = path.join(here, 'node_modules', 'agentdb', 'dist', 'schemas');

// agentdb prints progress to stdout; the JSON goes to stdout last, alone, so keep
// everything else on stderr
const log = console.log;
console.log = (...a) => console.error(...a);

async function openDb() {
  const db = await createDatabase(':memory:');
  for (const f of ['schema.sql', 'frontier-schema.sql']) db.exec(fs.readFileSync(path.join(schemaDir, f), 'utf8'));
  return db;
}

const now = () => Number(process.hrtime.bigint()) / 1e3; // µs
// CPU time of the process (user + system), µs: the machine may be shared, and Node runs
// this code on one thread (sql.js and the JS cosine loop included)
const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const pct = (v, p) => {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.round(p * (s.length - 1))];
};

const wantModel = process.env.MAYAK_AGENTDB_TRANSFORMERS === '1';
const embedder = new EmbeddingService({ model: 'Xenova/all-MiniLM-L6-v2', dimension: 384,
                                        provider: wantModel ? 'transformers' : 'local' });
await embedder.initialize();
const embedderName = embedder.pipeline ? 'Xenova/all-MiniLM-L6-v2'
  : 'agentdb mock (hash) embedding: the model and transformers.js cannot be installed offline';

const out = { embedder: embedderName };

// ---- insert rate -----------------------------------------------------------------------
{
  const db = await openDb();
  const rm = new ReflexionMemory(db, embedder);
  const n = 10000;
  const t0 = now(), c0 = cpu();
  for (let i = 0; i < n; i++) {
    const e = episodes[i];
    await rm.storeEpisode({ sessionId: 's', task: e.task, input: 'tried', output: 'outcome', critique: 'critique',
                            reward: 1, success: true, tags: [e.intent] });
  }
  out.insert_per_s = { reflexion_store_episode_memory: Math.round(n / ((now() - t0) / 1e6)),
                       reflexion_store_episode_memory_cpu: Math.round(n / ((cpu() - c0) / 1e6)) };
}

// ---- search: episodes (retrieveRelevant) and patterns (HNSWIndex) ------------------------
async function searchAt(count, nq) {
  const db = await openDb();
  const rm = new ReflexionMemory(db, embedder);
  const rb = new ReasoningBank(db, embedder);
  for (let i = 0; i < count; i++) {
    const e = episodes[i];
    await rm.storeEpisode({ sessionId: 's', task: e.task, input: 'tried', output: 'outcome', critique: 'critique',
                            reward: 1, success: true, tags: [e.intent] });
    await rb.storePattern({ taskType: e.intent, approach: e.task, successRate: 1, tags: [e.intent] });
  }
  const lat = [], latc = [];
  let hits = 0;
  for (let i = 0; i < nq; i++) {
    const q = queries[i];
    const t0 = now(), c0 = cpu();
    const res = await rm.retrieveRelevant({ task: q.text, k: 5 });
    latc.push(cpu() - c0);
    lat.push(now() - t0);
    if (res.some((r) => r.tags && r.tags[0] === q.intent)) hits++;
  }
  const hnsw = new HNSWIndex(db, { dimension: 384, metric: 'cosine', persistIndex: false, maxElements: count });
  await hnsw.buildIndex('pattern_embeddings');
  const lat2 = [], lat2c = [];
  for (let i = 0; i < queries.length; i++) {
    const t0 = now(), c0 = cpu();
    const qe = await embedder.embed(queries[i].text + ' ');
    await hnsw.search(qe, 5);
    lat2c.push(cpu() - c0);
    lat2.push(now() - t0);
  }
  // ReasoningBank.searchPatterns: agentdb's pattern search API (compares every pattern)
  const lat3 = [];
  for (let i = 0; i < Math.min(nq, 50); i++) {
    const t0 = now();
    const qe = await embedder.embed(queries[i].text + '  ');
    await rb.searchPatterns({ taskEmbedding: qe, k: 5 });
    lat3.push(now() - t0);
  }
  return {
    episodes_p50: pct(lat, 0.5), episodes_p99: pct(lat, 0.99), episodes_cpu_p50: pct(latc, 0.5),
    episodes_cpu_p99: pct(latc, 0.99), episode_queries: nq,
    patterns_p50: pct(lat3, 0.5), patterns_p99: pct(lat3, 0.99),
    hnsw_p50: pct(lat2, 0.5), hnsw_p99: pct(lat2, 0.99), hnsw_cpu_p50: pct(lat2c, 0.5), hnsw_cpu_p99: pct(lat2c, 0.99),
    recall5: hits / nq,
  };
}

const s10 = await searchAt(Math.min(10000, episodes.length), Math.min(NQ, 500));
out.search_us = { '10k': s10 };
// retrieveRelevant reads and compares every stored episode per query, so at N the
// query count is kept small (seconds each)
const sN = await searchAt(episodes.length, Math.min(NQ, 50));
out.search_us[String(episodes.length)] = sN;
out.recall_at_5 = { '10k_train': s10.recall5 };

// ---- sessions ------------------------------------------------------------------------------
{
  const db = await openDb();
  const ls = new LearningSystem(db, embedder);
  const n = 10000, ops = 20000;
  const ids = [];
  const t0 = cpu();
  for (let i = 0; i < n; i++) ids.push(await ls.startSession(`u${i}`, 'q-learning', { learningRate: 0.1, discountFactor: 0.9 }));
  const wps = n / ((cpu() - t0) / 1e6);
  const get = db.prepare('SELECT * FROM learning_sessions WHERE id = ?');
  const t1 = cpu();
  for (let i = 0; i < ops; i++) get.get(ids[(i * 7919) % n]);
  const rps = ops / ((cpu() - t1) / 1e6);
  // CPU-time rates, like memory_bench's in-process numbers
  out.sessions_per_s = { learning_session_write: Math.round(wps), learning_session_read: Math.round(rps) };
}

log(JSON.stringify(out, null, 1));
