// Starts Portkey's open-source gateway for Mayak's benchmarks, bound to 127.0.0.1 only.
//
// Why a wrapper: the package's own entry (build/start-server.js, its `bin`) is one
// bundled file that exports nothing and calls @hono/node-server's serve() with a port
// but no hostname, so Node binds every interface. We must never listen beyond loopback,
// so before loading that entry we make net.Server#listen fill in host 127.0.0.1 when
// the caller gave none, then check the bound address and exit if it is not loopback.
// Everything else is Portkey's own start path, unchanged.
//
// Usage: node start.mjs --port=PORT      (prints "portkey listening 127.0.0.1:PORT")
import net from 'node:net';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

const HOST = '127.0.0.1';
const portArg = process.argv.slice(2).find((a) => a.startsWith('--port='));
const port = portArg ? Number(portArg.slice('--port='.length)) : NaN;
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node start.mjs --port=PORT');
  process.exit(2);
}

const origListen = net.Server.prototype.listen;
net.Server.prototype.listen = function listenOnLoopback(...args) {
  // Forms used by Node: listen(port[, host][, backlog][, cb]) and listen(options[, cb]).
  if (args.length > 0 && typeof args[0] === 'object' && args[0] !== null) {
    args[0] = { ...args[0], host: HOST };
  } else if (args.length > 0 && (typeof args[0] === 'number' || typeof args[0] === 'string')) {
    if (args.length === 1 || typeof args[1] !== 'string') {
      // listen(port, undefined, cb) or listen(port, cb): put the host in second place.
      const rest = args.slice(1).filter((a) => a !== undefined);
      args = [args[0], HOST, ...rest];
    } else {
      args[1] = HOST;
    }
  }
  this.once('listening', () => {
    const a = this.address();
    if (!a || typeof a !== 'object' || a.address !== HOST) {
      console.error(`portkey wrapper: refusing non-loopback bind ${JSON.stringify(a)}`);
      process.exit(3);
    }
    console.log(`portkey listening ${a.address}:${a.port}`);
  });
  return origListen.apply(this, args);
};

// Their entry reads --port= and --headless from process.argv; headless skips the web UI.
if (!process.argv.includes('--headless')) process.argv.push('--headless');
process.env.NODE_ENV = process.env.NODE_ENV || 'production';

const require = createRequire(import.meta.url);
const pkgJson = require.resolve('@portkey-ai/gateway/package.json');
const entry = new URL('build/start-server.js', pathToFileURL(pkgJson));
await import(entry.href);
