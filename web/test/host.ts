// A minimal MCP Apps host for the browser tests, built on the ext-apps
// reference `AppBridge`: it renders the widget in a sandboxed iframe from a
// second origin and forwards the widget's tools/call to the Node test process
// (which holds the real MCP client connected to `wharf serve`). Everything the
// widget asks of the host is recorded in `window.hostLog` for the test to read.

import { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";

type Logged = { kind: string; params: unknown };

declare global {
  interface Window {
    hostLog: Logged[];
    hostReady: boolean;
    /** Exposed by the test: runs tools/call against Wharf with the real client. */
    hostCallTool: (params: unknown) => Promise<unknown>;
    host: {
      sendToolInput(args: Record<string, unknown>): Promise<void>;
      sendToolResult(result: unknown): Promise<void>;
      setTheme(theme: "light" | "dark"): void;
      /** Let the view go fullscreen when it asks (the default), or not. */
      allowFullscreen: boolean;
    };
  }
}

window.hostLog = [];
window.hostReady = false;

const iframe = document.getElementById("widget") as HTMLIFrameElement;

const bridge = new AppBridge(
  null,
  { name: "wharf-test-host", version: "1.0.0" },
  { openLinks: {}, serverTools: {}, message: { text: {} }, updateModelContext: { text: {} } },
  { hostContext: { theme: "light", displayMode: "inline", availableDisplayModes: ["inline", "fullscreen"], platform: "web" } },
);
let displayMode: "inline" | "fullscreen" = "inline";
let theme: "light" | "dark" = "light";
const context = () => ({ theme, displayMode, availableDisplayModes: ["inline", "fullscreen"] as const, platform: "web" as const });
const log = (kind: string, p: unknown) => window.hostLog.push({ kind, params: p });
bridge.oncalltool = async (p) => {
  log("tools/call", p);
  return (await window.hostCallTool(p)) as never;
};
bridge.onopenlink = async (p) => {
  log("ui/open-link", p);
  return {};
};
bridge.onmessage = async (p) => {
  log("ui/message", p);
  return {};
};
bridge.onupdatemodelcontext = async (p) => {
  log("ui/update-model-context", p);
  return {};
};
bridge.onrequestdisplaymode = async (p) => {
  log("ui/request-display-mode", p);
  if (window.host.allowFullscreen && (p.mode === "fullscreen" || p.mode === "inline")) {
    displayMode = p.mode;
    bridge.setHostContext(context() as never);
  }
  return { mode: displayMode };
};
bridge.onsizechange = (p) => {
  log("size-changed", p);
  if (typeof p.height === "number") iframe.style.height = `${p.height}px`;
};
bridge.oninitialized = () => {
  window.hostReady = true;
};

window.host = {
  sendToolInput: (args) => bridge.sendToolInput({ arguments: args }),
  sendToolResult: (result) => bridge.sendToolResult(result as never),
  setTheme: (t) => {
    theme = t;
    bridge.setHostContext(context() as never);
  },
  allowFullscreen: true,
};

// Listen before the widget loads: it sends ui/initialize as soon as its script
// runs. The iframe's WindowProxy stays the same object across navigation.
void bridge.connect(new PostMessageTransport(iframe.contentWindow!, iframe.contentWindow!)).then(() => {
  iframe.src = new URLSearchParams(location.search).get("widget") ?? "";
});
