// A real MCP client (the official TypeScript SDK) against the MarketPulse
// gateway: connect over Streamable HTTP with the bearer token in
// MCP_TOKEN (none: expect to be refused), list the tools, call one.
// Prints one JSON line with what happened; exit 0 when connected and the
// call worked, 3 when refused.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const url = new URL(process.env.MCP_URL);
const token = process.env.MCP_TOKEN;
const headers = token ? { Authorization: `Bearer ${token}` } : {};
const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers } });
const client = new Client({ name: 'marketpulse-agent', version: '1.0.0' });

try {
    await client.connect(transport);
    const tools = await client.listTools();
    const result = await client.callTool({
        name: 'check_market_holidays',
        arguments: { country_code: 'US', days_ahead: 7 },
    });
    console.log(JSON.stringify({
        connected: true,
        server: client.getServerVersion(),
        tools: tools.tools.map((t) => t.name),
        result,
    }));
    await client.close();
    process.exit(0);
} catch (e) {
    console.log(JSON.stringify({ connected: false, refused: String(e && e.message ? e.message : e) }));
    process.exit(3);
}
