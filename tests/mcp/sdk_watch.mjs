// The official PocketBase JS SDK watching a collection: prints "subscribed", then the first
// realtime event as a JSON line, then that record as read back through the SDK.
//   node sdk_watch.mjs BASE_URL COLLECTION
import PocketBase from 'pocketbase';
import { EventSource } from 'eventsource';

globalThis.EventSource = EventSource;
const [base, collection] = process.argv.slice(2);
const pb = new PocketBase(base);
let done = false;
await pb.collection(collection).subscribe('*', async (e) => {
  if (done) return;
  done = true;
  console.log(JSON.stringify({ action: e.action, record: e.record }));
  const r = await pb.collection(collection).getOne(e.record.id);
  console.log(JSON.stringify(r));
  process.exit(0);
});
console.log('subscribed');
setTimeout(() => process.exit(1), 30000);
