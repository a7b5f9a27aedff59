// The /live page in a real browser (Debian's chromium driven by
// playwright-core): the counts it shows follow writes made through its own
// form, the API and psql, each within 1 s; its controls have accessible names;
// its script runs under its Content-Security-Policy without errors.
import { existsSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { useApp } from "./support/app.ts";
import { useTestDatabase } from "./support/database.ts";
import { cachePrefix } from "./support/valkey.ts";

const executablePath = "/usr/bin/chromium";
const db = useTestDatabase("seeded");
const server = useApp(() => ({ DATABASE_URL: db.url, VALKEY_URL: inject("valkeyUrl"), CACHE_PREFIX: cachePrefix() }));

let browser: Browser;
let page: Page;
const problems: string[] = [];

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
  page = await browser.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(message.text());
  });
  page.on("pageerror", (error) => problems.push(error.message));
}, 60_000);
afterAll(() => browser?.close());

const countOf = async (customerId?: number) =>
  Number(
    (customerId === undefined
      ? await db.sql`SELECT count(*) AS n FROM orders`
      : await db.sql`SELECT count(*) AS n FROM orders WHERE customerid = ${customerId}`)[0]?.n,
  );

/** Resolves once the page shows `count` in the output `id`; fails after `timeoutMs`. */
const shows = (id: string, count: number, timeoutMs = 1000) =>
  page.locator(`#${id}[data-count="${count}"]`).waitFor({ timeout: timeoutMs });

describe("/live in chromium", () => {
  const customerId = 4321;

  it("shows the total and a chosen customer's count, live", async () => {
    const [total, mine] = [await countOf(), await countOf(customerId)];
    const response = await page.goto(`${server.url}/live`);
    expect(response?.status()).toBe(200);
    await expect(page.title()).resolves.toBe("Live order counts · dellstore-orders");
    await shows("total", total, 10_000);
    await page.getByLabel("Customer to watch (id)").fill(String(customerId));
    await page.getByRole("button", { name: "Watch" }).click();
    await shows("customer-count", mine, 10_000);
    expect(await page.locator("#connection").textContent()).toBe("Live.");
  });

  it("shows an order added with its own form within 1 s", async () => {
    const mine = await countOf(customerId);
    await page.getByLabel("Net amount").fill("12.50");
    await page.getByLabel("Tax").fill("1.00");
    await page.getByRole("button", { name: "Add order" }).click();
    await page.getByText(/^Added order \d+ for customer 4321: 13\.50\.$/).waitFor({ timeout: 5000 });
    await shows("customer-count", mine + 1);
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

  it("names every control and announces the counts to assistive technology", async () => {
    for (const label of [
      "Customer to watch (id)",
      "Customer (id)",
      "Net amount",
      "Tax",
      "Order date (optional, YYYY-MM-DD)",
    ]) {
      await expect(page.getByLabel(label, { exact: true }).count()).resolves.toBe(1);
    }
    for (const id of ["total", "customer-count"]) {
      expect(await page.locator(`#${id}`).getAttribute("aria-live")).toBe("polite");
    }
    await expect(page.getByRole("heading", { level: 1 }).textContent()).resolves.toBe("Live order counts");
    expect(await page.locator("html").getAttribute("lang")).toBe("en");
    // No script error and no Content-Security-Policy violation (they are logged as console errors).
    expect(problems).toEqual([]);
  });
});
