// bench/guard/peers/aidefence_eval.js: scores rows with npm `aidefence` (the seed's
// "agentic-security" peer) in-process, offline: the gateway is built and initialised
// as its own entry point does, but never listens; each row goes through
// AIMDSGateway.processRequest with the text as the action payload, the way its
// /api/v1/defend endpoint would pass it. Output: one {"id", "flagged", "score"} per row.
//   node aidefence_eval.js DATA.jsonl SPLIT OUT.jsonl
'use strict';
const fs = require('fs');
const readline = require('readline');
const { AIMDSGateway } = require('aidefence/dist/gateway/server');
const { ThreatLevel } = require('aidefence/dist/types');

async function main() {
  const [data, split, out] = process.argv.slice(2);
  if (!data || !split || !out) { console.error('usage: aidefence_eval.js DATA.jsonl SPLIT OUT.jsonl'); process.exit(2); }
  process.env.LOG_LEVEL = process.env.LOG_LEVEL || 'error';
  const gw = new AIMDSGateway(
    { port: 0, host: '127.0.0.1', enableCors: false, enableCompression: false,
      rateLimit: { windowMs: 60000, max: 1e9 }, timeouts: { request: 30000, shutdown: 1000 } },
    { path: ':memory:', embeddingDim: 384, hnswConfig: { m: 16, efConstruction: 200, efSearch: 100 },
      quicSync: { enabled: false, port: 4433, peers: [] }, memory: { maxEntries: 1000000, ttl: 86400000 } },
    { enableHashCons: true, enableDependentTypes: true, enableTheoremProving: true, cacheSize: 10000, proofTimeout: 5000 });
  await gw.initialize();
  const w = fs.createWriteStream(out);
  const rl = readline.createInterface({ input: fs.createReadStream(data), crlfDelay: Infinity });
  let n = 0, flagged = 0;
  const t0 = process.hrtime.bigint();
  for await (const line of rl) {
    if (!line.trim()) continue;
    const r = JSON.parse(line);
    if (split !== 'all' && r.split !== split) continue;
    const req = {
      id: String(r.id), timestamp: Date.now(),
      source: { ip: '127.0.0.1', headers: {} },
      action: { type: 'chat.completion', resource: '/v1/chat/completions', method: 'POST',
                payload: { messages: [{ role: 'user', content: r.text }] } },
    };
    const res = await gw.processRequest(req);
    const isFlagged = !res.allowed || res.threatLevel >= ThreatLevel.MEDIUM;
    flagged += isFlagged ? 1 : 0;
    w.write(JSON.stringify({ id: r.id, flagged: isFlagged, score: isFlagged ? 1 : 0,
                             threat: ThreatLevel[res.threatLevel], allowed: res.allowed }) + '\n');
    n++;
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  w.end();
  console.error(`aidefence_eval: ${n} rows, ${flagged} flagged, ${(secs * 1e6 / Math.max(n, 1)).toFixed(1)} us/row`);
  await new Promise((r) => w.on('finish', r));
  process.exit(0);
}
main().catch((e) => { console.error(e); process.exit(1); });
