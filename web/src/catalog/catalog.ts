// The catalog widget: renders `search_items` and `get_item` results.
//
// It speaks the MCP Apps `ui/*` bridge (bridge.ts) in every host, and uses `window.openai` where ChatGPT provides it: for widget
// state, and for everything else when no bridge answers (older skybridge hosts).
// All text from the server is inserted with textContent, never as HTML.

import { Bridge, contentHeight, type HostContext } from "./bridge";

type Hit = { id: string; title: string; snippet: string; tags: string[]; url?: string | null; score: number };
type SearchPage = { hits: Hit[]; next_cursor?: string | null; note?: string | null };
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
type DisplayMode = "inline" | "fullscreen" | "pip";

/** The part of ChatGPT's `window.openai` this widget uses. */
interface OpenAiGlobals {
  toolInput?: Record<string, unknown>;
  toolOutput?: unknown;
  /** The result's `_meta`: set with every result, errors included. */
  toolResponseMetadata?: Record<string, unknown> | null;
  widgetState?: WidgetState | null;
  theme?: Theme;
  displayMode?: DisplayMode;
  requestDisplayMode?: (options: { mode: DisplayMode }) => Promise<{ mode: DisplayMode }>;
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
/** Hits shown inline in the chat; the rest are one tap away, in fullscreen. */
const INLINE_HITS = 3;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const view = {
  root: $<HTMLElement>("root"),
  heading: $<HTMLSpanElement>("heading"),
  note: $<HTMLParagraphElement>("note"),
  showAll: $<HTMLButtonElement>("show-all"),
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
  /** False until the first result (or error) arrives: until then the widget says it is waiting. */
  loaded: false,
  /** Set when no item had every word (the page's `note`). */
  note: null as string | null,
  displayMode: "inline" as DisplayMode,
  /** Inline, but showing every hit: the host could not go fullscreen. */
  expanded: false,
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
  if (!app) openai()?.notifyIntrinsicHeight?.(contentHeight(view.root));
}

/** Inline in the chat, a few hits; fullscreen (or expanded), all of them. */
function compact(): boolean {
  return state.displayMode === "inline" && !state.expanded;
}

/** Ask the host for fullscreen to browse every hit; where it cannot, show them inline. */
async function showAll(): Promise<void> {
  let mode: DisplayMode = state.displayMode;
  try {
    if (app) mode = ((await app.request("ui/request-display-mode", { mode: "fullscreen" })) as { mode?: DisplayMode })?.mode ?? mode;
    else if (openai()?.requestDisplayMode) mode = (await openai()!.requestDisplayMode!({ mode: "fullscreen" }))?.mode ?? "fullscreen";
  } catch {
    // A host without display modes: browse inline instead.
  }
  if (mode === "fullscreen") state.displayMode = mode;
  else state.expanded = true;
  renderList();
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

/** Show `message` (written for people) in place of results; `null` clears it. */
function showError(message: string | null): void {
  view.error.hidden = message === null;
  view.error.textContent = message ?? "";
  if (message !== null) {
    state.loaded = true;
    view.list.hidden = state.item !== null || state.hits.length === 0;
    view.empty.hidden = true;
    setStatus("");
  }
  reportHeight();
}

function renderList(): void {
  view.detail.hidden = true;
  view.list.hidden = false;
  view.heading.textContent = state.query ? `Results for “${state.query}”` : "Catalog";
  const shown = compact() ? state.hits.slice(0, INLINE_HITS) : state.hits;
  view.hits.replaceChildren(...shown.map(card));
  view.note.hidden = !state.note || state.hits.length === 0;
  view.note.textContent = state.note ?? "";
  view.empty.hidden = !state.loaded || state.hits.length > 0;
  view.empty.textContent = state.query ? `Nothing in the catalog matches “${state.query}”.` : "Nothing in the catalog matches.";
  const hidden = state.hits.length - shown.length;
  view.showAll.hidden = !compact() || (hidden === 0 && !state.cursor);
  view.showAll.textContent = `Show all ${state.hits.length}${state.cursor ? "+" : ""} results`;
  view.more.hidden = compact() || !state.cursor;
  setStatus(state.loaded ? `${state.hits.length}${state.cursor ? "+" : ""} found` : "Waiting for results…");
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
      dt.textContent = label(k);
      const dd = document.createElement("dd");
      dd.append(readable(v));
      return [dt, dd];
    }),
  );
  view.open.hidden = !item.url;
  view.back.hidden = state.hits.length === 0;
  setStatus(item.id);
  reportHeight();
}

