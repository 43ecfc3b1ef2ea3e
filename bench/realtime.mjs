// Realtime fan-out client of the benchmark: N SSE subscribers on raw TCP sockets, W record
// creates at R per second, delivery latency from just before each create is sent to the moment
// each subscriber has parsed its event. One Node process with a cheap parser, so the client adds
// as little as it can to what it measures (the same client runs against both servers).
//
//   node bench/realtime.mjs URL SUBSCRIBERS WRITES RATE   -> prints {"p50":…,"p99":…,"lost":…}
import net from 'node:net';

const [url, subs, writes, rate] = [
  process.argv[2],
  Number(process.argv[3] ?? 200),
  Number(process.argv[4] ?? 200),
  Number(process.argv[5] ?? 20),
];
const { hostname, port } = new URL(url);
const BASE = 1_000_000;
const sent = new Map();
const latencies = [];
let received = 0;

function subscriber() {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: hostname, port: Number(port) });
    let buf = '';
    let ready = false;
    sock.setEncoding('utf8');
    sock.on('connect', () => {
      sock.write(`GET /api/realtime HTTP/1.1\r\nHost: ${hostname}\r\nAccept: text/event-stream\r\n\r\n`);
    });
    sock.on('error', reject);
    sock.on('data', async (chunk) => {
      buf += chunk;
      let end;
      while ((end = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, end);
        buf = buf.slice(end + 2);
        if (!ready) {
          const m = /event:PB_CONNECT\ndata:(\{.*\})/.exec(frame);
          if (!m) continue;
          ready = true;
          const { clientId } = JSON.parse(m[1]);
          const r = await fetch(`${url}/api/realtime`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ clientId, subscriptions: ['bench'] }),
          });
          if (r.status !== 204) reject(new Error(`subscribe: ${r.status}`));
          else resolve(sock);
          continue;
        }
        const m = /"n":(\d+)/.exec(frame);
        if (m) {
          const t0 = sent.get(Number(m[1]));
          if (t0 !== undefined) {
            latencies.push(performance.now() - t0);
            received++;
          }
        }
      }
    });
  });
}

const sockets = [];
for (let i = 0; i < subs; i += 20) {
  const batch = [];
  for (let j = i; j < Math.min(subs, i + 20); j++) batch.push(subscriber());
  sockets.push(...(await Promise.all(batch)));
}
await new Promise((r) => setTimeout(r, 300));
// Creates go over one kept-alive raw socket too: Node's fetch adds about 2 ms of its own to
// every request, which would be the same for both servers and hide their difference.
const writer = net.connect({ host: hostname, port: Number(port) });
writer.setNoDelay(true);
await new Promise((r, j) => { writer.once('connect', r); writer.once('error', j); });
let wbuf = Buffer.alloc(0);
let onResponse = null;
writer.on('data', (chunk) => {
  wbuf = Buffer.concat([wbuf, chunk]);
  for (;;) {
    const head = wbuf.indexOf('\r\n\r\n');
    if (head < 0) return;
    const headers = wbuf.subarray(0, head).toString('latin1');
    const status = Number(/^HTTP\/1\.1 (\d+)/.exec(headers)?.[1]);
    let total;
    const len = /\r\ncontent-length: *(\d+)/i.exec(headers);
    if (len) {
      total = head + 4 + Number(len[1]);
    } else {
      const end = wbuf.indexOf('\r\n0\r\n\r\n', head);  // chunked
      if (end < 0) return;
      total = end + 7;
    }
    if (wbuf.length < total) return;
    wbuf = wbuf.subarray(total);
    const done = onResponse;
    onResponse = null;
    done?.(status);
  }
});
function create(n) {
  const body = JSON.stringify({ title: 'rt', n });
  return new Promise((resolve) => {
    onResponse = resolve;
    writer.write(`POST /api/collections/bench/records HTTP/1.1\r\nHost: ${hostname}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });
}
for (let i = 0; i < writes; i++) {
  const n = BASE + i;
  sent.set(n, performance.now());
  const status = await create(n);
  if (status !== 200) throw new Error(`create: ${status}`);
  await new Promise((res) => setTimeout(res, 1000 / rate));
}
const deadline = performance.now() + 10_000;
while (received < subs * writes && performance.now() < deadline) {
  await new Promise((r) => setTimeout(r, 50));
}
for (const s of sockets) s.destroy();
writer.destroy();
latencies.sort((a, b) => a - b);
const q = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] : NaN);
console.log(JSON.stringify({ p50: q(0.5), p99: q(0.99), lost: subs * writes - latencies.length }));
process.exit(0);
