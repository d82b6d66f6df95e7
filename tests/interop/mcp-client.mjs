// A real MCP client (the official TypeScript SDK) against the MarketPulse
// gateway: connect over Streamable HTTP with the bearer token in
// MCP_TOKEN (none: expect to be refused), list the tools, call one.
// Prints one JSON line with what happened; exit 0 when connected and the
// call worked, 3 when refused.
// With MCP_AGAIN_WHEN=FILE, once connected and called it waits for FILE
// (the test writes it when it has revoked the token) and calls again on the
// same session every 50 ms until refused, at most 5 s: a second line says
// how long the refusal took after FILE appeared; exit 3 if refused, 4 if not.
import { existsSync } from 'node:fs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const url = new URL(process.env.MCP_URL);
const token = process.env.MCP_TOKEN;
const headers = token ? { Authorization: `Bearer ${token}` } : {};
const transport = new StreamableHTTPClientTransport(url, { requestInit: { headers } });
const client = new Client({ name: 'marketpulse-agent', version: '1.0.0' });
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));

async function callUntilRefused(file) {
    while (!existsSync(file))
        await sleep(20);
    const since = Date.now();
    let calls = 0;
    while (Date.now() - since < 5000) {
        try {
            calls++;
            await client.callTool({ name: 'check_market_holidays', arguments: { country_code: 'US' } });
        } catch (e) {
            console.log(JSON.stringify({ refused: String(e && e.message ? e.message : e),
                                         after_ms: Date.now() - since, calls }));
            process.exit(3);
        }
        await sleep(50);
    }
    console.log(JSON.stringify({ refused: false, calls }));
    process.exit(4);
}

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
    if (process.env.MCP_AGAIN_WHEN)
        await callUntilRefused(process.env.MCP_AGAIN_WHEN);
    await client.close();
    process.exit(0);
} catch (e) {
    console.log(JSON.stringify({ connected: false, refused: String(e && e.message ? e.message : e) }));
    process.exit(3);
}