/** `spec_urls` → "Spec urls". */
function label(key: string): string {
  const words = key.replace(/[_-]+/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** An attribute's value as a person reads it: lists one per line, objects as
 *  "name value" pairs, yes/no for booleans; never raw JSON. */
function readable(v: unknown): Node {
  if (v === null || v === undefined) return document.createTextNode("—");
  if (typeof v === "boolean") return document.createTextNode(v ? "yes" : "no");
  if (typeof v !== "object") return document.createTextNode(String(v));
  const list = document.createElement("ul");
  list.className = "values";
  const entries: [string | null, unknown][] = Array.isArray(v) ? v.map((x) => [null, x]) : Object.entries(v as object);
  for (const [k, x] of entries) {
    const li = document.createElement("li");
    if (k !== null) {
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = `${label(k)} `;
      li.append(name);
    }
    li.append(typeof x === "object" && x !== null ? document.createTextNode(JSON.stringify(x)) : readable(x));
    list.append(li);
  }
  return list;
}

// ---------------------------------------------------------------- data

function isPage(v: unknown): v is SearchPage {
  return typeof v === "object" && v !== null && Array.isArray((v as SearchPage).hits);
}

function isItem(v: unknown): v is Item {
  return typeof v === "object" && v !== null && typeof (v as Item).id === "string" && typeof (v as Item).body === "string";
}

/** What a person is told when a call failed. The tool's own text is written
 *  for the model (ids in backticks, what to call next): the model keeps it. */
function errorText(r: ToolResult): string {
  const said = r.content?.find((c) => c.type === "text")?.text ?? "";
  if (/^No item has the id/.test(said)) return "This item is no longer in the catalog.";
  return "The catalog could not answer this. Try again, or ask in the chat.";
}

/** A tool result arrived from the host (the model's call, not ours). */
function acceptResult(r: ToolResult): void {
  if (r.isError) {
    showError(errorText(r));
    return;
  }
  const data = r.structuredContent;
  if (isPage(data)) {
    showError(null);
    state.loaded = true;
    state.hits = data.hits;
    state.cursor = data.next_cursor ?? null;
    state.note = data.note ?? null;
    state.item = null;
    renderList();
  } else if (isItem(data)) {
    showError(null);
    state.loaded = true;
    state.item = data;
    renderItem(data);
  } else {
    showError(errorText(r));
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
    showError(e instanceof Error ? e.message : "The catalog could not answer this. Try again, or ask in the chat.");
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
    showError(e instanceof Error ? e.message : "The catalog could not answer this. Try again, or ask in the chat.");
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
  setDisplayMode(ctx.displayMode);
  // Host style variables (--color-background-primary, --font-sans, ...) override the defaults in style.css.
  for (const [name, value] of Object.entries(ctx.styles?.variables ?? {})) {
    if (name.startsWith("--") && typeof value === "string") document.documentElement.style.setProperty(name, value);
  }
}

function setDisplayMode(mode: unknown): void {
  if (mode !== "inline" && mode !== "fullscreen" && mode !== "pip") return;
  if (mode === state.displayMode) return;
  state.displayMode = mode;
  if (!state.item) renderList();
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
  candidate.reportSize(view.root);
  return candidate;
}

function startOpenAi(): void {
  const o = openai();
  if (!o) return;
  setTheme(o.theme);
  setDisplayMode(o.displayMode);
  acceptInput(o.toolInput);
  const saved = o.widgetState;
  if (saved?.query) state.query = saved.query;
  // A result always comes with its metadata; an error result has no output.
  if (o.toolOutput) acceptResult({ structuredContent: o.toolOutput });
  else if (o.toolResponseMetadata) acceptResult({ isError: true });
  if (saved?.selected && state.item?.id !== saved.selected) void showItem(saved.selected);
  window.addEventListener("openai:set_globals", (e) => {
    const globals = (e as CustomEvent<{ globals?: Partial<OpenAiGlobals> }>).detail?.globals ?? {};
    if (globals.theme) setTheme(globals.theme);
    if (globals.displayMode) setDisplayMode(globals.displayMode);
    if (globals.toolInput) acceptInput(globals.toolInput);
    if (globals.toolOutput) acceptResult({ structuredContent: globals.toolOutput });
    else if (globals.toolResponseMetadata) acceptResult({ isError: true });
  });
}

view.more.addEventListener("click", () => void loadMore());
view.showAll.addEventListener("click", () => void showAll());
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
