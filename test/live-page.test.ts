// The /live page in a real browser (Debian's chromium driven by
// playwright-core): the counts it shows follow writes made through its own
// form, the API and psql, each within 1 s; they read as counts of orders; an
// error goes once it no longer applies; its controls have accessible names;
// it is laid out for a desktop and for a phone (screenshots of both are
// written, to look at); its script runs under its Content-Security-Policy,
// and nothing it loads fails, favicon included. The index page (/) too.
import { existsSync, mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { cachePrefix } from "./support/valkey.ts";

const executablePath = "/usr/bin/chromium";
const db = useTestDatabase("seeded");
const server = useApp(() => ({ DATABASE_URL: db.url, VALKEY_URL: inject("valkeyUrl"), CACHE_PREFIX: cachePrefix() }));
/** Where the screenshots go: printed, so a person can look at them. */
const screenshots = mkdtempSync(join(tmpdir(), "live-page-"));

let browser: Browser;
const problems: string[] = [];

// The browser's own globals, as the functions run in the page use them (the tests compile without the DOM library).
declare const document: { documentElement: { scrollWidth: number; clientWidth: number }; body: unknown };
declare function getComputedStyle(
  element: unknown,
): Record<"backgroundColor" | "borderTopLeftRadius" | "borderTopStyle" | "fontFamily", string>;

/** orders.add's answer refusing a write the tests make it refuse (an invalid or unknown customer): the page shows it. */
const refusedWrite = (url: string, status: number | undefined) =>
  new URL(url, "http://any").pathname === "/trpc/orders.add" && (status === 400 || status === 404);

/** A page whose script errors, console errors and failed loads (any answer of 400 or more) are problems. */
async function watchedPage(context: BrowserContext): Promise<Page> {
  const page = await context.newPage();
  page.on("console", (message) => {
    // Chrome logs every answer of 400 or more as "Failed to load resource", at the resource's URL.
    const status = /status of (\d+)/.exec(message.text())?.[1];
    if (message.type() === "error" && !refusedWrite(message.location().url, Number(status)))
      problems.push(`${page.url()}: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`${page.url()}: ${error.message}`));
  page.on("response", (response) => {
    if (response.status() >= 400 && !refusedWrite(response.url(), response.status()))
      problems.push(`${response.url()}: ${response.status()}`);
  });
  page.on("requestfailed", (request) => problems.push(`${request.url()}: ${request.failure()?.errorText}`));
  return page;
}

const desktop = { viewport: { width: 1280, height: 800 } };
const phone = { viewport: { width: 375, height: 740 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };

let page: Page;

beforeAll(async () => {
  if (!existsSync(executablePath)) {
    throw new Error(
      `no browser at ${executablePath}: install Debian's chromium (apt-get install -y chromium); .ci/run does`,
    );
  }
  browser = await chromium.launch({
    executablePath,
    headless: true,
    // playwright-core starts it with a fresh, temporary user-data-dir of its own.
    args: [
      ...(process.getuid?.() === 0 ? ["--no-sandbox"] : []),
      "--headless",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
  page = await watchedPage(await browser.newContext(desktop));
  console.info(`live page screenshots: ${screenshots}`);
}, 60_000);
afterAll(() => browser?.close());

const countOf = async (customerId?: number) =>
  Number(
    (customerId === undefined
      ? await db.sql`SELECT count(*) AS n FROM orders`
      : await db.sql`SELECT count(*) AS n FROM orders WHERE customerid = ${customerId}`)[0]?.n,
  );

/** Resolves once the page shows `count` in the count `id`; fails after `timeoutMs`. */
const shows = (id: string, count: number, timeoutMs = 1000, on = page) =>
  on.locator(`#${id}[data-count="${count}"]`).waitFor({ timeout: timeoutMs });

const orders = (count: number) => `${count.toLocaleString("en-US")} ${count === 1 ? "order" : "orders"}`;
const textOf = async (selector: string, on = page) => ((await on.locator(selector).textContent()) ?? "").trim();

describe("/live in chromium", () => {
  const customerId = 4321;

  it("shows the total and a chosen customer's count, live, each as a number of orders", async () => {
    const [total, mine] = [await countOf(), await countOf(customerId)];
    const response = await page.goto(`${server.url}/live`);
    expect(response?.status()).toBe(200);
    await expect(page.title()).resolves.toBe("Live order counts · dellstore-orders");
    await shows("total", total, 10_000);
    expect(await textOf("#total-figure")).toBe(orders(total));
    await page.getByLabel("Customer to watch (id)").fill(String(customerId));
    await page.getByRole("button", { name: "Watch" }).click();
    await shows("customer-count", mine, 10_000);
    expect(await textOf("#customer-label")).toBe(`Customer ${customerId}`);
    expect(await textOf("#customer-figure")).toBe(orders(mine));
    expect(await textOf("#connection")).toBe("Live");
  });

  it("shows an order added with its own form within 1 s", async () => {
    const mine = await countOf(customerId);
    await page.getByLabel("Net amount").fill("12.50");
    await page.getByLabel("Tax").fill("1.00");
    await page.getByRole("button", { name: "Add order" }).click();
    await page.getByText(/^Added order \d+ for customer 4321: 13\.50\.$/).waitFor({ timeout: 5000 });
    await shows("customer-count", mine + 1);
    expect(await textOf("#customer-figure")).toBe(orders(mine + 1));
  });

  it("shows a write made through the API within 1 s of its acknowledgement", async () => {
    const [total, mine] = [await countOf(), await countOf(customerId)];
    const res = await fetch(`${server.url}/add/`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ customerid: customerId, netamount: 3, tax: 0.3 }),
    });
    expect(res.status).toBe(200);
    await Promise.all([shows("customer-count", mine + 1), shows("total", total + 1)]);
  });

  it("shows a write made with psql within 1 s of its commit", async () => {
    const [total, mine] = [await countOf(), await countOf(customerId)];
    await db.sql`INSERT INTO orders (orderdate, customerid, netamount, tax, totalamount) VALUES ('2024-06-01', ${customerId}, 1, 0.1, 1.1)`;
    await Promise.all([shows("customer-count", mine + 1), shows("total", total + 1)]);
  });

  it("takes an error away once it no longer applies: when an input changes, and after a later success", async () => {
    const status = page.locator("#add-status");
    const customer = page.getByLabel("Customer (id)", { exact: true });
    const refused = async () => {
      await customer.fill("99999999");
      await page.getByRole("button", { name: "Add order" }).click();
      await page.getByText("Not added: Customer 99999999 does not exist.").waitFor({ timeout: 5000 });
      expect(await status.getAttribute("data-kind")).toBe("error");
    };
    await refused();
    // Typing into the form: the error was about what it held before.
    await customer.fill(String(customerId));
    await expect(status.isVisible()).resolves.toBe(false);
    await refused();
    // The order fixed and sent: the answer replaces the error, which is nowhere on the page any more.
    await customer.fill(String(customerId));
    await page.getByRole("button", { name: "Add order" }).click();
    await page.getByText(/^Added order \d+ for customer 4321: 13\.50\.$/).waitFor({ timeout: 5000 });
    expect(await status.getAttribute("data-kind")).toBe("ok");
    await expect(page.getByText(/Not added/).count()).resolves.toBe(0);
  });

  it("names every control, with no date format that contradicts the picker, and announces the counts", async () => {
    for (const label of ["Customer to watch (id)", "Customer (id)", "Net amount", "Tax", "Order date", "API token"]) {
      await expect(page.getByLabel(label, { exact: true }).count(), label).resolves.toBe(1);
    }
    // The picker shows the date in the browser's locale (mm/dd/yyyy here): no label may say otherwise.
    await expect(page.getByText(/YYYY-MM-DD/i).count()).resolves.toBe(0);
    await expect(page.getByLabel("Order date", { exact: true }).getAttribute("type")).resolves.toBe("date");
    for (const id of ["total-figure", "customer-watched"]) {
      expect(await page.locator(`#${id}`).getAttribute("aria-live"), id).toBe("polite");
    }
    await expect(page.getByRole("heading", { level: 1 }).textContent()).resolves.toBe("Live order counts");
    expect(await page.locator("html").getAttribute("lang")).toBe("en");
    // No script error, no Content-Security-Policy violation (they are logged as console errors), no failed load.
    expect(problems).toEqual([]);
  });
});

describe("how /live and / look", () => {
  /** Opens `path` in a fresh browser context of that size, waits for it to settle, and screenshots it. */
  async function open(path: string, device: typeof desktop | typeof phone, name: string) {
    const context = await browser.newContext(device);
    const at = await watchedPage(context);
    const response = await at.goto(`${server.url}${path}`);
    expect(response?.status()).toBe(200);
    if (path === "/live") {
      await at.locator("#total[data-count]").waitFor({ timeout: 10_000 });
      await at.getByLabel("Customer to watch (id)").fill("9999");
      await at.getByRole("button", { name: "Watch" }).click();
      await at.locator("#customer-count[data-count]").waitFor({ timeout: 10_000 });
    }
    const file = join(screenshots, `${name}.png`);
    await at.screenshot({ path: file, fullPage: true });
    expect(statSync(file).size).toBeGreaterThan(10_000);
    return { page: at, close: () => context.close() };
  }

  const overflow = (at: Page) =>
    at.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  const box = async (at: Page, selector: string) => {
    const found = await at.locator(selector).boundingBox();
    if (!found) throw new Error(`${selector} is not shown`);
    return found;
  };

  it("lays /live out on a desktop: the counts side by side in cards, styled buttons, a system font", async () => {
    const { page: at, close } = await open("/live", desktop, "live-desktop");
    try {
      expect(await overflow(at)).toBe(0);
      const [total, customer] = [await box(at, "#total-card"), await box(at, "#customer-card")];
      expect(Math.abs(total.y - customer.y)).toBeLessThan(2);
      expect(customer.x).toBeGreaterThan(total.x + total.width);
      expect(await textOf("#customer-figure", at)).toMatch(/^\d+ orders?$/);
      const styles = await at.getByRole("button", { name: "Add order" }).evaluate((button) => {
        const style = getComputedStyle(button);
        return { background: style.backgroundColor, radius: style.borderTopLeftRadius, border: style.borderTopStyle };
      });
      // Not the browser's grey default (rgb(239, 239, 239) with an outset border).
      expect(styles.background).not.toBe("rgb(239, 239, 239)");
      expect(styles.radius).not.toBe("0px");
      expect(await at.evaluate(() => getComputedStyle(document.body).fontFamily)).toMatch(/^system-ui/);
      for (const card of ["#total-card", "#customer-card", "#add-card"]) {
        const border = await at.locator(card).evaluate((el) => getComputedStyle(el).borderTopStyle);
        expect(border, card).toBe("solid");
      }
    } finally {
      await close();
    }
  });

  it("fits /live on a 375 px phone: no sideways scroll, the cards stacked, inputs within the screen", async () => {
    const { page: at, close } = await open("/live", phone, "live-phone");
    try {
      expect(await overflow(at)).toBe(0);
      const [total, customer] = [await box(at, "#total-card"), await box(at, "#customer-card")];
      expect(customer.y).toBeGreaterThanOrEqual(total.y + total.height);
      for (const input of await at.locator("input").all()) {
        const { x, width } = (await input.boundingBox()) ?? { x: -1, width: 0 };
        expect(x).toBeGreaterThanOrEqual(0);
        expect(x + width).toBeLessThanOrEqual(375);
      }
      // An error wraps instead of widening the page.
      await at.getByLabel("Customer (id)", { exact: true }).fill("99999999999999999999");
      await at.getByRole("button", { name: "Add order" }).click();
      await at.locator('#add-status[data-kind="error"]').waitFor({ timeout: 5000 });
      expect(await overflow(at)).toBe(0);
      await at.screenshot({ path: join(screenshots, "live-phone-error.png"), fullPage: true });
    } finally {
      await close();
    }
  });

  it.each([
    ["desktop", desktop],
    ["phone", phone],
  ] as const)("shows / on a %s, and its link leads to /live", async (name, device) => {
    const { page: at, close } = await open("/", device, `index-${name}`);
    try {
      expect(await overflow(at)).toBe(0);
      await expect(at.getByRole("heading", { level: 1 }).textContent()).resolves.toBe("dellstore-orders");
      await at.getByRole("link", { name: "Live order counts" }).click();
      await at.waitForURL(`${server.url}/live`);
      await at.locator("#total[data-count]").waitFor({ timeout: 10_000 });
    } finally {
      await close();
    }
  });

  it("loaded nothing that failed, favicon included, and logged no error", async () => {
    expect(problems).toEqual([]);
  });
});
