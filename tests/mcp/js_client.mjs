// The npm MCP SDK (@modelcontextprotocol/sdk) as a second client over Streamable HTTP:
// lists the tools, reads, writes and is refused a destructive change without its token.
//   node js_client.mjs MCP_URL TOKEN   -> prints one JSON line with what it saw
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, token] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: 'ferrobase-js-test', version: '1.0.0' });
await client.connect(transport);
const out = { protocol: transport.protocolVersion ?? null };
const { tools } = await client.listTools();
out.tools = tools.map((t) => t.name).sort();
const created = await client.callTool({
  name: 'create_collection',
  arguments: { definition: { name: 'js_notes', fields: [{ name: 'body', type: 'text' }], listRule: '', viewRule: '' } },
});
out.createdError = created.isError ?? false;
const rec = await client.callTool({ name: 'create_record', arguments: { collection: 'js_notes', data: { body: 'hello from js' } } });
out.record = rec.structuredContent;
const listed = await client.callTool({ name: 'list_records', arguments: { collection: 'js_notes' } });
out.total = listed.structuredContent.totalItems;
const refused = await client.callTool({ name: 'delete_collection', arguments: { collection: 'js_notes', dryRun: false } });
out.refused = refused.isError === true;
const dry = await client.callTool({ name: 'delete_collection', arguments: { collection: 'js_notes' } });
const done = await client.callTool({
  name: 'delete_collection',
  arguments: { collection: 'js_notes', dryRun: false, confirmToken: dry.structuredContent.confirmToken },
});
out.deleted = done.structuredContent?.deleted ?? null;
await client.close();
console.log(JSON.stringify(out));
