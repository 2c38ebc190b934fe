// The catalog widget: renders `search_items` and `get_item` results.
//
// It speaks the MCP Apps `ui/*` bridge (bridge.ts) in every host, and uses `window.openai` where ChatGPT provides it: for widget
// state, and for everything else when no bridge answers (older skybridge hosts).
// All text from the server is inserted with textContent, never as HTML.

import { Bridge, type HostContext } from "./bridge";

type Hit = { id: string; title: string; snippet: string; tags: string[]; url?: string | null; score: number };
type SearchPage = { hits: Hit[]; next_cursor?: string | null };
type Item = {
  id: string;
  title: string;
  body: string;
  url?: string | null;
  tags: string[];
  attributes: Record<string, unknown>;
};
type ToolResult = { structuredContent?: unknown; isError?: boolean; content?: { type: string; text?: string }[] };
/** What persists through the host's widget state. The model sees it: keep it small. */
type WidgetState = { query?: string; selected?: string };
type Theme = "light" | "dark";

/** The part of ChatGPT's `window.openai` this widget uses. */
interface OpenAiGlobals {
  toolInput?: Record<string, unknown>;
  toolOutput?: unknown;
  widgetState?: WidgetState | null;
  theme?: Theme;
  setWidgetState?: (state: WidgetState) => Promise<void> | void;
  callTool?: (name: string, args: Record<string, unknown>) => Promise<ToolResult>;
  openExternal?: (options: { href: string }) => void;
  sendFollowUpMessage?: (options: { prompt: string }) => Promise<void>;
  notifyIntrinsicHeight?: (height: number) => void;
}

declare global {
  interface Window {
    openai?: OpenAiGlobals;
  }
}

/** How long to wait for an MCP Apps host to answer `ui/initialize` before
 *  assuming there is none (a skybridge-only host, or a page opened directly). */
const BRIDGE_TIMEOUT_MS = 3000;
/** Hits fetched per "load more" when the model's call did not say. */
const DEFAULT_PAGE = 10;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const view = {
  heading: $<HTMLSpanElement>("heading"),
  status: $<HTMLSpanElement>("status"),
  list: $<HTMLElement>("list-view"),
  hits: $<HTMLOListElement>("hits"),
  empty: $<HTMLParagraphElement>("empty"),
  more: $<HTMLButtonElement>("more"),
  detail: $<HTMLElement>("detail-view"),
  back: $<HTMLButtonElement>("back"),
  title: $<HTMLHeadingElement>("detail-title"),
  tags: $<HTMLUListElement>("detail-tags"),
  body: $<HTMLParagraphElement>("detail-body"),
  attributes: $<HTMLElement>("detail-attributes"),
  open: $<HTMLButtonElement>("open"),
  ask: $<HTMLButtonElement>("ask"),
  error: $<HTMLParagraphElement>("error"),
};

const state = {
  query: "",
  /** The page size of the model's search, reused by "load more". */
  limit: DEFAULT_PAGE,
  hits: [] as Hit[],
  cursor: null as string | null,
  item: null as Item | null,
  /** False until the first result arrives: until then the widget says it is waiting. */
  loaded: false,
};

let app: Bridge | null = null;
const openai = (): OpenAiGlobals | undefined => window.openai;

// ---------------------------------------------------------------- host calls

async function callTool(name: string, args: Record<string, unknown>): Promise<ToolResult> {
  if (app) return (await app.request("tools/call", { name, arguments: args })) as ToolResult;
  const o = openai();
  if (o?.callTool) return o.callTool(name, args);
  throw new Error("This host does not let widgets call tools.");
}

function saveState(): void {
  const s: WidgetState = { query: state.query || undefined, selected: state.item?.id };
  void openai()?.setWidgetState?.(s);
  if (app) {
    const text = s.selected ? `The user is looking at item ${s.selected}.` : `The user is browsing results for "${s.query ?? ""}".`;
    app.request("ui/update-model-context", { structuredContent: s, content: [{ type: "text", text }] }).catch(() => {
      // Hosts without ui/update-model-context: nothing to keep in sync.
    });
  }
}

async function openLink(url: string): Promise<void> {
  if (app) {
    await app.request("ui/open-link", { url });
    return;
  }
  openai()?.openExternal?.({ href: url });
}

