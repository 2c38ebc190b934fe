-- wrk script: stateless `tools/call` requests, alternating `echo` and `add`.
-- PROTO=2026-07-28 sends the modern request (per-request `_meta`, Mcp-Method and
-- Mcp-Name routing headers); PROTO=2025-06-18 the sessionless 2025 request that
-- SDK servers in stateless mode accept. BEARER adds an Authorization header.
-- Answers are not parsed here (that would load wrk's core): compare.py checks
-- each server's answers before the load, and wrk counts non-2xx ones.
local proto = os.getenv("PROTO") or "2026-07-28"
local bearer = os.getenv("BEARER")
-- SESSION: a legacy (2025-x) session id from an initialize done beforehand.
local session = os.getenv("SESSION")
local counter = 0

request = function()
  counter = counter + 1
  local tool, args
  if counter % 2 == 0 then
    tool, args = "add", string.format('{"a":%d,"b":2}', counter % 1000)
  else
    tool, args = "echo", '{"text":"hello wharf"}'
  end
  local meta = ""
  if proto == "2026-07-28" then
    meta = ',"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}'
  end
  local body = string.format('{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"%s","arguments":%s%s}}', counter, tool, args, meta)
  local headers = {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
    ["MCP-Protocol-Version"] = proto,
    ["Mcp-Method"] = "tools/call",
    ["Mcp-Name"] = tool,
  }
  if bearer then headers["Authorization"] = "Bearer " .. bearer end
  if session then headers["Mcp-Session-Id"] = session end
  return wrk.format("POST", "/mcp", headers, body)
end
