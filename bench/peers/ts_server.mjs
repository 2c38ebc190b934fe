// Official TypeScript SDK peer (@modelcontextprotocol/sdk): the same echo and add
// tools, stateless (a server and transport per request, as the SDK documents),
// JSON replies, on node:http.   node ts_server.mjs PORT
import http from "node:http";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import { z } from "zod";

function server() {
  const s = new McpServer({ name: "bench", version: "1.0.0" });
  s.registerTool("echo", { description: "Echo the text back.", inputSchema: { text: z.string() } },
    async ({ text }) => ({ content: [{ type: "text", text }] }));
  s.registerTool("add", { description: "Add two numbers.", inputSchema: { a: z.number(), b: z.number() } },
    async ({ a, b }) => ({ content: [{ type: "text", text: String(a + b) }] }));
  return s;
}

http.createServer((req, res) => {
  if (req.url !== "/mcp" || req.method !== "POST") { res.writeHead(404).end(); return; }
  let body = "";
  req.on("data", (c) => { body += c; });
  req.on("end", async () => {
    const s = server();
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on("close", () => { transport.close(); s.close(); });
    await s.connect(transport);
    await transport.handleRequest(req, res, JSON.parse(body));
  });
}).listen(Number(process.argv[2]), "127.0.0.1");