async function followUp(text: string): Promise<void> {
  if (app) {
    await app.request("ui/message", { role: "user", content: [{ type: "text", text }] });
    return;
  }
  await openai()?.sendFollowUpMessage?.({ prompt: text });
}

function reportHeight(): void {
  // The MCP Apps bridge reports size from a ResizeObserver; ChatGPT's globals want a call.
  if (!app) openai()?.notifyIntrinsicHeight?.(document.documentElement.scrollHeight);
}

// ---------------------------------------------------------------- rendering

/** The snippet marks matched words as **word**; render them as <mark>. */
function snippet(text: string): DocumentFragment {
  const out = document.createDocumentFragment();
  text.split("**").forEach((part, i) => {
    if (!part) return;
    if (i % 2 === 1) {
      const m = document.createElement("mark");
      m.textContent = part;
      out.append(m);
    } else {
      out.append(document.createTextNode(part));
    }
  });
  return out;
}

function tagList(target: HTMLUListElement, tags: string[]): void {
  target.replaceChildren(
    ...tags.map((t) => {
      const li = document.createElement("li");
      li.textContent = t;
      return li;
    }),
  );
}

function card(hit: Hit): HTMLLIElement {
  const li = document.createElement("li");
  li.className = "card";
  li.tabIndex = 0;
  li.dataset.id = hit.id;
  const h = document.createElement("h3");
  h.textContent = hit.title;
  const p = document.createElement("p");
  p.append(snippet(hit.snippet));
  const tags = document.createElement("ul");
  tags.className = "tags";
  tagList(tags, hit.tags);
  li.append(h, p, tags);
  const open = () => void showItem(hit.id);
  li.addEventListener("click", open);
  li.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      open();
    }
  });
  return li;
}

function setStatus(text: string): void {
  view.status.textContent = text;
}

function showError(message: string | null): void {
  view.error.hidden = message === null;
  view.error.textContent = message ?? "";
  reportHeight();
}

function renderList(): void {
  view.detail.hidden = true;
  view.list.hidden = false;
  view.heading.textContent = state.query ? `Results for “${state.query}”` : "Catalog";
  view.hits.replaceChildren(...state.hits.map(card));
  view.empty.hidden = !state.loaded || state.hits.length > 0;
  view.more.hidden = !state.cursor;
  setStatus(state.loaded ? `${state.hits.length} shown${state.cursor ? ", more available" : ""}` : "Waiting for results…");
  reportHeight();
}

function renderItem(item: Item): void {
  view.list.hidden = true;
  view.detail.hidden = false;
  view.heading.textContent = "Item";
  view.title.textContent = item.title;
  tagList(view.tags, item.tags);
  view.body.textContent = item.body;
  view.attributes.replaceChildren(
    ...Object.entries(item.attributes ?? {}).flatMap(([k, v]) => {
      const dt = document.createElement("dt");
      dt.textContent = k;
      const dd = document.createElement("dd");
      dd.textContent = typeof v === "string" ? v : JSON.stringify(v);
      return [dt, dd];
    }),
  );
  view.open.hidden = !item.url;
  view.back.hidden = state.hits.length === 0;
  setStatus(item.id);
  reportHeight();
}

// ---------------------------------------------------------------- data

function isPage(v: unknown): v is SearchPage {
  return typeof v === "object" && v !== null && Array.isArray((v as SearchPage).hits);
}

function isItem(v: unknown): v is Item {
  return typeof v === "object" && v !== null && typeof (v as Item).id === "string" && typeof (v as Item).body === "string";
}

function errorText(r: ToolResult): string {
  return r.content?.find((c) => c.type === "text")?.text ?? "The tool reported an error.";
}

/** A tool result arrived from the host (the model's call, not ours). */
function acceptResult(r: ToolResult): void {
  if (r.isError) {
    showError(errorText(r));
    return;
  }
  showError(null);
  state.loaded = true;
  const data = r.structuredContent;
  if (isPage(data)) {
    state.hits = data.hits;
    state.cursor = data.next_cursor ?? null;
    state.item = null;
    renderList();
  } else if (isItem(data)) {
    state.item = data;
    renderItem(data);
  }
}

