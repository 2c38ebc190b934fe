// The catalog widget in a real browser, against a running `wharf serve`.
//
// A real MCP client (@modelcontextprotocol/client) lists the tools, reads the
// widget resource and calls search_items; headless Chromium renders the widget
// in two kinds of host:
//   1. an MCP Apps host page built on the ext-apps reference AppBridge, with the
//      widget in a sandboxed iframe on a second loopback origin, served with the
//      CSP a host derives from the resource's _meta.ui.csp;
//   2. a ChatGPT-style host that injects `window.openai` before the widget runs.
// Every tools/call the widget makes goes through the host to Wharf.
//
//   TEST_WHARF_BIN=target/debug/wharf node --test web/test/widget.test.mjs
//
// Behind `wharf gateway`, the catalog widget and a widget served by a Python
// SDK server (test/fixtures/dice_server.py; TEST_PYTHON names a Python with
// `mcp` 2.x installed, as `cargo xtask ci` does) call their servers' own tools.
//
// Needs Chromium (`apt-get install chromium`; CHROMIUM_PATH overrides
// /usr/bin/chromium). Screenshots go to WIDGET_SCREENSHOTS or a temp folder,
// printed at the start.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import http from "node:http";
import net from "node:net";
import { mkdtemp, mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import { chromium } from "playwright-core";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { getToolUiResourceUri } from "@modelcontextprotocol/ext-apps/app-bridge";

const here = dirname(fileURLToPath(import.meta.url));
const WHARF_BIN = resolve(process.env.TEST_WHARF_BIN ?? join(here, "../../target/debug/wharf"));
const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const WIDGET_URI = "ui://wharf/catalog.html";
/** Generous: a cold debug build on a busy 2-core machine. */
const DEADLINE_MS = 20_000;

let wharf, client, browser, hostServer, hostOrigin, sandboxOrigin, shots, wharfBase;
/** The widget HTML and the CSP header the sandbox origin serves it with. */
const sandbox = { html: "", csp: "" };

function freePort() {
  return new Promise((ok, fail) => {
    const s = net.createServer();
    s.once("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** Poll `check` until it returns something truthy; `fatal` (if given) names a reason to stop early. */
async function until(what, check, fatal = () => null) {
  const end = Date.now() + DEADLINE_MS;
  for (;;) {
    const reason = fatal();
    if (reason) throw new Error(reason);
    const v = await check().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `wharf gateway` on `file` with its data in `dir`, ready, and a client connected to it. */
async function startGateway(dir, file) {
  const port = await freePort();
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("WHARF_")));
  const gateway = spawn(WHARF_BIN, ["--data-dir", dir, "gateway", "--listen", `127.0.0.1:${port}`, "--upstreams", file], {
    env: { ...env, WHARF_LOG: "warn" },
    stdio: ["ignore", "inherit", "inherit"],
  });
  let exited = null;
  gateway.once("exit", (code) => (exited = code));
  const base = `http://127.0.0.1:${port}`;
  await until(
    "wharf gateway to be ready",
    async () => (await fetch(`${base}/ready`)).ok,
    () => (exited === null ? null : `wharf gateway exited with ${exited}`),
  );
  const gw = new Client({ name: "wharf-widget-gateway-test", version: "1.0.0" });
  await gw.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`)));
  return { gateway, gw };
}

/** The CSP a host applies to a widget: nothing beyond inline code, plus the declared origins. */
function cspFor(csp = {}) {
  const list = (v) => (v?.length ? v.join(" ") : "");
  const res = list(csp.resourceDomains);
  return [
    "default-src 'none'",
    `script-src 'unsafe-inline' ${res}`.trim(),
    `style-src 'unsafe-inline' ${res}`.trim(),
    `img-src data: ${res}`.trim(),
    `font-src ${res || "'none'"}`,
    `connect-src ${list(csp.connectDomains) || "'none'"}`,
    `frame-src ${list(csp.frameDomains) || "'none'"}`,
    `base-uri ${list(csp.baseUriDomains) || "'none'"}`,
  ].join("; ");
}

async function hostScript() {
  const out = await esbuild.build({
    entryPoints: [join(here, "host.ts")],
    bundle: true,
    format: "iife",
    platform: "browser",
    write: false,
    logLevel: "warning",
  });
  return out.outputFiles[0].text;
}

/** Two loopback origins: the host page, and the widget's sandbox origin. */
async function startOrigins() {
  const js = await hostScript();
  const page = `<!doctype html><html><head><meta charset="utf-8"><title>test host</title>
<style>body{margin:0;font-family:sans-serif} iframe{border:0;width:100%;display:block}</style></head>
<body><iframe id="widget" sandbox="allow-scripts allow-forms allow-popups"></iframe><script>${js}</script></body></html>`;
  const [hostPort, sandboxPort] = [await freePort(), await freePort()];
  const serve = (handler) => http.createServer(handler);
  const host = serve((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(page);
  });
  const box = serve((req, res) => {
    if (!req.url.startsWith("/widget.html")) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8", "content-security-policy": sandbox.csp });
    res.end(sandbox.html);
  });
  await new Promise((ok) => host.listen(hostPort, "127.0.0.1", ok));
  await new Promise((ok) => box.listen(sandboxPort, "127.0.0.1", ok));
  hostOrigin = `http://127.0.0.1:${hostPort}`;
  sandboxOrigin = `http://127.0.0.1:${sandboxPort}`;
  return { close: () => Promise.all([host, box].map((s) => new Promise((ok) => s.close(ok)))) };
}

/** Console errors, page errors and CSP violations of a page and all its frames. */
function watch(page) {
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  return problems;
}

async function shot(page, name) {
  const file = join(shots, `${name}.png`);
  // Not fullPage: Chromium resizes the viewport for it and captures before an
  // out-of-process (sandboxed) iframe repaints, which gives a blank image.
  await page.screenshot({ path: file });
  return file;
}

before(async () => {
  shots = process.env.WIDGET_SCREENSHOTS ?? (await mkdtemp(join(tmpdir(), "wharf-widget-shots-")));
  await mkdir(shots, { recursive: true });
  console.log(`# screenshots: ${shots}`);

  const data = await mkdtemp(join(tmpdir(), "wharf-widget-db-"));
  const port = await freePort();
  // Wharf refuses unknown WHARF_* variables; give it only the ones this test sets.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("WHARF_")));
  wharf = spawn(WHARF_BIN, ["serve", "--listen", `127.0.0.1:${port}`], {
    env: {
      ...env,
      WHARF_PROFILE: "catalog",
      WHARF_DATABASE: join(data, "wharf.db"),
      WHARF_LOG: "warn",
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const base = `http://127.0.0.1:${port}`;
  wharfBase = base;
  let exited = null;
  wharf.once("exit", (code) => (exited = code));
  await until(
    "wharf serve to be ready",
    async () => (await fetch(`${base}/ready`)).ok,
    () => (exited === null ? null : `wharf serve exited with ${exited}; its stderr is above`),
  );

  client = new Client({ name: "wharf-widget-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`)));

  hostServer = await startOrigins();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
  });
});

after(async () => {
  await browser?.close();
  await client?.close().catch(() => {});
  await hostServer?.close();
  wharf?.kill("SIGTERM");
});

async function loadWidget() {
  const r = await client.readResource({ uri: WIDGET_URI });
  const c = r.contents[0];
  sandbox.html = c.text;
  sandbox.csp = cspFor(c._meta?.ui?.csp);
  return c;
}

test("the catalog tools and the widget resource carry both dialects' metadata", async () => {
  const { tools } = await client.listTools();
  const search = tools.find((t) => t.name === "search_items");
  const get = tools.find((t) => t.name === "get_item");
  for (const t of [search, get]) {
    // The reference host library finds the widget from our metadata.
    assert.equal(getToolUiResourceUri(t), WIDGET_URI);
    assert.equal(t._meta["ui/resourceUri"], WIDGET_URI);
    assert.equal(t._meta["openai/outputTemplate"], "ui://wharf/catalog.skybridge.html");
    assert.equal(t._meta["openai/widgetAccessible"], true);
    assert.deepEqual(t._meta.ui.visibility, ["model", "app"]);
    assert.ok(t._meta["openai/toolInvocation/invoking"].length <= 64);
  }
  const c = await loadWidget();
  assert.equal(c.mimeType, "text/html;profile=mcp-app");
  assert.deepEqual(c._meta.ui.csp, { connectDomains: [], resourceDomains: [], frameDomains: [], baseUriDomains: [] });
  assert.deepEqual(c._meta["openai/widgetCSP"], { connect_domains: [], resource_domains: [] });
  assert.match(c._meta["openai/widgetDescription"], /cards/);
  assert.match(c.text, /^<!doctype html>/);

  const sky = (await client.readResource({ uri: "ui://wharf/catalog.skybridge.html" })).contents[0];
  assert.equal(sky.mimeType, "text/html+skybridge");
  assert.equal(sky.text, c.text);
});

/** The height the widget's content needs, measured in its frame. */
const contentHeight = (frame) =>
  frame.evaluate(() => {
    const root = document.getElementById("root");
    const s = getComputedStyle(root);
    return Math.ceil(root.getBoundingClientRect().height + parseFloat(s.marginTop) + parseFloat(s.marginBottom));
  });

test("in an MCP Apps host: compact inline, fullscreen, load more, detail, link, follow-up, theme, phone width", async () => {
  await loadWidget();
  const page = await browser.newPage({ viewport: { width: 900, height: 1400 } });
  const problems = watch(page);
  await page.exposeFunction("hostCallTool", (p) => client.callTool(p));
  await page.goto(`${hostOrigin}/?widget=${encodeURIComponent(`${sandboxOrigin}/widget.html`)}`);
  await until("the widget to initialize", () => page.evaluate(() => window.hostReady));

  const args = { query: "grid", limit: 5 };
  const result = await client.callTool({ name: "search_items", arguments: args });
  assert.equal(result.structuredContent.hits.length, 5);
  assert.ok(result.structuredContent.next_cursor, "the sample catalog has more than 5 grid items");
  await page.evaluate((a) => window.host.sendToolInput(a), args);
  await page.evaluate((r) => window.host.sendToolResult(r), result);

  const w = page.frameLocator("#widget");
  const cards = w.locator("li.card");
  // Inline in the chat: a compact card of three hits, the rest one tap away.
  await cards.nth(2).waitFor();
  assert.equal(await cards.count(), 3);
  assert.equal(await w.locator("#more").isHidden(), true);
  assert.equal(await w.locator("#show-all").textContent(), "Show all 5+ results");
  const widgetFrame = page.frames().find((f) => f.url().startsWith(sandboxOrigin));
  const sizes = () => page.evaluate(() => window.hostLog.filter((l) => l.kind === "size-changed").map((l) => l.params.height));
  const inlineHeight = await until("the compact height reported", async () => {
    const h = await contentHeight(widgetFrame);
    return (await sizes()).at(-1) === h && h;
  });
  assert.ok(inlineHeight < 500, `a compact inline card, not ${inlineHeight} px`);
  console.log(`# ${await shot(page, "mcp-apps-inline")}`);

  // "Show all" asks the host for fullscreen; there every hit shows, and more load.
  await w.locator("#show-all").click();
  const asked = await until("ui/request-display-mode", () =>
    page.evaluate(() => window.hostLog.find((l) => l.kind === "ui/request-display-mode")?.params),
  );
  assert.deepEqual(asked, { mode: "fullscreen" });
  await cards.nth(4).waitFor();
  assert.equal(await cards.count(), 5);
  assert.equal(await w.locator("#show-all").isHidden(), true);
  assert.equal(await cards.nth(0).locator("h3").textContent(), result.structuredContent.hits[0].title);
  const marks = await w.locator("li.card mark").allTextContents();
  assert.ok(marks.length > 0 && marks.every((m) => m.toLowerCase().startsWith("grid")), `marks: ${marks}`);
  assert.equal(await w.locator("#heading").textContent(), "Results for “grid”");
  console.log(`# ${await shot(page, "mcp-apps-results")}`);

  // Load more: the widget calls search_items with the cursor, through the host.
  await w.locator("#more").click();
  await cards.nth(9).waitFor();
  assert.equal(await cards.count(), 10);
  const tallest = await until("the height of ten cards reported", async () => {
    const h = await contentHeight(widgetFrame);
    return (await sizes()).at(-1) === h && h;
  });
  const calls = () => page.evaluate(() => window.hostLog.filter((l) => l.kind === "tools/call").map((l) => l.params));
  const more = (await calls())[0];
  assert.equal(more.name, "search_items");
  assert.equal(more.arguments.cursor, result.structuredContent.next_cursor);

  // Open an item: get_item through the host, detail rendered, state shared with the model.
  const first = result.structuredContent.hits[0];
  await cards.nth(0).click();
  await w.locator("#detail-view:not([hidden])").waitFor();
  const item = (await client.callTool({ name: "get_item", arguments: { id: first.id } })).structuredContent;
  assert.equal(await w.locator("#detail-title").textContent(), item.title);
  assert.equal(await w.locator("#detail-body").textContent(), item.body);
  assert.deepEqual((await calls())[1], { name: "get_item", arguments: { id: first.id } });
  const context = await until("ui/update-model-context", () =>
    page.evaluate(() => window.hostLog.find((l) => l.kind === "ui/update-model-context")?.params),
  );
  assert.deepEqual(context.structuredContent, { query: "grid", selected: first.id });
  // The height follows the content down as well as up.
  const detailHeight = await until("the detail's height reported", async () => {
    const h = await contentHeight(widgetFrame);
    return (await sizes()).at(-1) === h && h;
  });
  assert.ok(detailHeight < tallest, `shrinks: ${detailHeight} < ${tallest}`);
  // Attributes read as text, never as raw JSON.
  const attributes = await w.locator("#detail-attributes").textContent();
  assert.ok(!attributes.includes("{") && !attributes.includes("["), attributes);
  assert.match(attributes, /Support/);
  console.log(`# ${await shot(page, "mcp-apps-detail")}`);

  // The link opens through the host, the follow-up goes to the host's chat.
  await w.locator("#open").click();
  const link = await until("ui/open-link", () => page.evaluate(() => window.hostLog.find((l) => l.kind === "ui/open-link")?.params));
  assert.equal(link.url, item.url);
  await w.locator("#ask").click();
  const message = await until("ui/message", () => page.evaluate(() => window.hostLog.find((l) => l.kind === "ui/message")?.params));
  assert.equal(message.role, "user");
  assert.match(message.content[0].text, new RegExp(first.id.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));

  // Back to the list, then the host switches to dark.
  await w.locator("#back").click();
  await w.locator("#list-view:not([hidden])").waitFor();
  await page.evaluate(() => window.host.setTheme("dark"));
  await until("the dark theme", () => widgetFrame.evaluate(() => document.documentElement.dataset.theme === "dark"));
  const bg = await widgetFrame.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.equal(bg, "rgb(22, 24, 29)");
  console.log(`# ${await shot(page, "mcp-apps-dark")}`);

  // Phone width: nothing wider than the screen; the host hears the new size.
  const sizesBefore = await page.evaluate(() => window.hostLog.filter((l) => l.kind === "size-changed").length);
  await page.setViewportSize({ width: 375, height: 1400 });
  await until("a size change after resizing", () =>
    page.evaluate((n) => window.hostLog.filter((l) => l.kind === "size-changed").length > n, sizesBefore),
  );
  const overflow = await widgetFrame.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.equal(overflow, 0, "the widget scrolls sideways at phone width");
  const lastSize = await page.evaluate(() => window.hostLog.filter((l) => l.kind === "size-changed").at(-1).params);
  assert.ok(lastSize.height > 0 && lastSize.width <= 375, JSON.stringify(lastSize));
  console.log(`# ${await shot(page, "mcp-apps-phone")}`);

  assert.deepEqual(problems, []);
  await page.close();
});

test("under a window.openai host: toolOutput, callTool, setWidgetState, set_globals, restored state", async () => {
  await loadWidget();
  const args = { query: "color", limit: 3 };
  const result = await client.callTool({ name: "search_items", arguments: args });
  const hits = result.structuredContent.hits;
  assert.equal(hits.length, 3);

  const open = async (widgetState) => {
    const page = await browser.newPage({ viewport: { width: 700, height: 900 } });
    const problems = watch(page);
    await page.exposeFunction("openaiCallTool", (name, a) => client.callTool({ name, arguments: a }));
    await page.addInitScript(
      ({ args, output, widgetState }) => {
        window.openaiLog = [];
        const log = (kind, params) => window.openaiLog.push({ kind, params });
        window.openai = {
          toolInput: args,
          toolOutput: output,
          widgetState,
          theme: "dark",
          setWidgetState: async (s) => {
            window.openai.widgetState = s;
            log("setWidgetState", s);
          },
          callTool: (name, a) => {
            log("callTool", { name, arguments: a });
            return window.openaiCallTool(name, a);
          },
          openExternal: (o) => log("openExternal", o),
          sendFollowUpMessage: async (o) => log("sendFollowUpMessage", o),
          notifyIntrinsicHeight: (h) => log("notifyIntrinsicHeight", h),
          requestDisplayMode: async (o) => {
            log("requestDisplayMode", o);
            return { mode: o.mode };
          },
        };
      },
      { args, output: result.structuredContent, widgetState },
    );
    await page.goto(`${sandboxOrigin}/widget.html`);
    return { page, problems };
  };

  const { page, problems } = await open(null);
  const cards = page.locator("li.card");
  await cards.nth(2).waitFor();
  assert.equal(await cards.nth(0).locator("h3").textContent(), hits[0].title);
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), "dark");
  await until("the widget to settle on window.openai", () => page.evaluate(() => document.documentElement.dataset.bridge === "openai"));
  console.log(`# ${await shot(page, "openai-results")}`);

  // Inline: three hits; "Show all" asks ChatGPT for fullscreen.
  assert.equal(await cards.count(), 3);
  await page.locator("#show-all").click();
  await page.locator("#more:not([hidden])").waitFor();
  await page.locator("#more").click();
  await cards.nth(5).waitFor();
  assert.equal(await cards.count(), 6);
  await cards.nth(1).click();
  await page.locator("#detail-view:not([hidden])").waitFor();
  const log = await page.evaluate(() => window.openaiLog);
  const toolCalls = log.filter((l) => l.kind === "callTool").map((l) => l.params);
  assert.equal(toolCalls[0].name, "search_items");
  assert.equal(toolCalls[0].arguments.cursor, result.structuredContent.next_cursor);
  assert.deepEqual(toolCalls[1], { name: "get_item", arguments: { id: hits[1].id } });
  assert.deepEqual(log.find((l) => l.kind === "requestDisplayMode")?.params, { mode: "fullscreen" });
  const saved = log.filter((l) => l.kind === "setWidgetState").at(-1).params;
  assert.deepEqual(saved, { query: "color", selected: hits[1].id });
  assert.ok(log.some((l) => l.kind === "notifyIntrinsicHeight" && l.params > 0));

  await page.locator("#open").click();
  await page.locator("#ask").click();
  const after = await page.evaluate(() => window.openaiLog);
  assert.ok(after.some((l) => l.kind === "openExternal" && l.params.href.startsWith("https://")));
  assert.ok(after.some((l) => l.kind === "sendFollowUpMessage" && l.params.prompt.includes(hits[1].id)));

  await page.evaluate(() => window.dispatchEvent(new CustomEvent("openai:set_globals", { detail: { globals: { theme: "light" } } })));
  assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), "light");
  console.log(`# ${await shot(page, "openai-detail-light")}`);
  assert.deepEqual(problems, []);
  await page.close();

  // A new render with the saved widget state opens the same item again.
  const again = await open(saved);
  await again.page.locator("#detail-view:not([hidden])").waitFor();
  const item = (await client.callTool({ name: "get_item", arguments: { id: hits[1].id } })).structuredContent;
  assert.equal(await again.page.locator("#detail-title").textContent(), item.title);
  assert.deepEqual(again.problems, []);
  await again.page.close();
});

test("an error reads as a sentence for people, in both dialects, and nothing waits", async () => {
  await loadWidget();
  const failed = { isError: true, content: [{ type: "text", text: "No item has the id `gone.item`. Use search_items to find ids." }] };

  // MCP Apps: the host delivers the failed result.
  const page = await browser.newPage({ viewport: { width: 700, height: 900 } });
  const problems = watch(page);
  await page.exposeFunction("hostCallTool", (p) => client.callTool(p));
  await page.goto(`${hostOrigin}/?widget=${encodeURIComponent(`${sandboxOrigin}/widget.html`)}`);
  await until("the widget to initialize", () => page.evaluate(() => window.hostReady));
  await page.evaluate((r) => window.host.sendToolResult(r), failed);
  const w = page.frameLocator("#widget");
  await w.locator("#error:not([hidden])").waitFor();
  assert.equal(await w.locator("#error").textContent(), "This item is no longer in the catalog.");
  assert.equal(await w.locator("#status").textContent(), "", "no Waiting… beside an error");
  const frame = page.frames().find((f) => f.url().startsWith(sandboxOrigin));
  const height = await until("the error's height reported", async () => {
    const h = await contentHeight(frame);
    const last = await page.evaluate(() => window.hostLog.filter((l) => l.kind === "size-changed").at(-1)?.params.height);
    return last === h && h;
  });
  assert.ok(height < 120, `an error is a line, not ${height} px`);
  console.log(`# ${await shot(page, "mcp-apps-error")}`);
  assert.deepEqual(problems, []);
  await page.close();

  // window.openai only: an error result comes as metadata with no output.
  const o = await browser.newPage({ viewport: { width: 375, height: 700 } });
  const oProblems = watch(o);
  await o.addInitScript(() => {
    window.openai = { toolInput: { query: "x" }, toolOutput: null, toolResponseMetadata: { "wharf/callId": "c1" }, theme: "dark" };
  });
  await o.goto(`${sandboxOrigin}/widget.html`);
  await o.locator("#error:not([hidden])").waitFor();
  assert.equal(await o.locator("#error").textContent(), "The catalog could not answer this. Try again, or ask in the chat.");
  assert.ok(!(await o.locator("#status").textContent()).includes("Waiting"));
  console.log(`# ${await shot(o, "openai-error-phone-dark")}`);
  assert.deepEqual(oProblems, []);
  await o.close();
});

test("through `wharf gateway` with a namespace: the widget's own tool names still reach its server", async () => {
  const dir = await mkdtemp(join(tmpdir(), "wharf-widget-gateway-"));
  const file = join(dir, "mcp.json");
  await writeFile(file, JSON.stringify({ mcpServers: { catalog: { url: `${wharfBase}/mcp` } } }));
  const { gateway, gw } = await startGateway(dir, file);
  try {
    const { tools } = await gw.listTools();
    const names = tools.map((t) => t.name);
    assert.ok(names.includes("catalog_search_items") && !names.includes("search_items"), names.join(", "));
    const r = await gw.readResource({ uri: WIDGET_URI });
    sandbox.html = r.contents[0].text;
    sandbox.csp = cspFor(r.contents[0]._meta?.ui?.csp);

    const page = await browser.newPage({ viewport: { width: 900, height: 1400 } });
    const problems = watch(page);
    await page.exposeFunction("hostCallTool", (p) => gw.callTool(p));
    await page.goto(`${hostOrigin}/?widget=${encodeURIComponent(`${sandboxOrigin}/widget.html`)}`);
    await until("the widget to initialize", () => page.evaluate(() => window.hostReady));
    const args = { query: "grid", limit: 5 };
    const result = await gw.callTool({ name: "catalog_search_items", arguments: args });
    await page.evaluate((a) => window.host.sendToolInput(a), args);
    await page.evaluate((res) => window.host.sendToolResult(res), result);

    const w = page.frameLocator("#widget");
    const cards = w.locator("li.card");
    await cards.nth(2).waitFor();
    await w.locator("#show-all").click();
    await cards.nth(4).waitFor();
    // "Load more" and opening a card call search_items and get_item by the
    // names the catalog gave them; the gateway routes them to it.
    await w.locator("#more").click();
    await cards.nth(9).waitFor();
    await cards.nth(0).click();
    await w.locator("#detail-view:not([hidden])").waitFor();
    assert.equal(await w.locator("#detail-title").textContent(), result.structuredContent.hits[0].title);
    assert.equal(await w.locator("#error").isHidden(), true);
    const calls = await page.evaluate(() => window.hostLog.filter((l) => l.kind === "tools/call").map((l) => l.params.name));
    assert.deepEqual(calls, ["search_items", "get_item"]);
    console.log(`# ${await shot(page, "gateway-detail")}`);
    assert.deepEqual(problems, []);
    await page.close();
  } finally {
    await gw.close().catch(() => {});
    gateway.kill("SIGTERM");
  }
});

test("through `wharf gateway`: a widget served by a Python SDK server calls its own tool name", async () => {
  const dir = await mkdtemp(join(tmpdir(), "wharf-widget-python-"));
  const built = await esbuild.build({
    entryPoints: [join(here, "fixtures/dice_widget.ts")],
    bundle: true,
    format: "esm",
    platform: "browser",
    write: false,
    logLevel: "warning",
  });
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>dice</title></head>
<body><p>Rolled: <span id="value">-</span></p><button id="roll">Roll a d20</button>
<script type="module">${built.outputFiles[0].text}</script></body></html>`;
  const widgetFile = join(dir, "dice.html");
  await writeFile(widgetFile, html);
  const file = join(dir, "mcp.json");
  const python = process.env.TEST_PYTHON ?? "python3";
  await writeFile(
    file,
    JSON.stringify({
      mcpServers: {
        dice: { command: python, args: [join(here, "fixtures/dice_server.py")], env: { DICE_WIDGET_HTML: widgetFile } },
      },
    }),
  );
  const { gateway, gw } = await startGateway(dir, file);
  try {
    const { tools } = await gw.listTools();
    const tool = tools.find((t) => t.name === "dice_roll_dice");
    assert.ok(tool, tools.map((t) => t.name).join(", "));
    const uri = getToolUiResourceUri(tool);
    assert.equal(uri, "ui://dice/widget.html");
    const r = await gw.readResource({ uri });
    sandbox.html = r.contents[0].text;
    sandbox.csp = cspFor(r.contents[0]._meta?.ui?.csp);

    const page = await browser.newPage({ viewport: { width: 600, height: 400 } });
    const problems = watch(page);
    await page.exposeFunction("hostCallTool", (p) => gw.callTool(p));
    await page.goto(`${hostOrigin}/?widget=${encodeURIComponent(`${sandboxOrigin}/widget.html`)}`);
    await until("the dice widget to initialize", () => page.evaluate(() => window.hostReady));
    const first = await gw.callTool({ name: "dice_roll_dice", arguments: { sides: 6 } });
    await page.evaluate((a) => window.host.sendToolInput(a), { sides: 6 });
    await page.evaluate((res) => window.host.sendToolResult(res), first);
    const w = page.frameLocator("#widget");
    const shown = JSON.parse(first.content[0].text).value;
    await until("the first roll shown", async () => (await w.locator("#value").textContent()) === String(shown));
    // The widget rolls again by its server's own name; the gateway routes it.
    await w.locator("#roll").click();
    await w.locator("body[data-rolls='1']").waitFor();
    const value = Number(await w.locator("#value").textContent());
    assert.ok(value >= 1 && value <= 20, `rolled ${value}`);
    const calls = await page.evaluate(() => window.hostLog.filter((l) => l.kind === "tools/call").map((l) => l.params.name));
    assert.deepEqual(calls, ["roll_dice"]);
    console.log(`# ${await shot(page, "gateway-python-widget")}`);
    assert.deepEqual(problems, []);
    await page.close();
  } finally {
    await gw.close().catch(() => {});
    gateway.kill("SIGTERM");
  }
});
