// The person in an OAuth sign-in, played by headless Chromium: open the
// authorization URL, sign in at the identity provider (tests/auth-server/
// idp_server.mjs: a "User name" field and a "Sign in" button), then click
// Allow or Deny on Wharf's consent page (skipped when consent is remembered),
// and report where the browser was finally sent.
//
// As a command (the Python SDK test drives it this way):
//   node oauth_browser.mjs <authorization-url> <redirect-uri-prefix> <user> [approve|deny]
// prints one JSON line: {"url": <the redirect with code or error>, "consent": <shown?>,
//   "consentTitle": <its heading>, "page": <the text of the last page when no redirect came>}.
// As a module: `signIn({url, redirectPrefix, user, decision})`.
import { chromium } from "playwright-core";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
/** How long one sign-in may take in the browser. */
const DEADLINE_MS = 30_000;

export async function signIn({ url, redirectPrefix, user, decision = "approve", browser }) {
  const own = !browser;
  browser ??= await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"],
  });
  try {
    const context = await browser.newContext();
    const page = await context.newPage();
    let redirected = null;
    // The client's redirect URI: noted as the browser is sent there (a redirect
    // hop is a request of its own; route() would see only the first of a chain).
    page.on("request", (r) => {
      if (!redirected && r.url().startsWith(redirectPrefix)) redirected = r.url();
    });
    await page.goto(url, { timeout: DEADLINE_MS }).catch((e) => {
      if (!redirected) throw e; // straight to the client's redirect URI, where nothing listens
    });
    let consent = false;
    let consentTitle = null;
    if (!redirected && (await page.getByLabel("User name").count()) > 0) {
      await page.getByLabel("User name").fill(user);
      await page.getByRole("button", { name: "Sign in" }).click();
      await page.waitForLoadState("load");
    }
    if (!redirected && (await page.getByRole("button", { name: "Allow" }).count()) > 0) {
      consent = true;
      consentTitle = await page.locator("h1").innerText();
      const button = decision === "approve" ? "Allow" : "Deny";
      await page.getByRole("button", { name: button }).click();
      await page.waitForLoadState("load");
    }
    const deadline = Date.now() + DEADLINE_MS;
    while (!redirected && Date.now() < deadline && !(await pageSettled(page))) {
      await page.waitForTimeout(50);
    }
    const text = redirected ? null : await page.locator("body").innerText();
    await context.close();
    return { url: redirected, consent, consentTitle, page: text };
  } finally {
    if (own) await browser.close();
  }
}

/** A page that is neither the provider's form nor the consent page: an error page, say. */
async function pageSettled(page) {
  return (await page.locator("h1").count()) > 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [url, redirectPrefix, user, decision] = process.argv.slice(2);
  const result = await signIn({ url, redirectPrefix, user, decision });
  process.stdout.write(JSON.stringify(result) + "\n");
}