function acceptInput(args: Record<string, unknown> | undefined): void {
  if (typeof args?.query === "string") state.query = args.query;
  if (typeof args?.limit === "number") state.limit = args.limit;
}

async function loadMore(): Promise<void> {
  if (!state.cursor) return;
  view.more.disabled = true;
  setStatus("Loading…");
  try {
    const r = await callTool("search_items", { query: state.query, cursor: state.cursor, limit: state.limit });
    if (r.isError || !isPage(r.structuredContent)) throw new Error(errorText(r));
    state.hits = state.hits.concat(r.structuredContent.hits);
    state.cursor = r.structuredContent.next_cursor ?? null;
    showError(null);
    renderList();
  } catch (e) {
    showError(e instanceof Error ? e.message : String(e));
    setStatus("");
  } finally {
    view.more.disabled = false;
  }
}

async function showItem(id: string): Promise<void> {
  setStatus("Loading…");
  try {
    const r = await callTool("get_item", { id });
    if (r.isError || !isItem(r.structuredContent)) throw new Error(errorText(r));
    state.item = r.structuredContent;
    showError(null);
    renderItem(state.item);
    saveState();
  } catch (e) {
    showError(e instanceof Error ? e.message : String(e));
    setStatus("");
  }
}

function back(): void {
  state.item = null;
  renderList();
  saveState();
}

// ---------------------------------------------------------------- theme

function setTheme(theme: Theme | undefined): void {
  if (theme !== "light" && theme !== "dark") return;
  document.documentElement.dataset.theme = theme;
  document.documentElement.style.colorScheme = theme;
}

function acceptHostContext(ctx: HostContext): void {
  setTheme(ctx.theme);
  // Host style variables (--color-background-primary, --font-sans, ...) override the defaults in style.css.
  for (const [name, value] of Object.entries(ctx.styles?.variables ?? {})) {
    if (name.startsWith("--") && typeof value === "string") document.documentElement.style.setProperty(name, value);
  }
}

// ---------------------------------------------------------------- start

async function connectBridge(): Promise<Bridge | null> {
  if (window.parent === window) return null;
  const candidate = new Bridge(window.parent);
  candidate.on("ui/notifications/tool-input", (p) => acceptInput(p.arguments as Record<string, unknown> | undefined));
  candidate.on("ui/notifications/tool-result", (p) => acceptResult(p as ToolResult));
  candidate.on("ui/notifications/host-context-changed", () => acceptHostContext(candidate.hostContext));
  if (!(await candidate.connect({ name: "wharf-catalog-widget", version: "1.0.0" }, BRIDGE_TIMEOUT_MS))) return null;
  acceptHostContext(candidate.hostContext);
  candidate.reportSize();
  return candidate;
}

function startOpenAi(): void {
  const o = openai();
  if (!o) return;
  setTheme(o.theme);
  acceptInput(o.toolInput);
  const saved = o.widgetState;
  if (saved?.query) state.query = saved.query;
  if (o.toolOutput) acceptResult({ structuredContent: o.toolOutput });
  if (saved?.selected && state.item?.id !== saved.selected) void showItem(saved.selected);
  window.addEventListener("openai:set_globals", (e) => {
    const globals = (e as CustomEvent<{ globals?: Partial<OpenAiGlobals> }>).detail?.globals ?? {};
    if (globals.theme) setTheme(globals.theme);
    if (globals.toolInput) acceptInput(globals.toolInput);
    if (globals.toolOutput) acceptResult({ structuredContent: globals.toolOutput });
  });
}

view.more.addEventListener("click", () => void loadMore());
view.back.addEventListener("click", back);
view.open.addEventListener("click", () => {
  if (state.item?.url) void openLink(state.item.url).catch((e) => showError(String(e)));
});
view.ask.addEventListener("click", () => {
  const item = state.item;
  if (!item) return;
  void followUp(`Tell me more about “${item.title}” (catalog item ${item.id}).`).catch((e) => showError(String(e)));
});

renderList();
startOpenAi();
void connectBridge().then((connected) => {
  app = connected;
  document.documentElement.dataset.bridge = connected ? "mcp-apps" : window.openai ? "openai" : "none";
});
