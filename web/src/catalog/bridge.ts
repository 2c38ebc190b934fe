// The view side of the MCP Apps `ui/*` bridge: JSON-RPC 2.0 over postMessage
// with the host window. Written here rather than taken from the ext-apps `App`
// class because that class brings zod and the MCP client (about 500 KB minified)
// into a page every chat loads; this is the same protocol in a few kilobytes.
// The browser tests run it against the ext-apps `AppBridge` host, so the two
// cannot drift apart unnoticed. See docs/design/widgets.md.

/** The MCP Apps protocol version this view speaks. */
export const UI_PROTOCOL_VERSION = "2026-01-26";
/** How long a request to the host may take before the view gives up on it. */
const REQUEST_TIMEOUT_MS = 60_000;

export type HostContext = {
  theme?: "light" | "dark";
  styles?: { variables?: Record<string, string | undefined> };
  displayMode?: string;
  locale?: string;
  [key: string]: unknown;
};

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> };
type Message = {
  jsonrpc?: string;
  id?: number | string;
  method?: string;
  params?: Record<string, unknown>;
  result?: unknown;
  error?: { code: number; message: string };
};

export class Bridge {
  hostContext: HostContext = {};
  private nextId = 1;
  private pending = new Map<number | string, Pending>();
  private handlers = new Map<string, (params: Record<string, unknown>) => void>();

  constructor(private host: Window) {
    window.addEventListener("message", (e) => this.receive(e));
  }

  /** Handle a notification from the host (`ui/notifications/tool-result`, ...). */
  on(method: string, handler: (params: Record<string, unknown>) => void): void {
    this.handlers.set(method, handler);
  }

  /** `ui/initialize` then `ui/notifications/initialized`; false if the host never answers. */
  async connect(appInfo: { name: string; version: string }, timeoutMs: number): Promise<boolean> {
    try {
      const result = (await this.request(
        "ui/initialize",
        { appInfo, appCapabilities: {}, protocolVersion: UI_PROTOCOL_VERSION },
        timeoutMs,
      )) as { hostContext?: HostContext };
      this.hostContext = result?.hostContext ?? {};
    } catch {
      return false;
    }
    this.notify("ui/notifications/initialized", {});
    return true;
  }

  request(method: string, params: Record<string, unknown>, timeoutMs = REQUEST_TIMEOUT_MS): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`The host did not answer ${method} in time.`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.host.postMessage({ jsonrpc: "2.0", id, method, params }, "*");
    });
  }

  notify(method: string, params: Record<string, unknown>): void {
    this.host.postMessage({ jsonrpc: "2.0", method, params }, "*");
  }

  /** Report the size of `content` so the host can fit the iframe to it. The
   *  content is measured, not the document: a document is at least as tall as
   *  the iframe the host made for it, so its height would never shrink. */
  reportSize(content: HTMLElement): () => void {
    let last = "";
    const send = () => {
      const size = { width: Math.ceil(document.documentElement.scrollWidth), height: contentHeight(content) };
      const key = `${size.width}x${size.height}`;
      if (key !== last) {
        last = key;
        this.notify("ui/notifications/size-changed", size);
      }
    };
    const observer = new ResizeObserver(send);
    observer.observe(content);
    observer.observe(document.documentElement);
    send();
    return () => observer.disconnect();
  }

  private receive(e: MessageEvent): void {
    if (e.source !== this.host) return;
    const m = e.data as Message;
    if (!m || typeof m !== "object" || m.jsonrpc !== "2.0") return;
    if (m.method === undefined && m.id !== undefined) {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      clearTimeout(p.timer);
      if (m.error) p.reject(new Error(m.error.message));
      else p.resolve(m.result);
      return;
    }
    if (m.method === undefined) return;
    if (m.id !== undefined) {
      this.answer(m.id, m.method);
      return;
    }
    if (m.method === "ui/notifications/host-context-changed") {
      this.hostContext = { ...this.hostContext, ...(m.params ?? {}) };
    }
    this.handlers.get(m.method)?.(m.params ?? {});
  }

  /** The host's requests to the view: this view has nothing to tear down and offers no tools. */
  private answer(id: number | string, method: string): void {
    if (method === "ping" || method === "ui/resource-teardown") {
      this.host.postMessage({ jsonrpc: "2.0", id, result: {} }, "*");
    } else {
      this.host.postMessage({ jsonrpc: "2.0", id, error: { code: -32601, message: `${method} is not supported by this view` } }, "*");
    }
  }
}

/** The height `content` needs: its box and its vertical margins. */
export function contentHeight(content: HTMLElement): number {
  const style = getComputedStyle(content);
  const margins = parseFloat(style.marginTop) + parseFloat(style.marginBottom);
  return Math.ceil(content.getBoundingClientRect().height + margins);
}
