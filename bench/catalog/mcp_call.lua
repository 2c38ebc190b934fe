-- wrk script: stateless 2026-07-28 `tools/call` requests to /mcp, as a modern
-- MCP client sends them. TOOL=search_items rotates over QUERIES; TOOL=get_item
-- picks a random id among ITEMS generated items. wrk counts non-2xx answers;
-- run.sh checks one answer of each kind by hand before the load.
local tool = os.getenv("TOOL") or "search_items"
local items = tonumber(os.getenv("ITEMS") or "10000")
local queries = {
  "event handler", "grid template", "abort signal", "fetch request", "color",
  "storage local", "animation frame", "worker message", "media query", "deprecated",
}
local meta = '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}'
local counter = 0

request = function()
  counter = counter + 1
  local args
  if tool == "get_item" then
    args = string.format('{"id":"gen-%07d"}', math.random(1, items))
  else
    args = string.format('{"query":"%s","limit":10}', queries[(counter % #queries) + 1])
  end
  local body = string.format('{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"%s","arguments":%s,%s}}', counter, tool, args, meta)
  local headers = {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
    ["MCP-Protocol-Version"] = "2026-07-28",
    ["Mcp-Method"] = "tools/call",
    ["Mcp-Name"] = tool,
  }
  return wrk.format("POST", "/mcp", headers, body)
end
