// The dashboard in a real browser: Debian's chromium driven by playwright-core, against the real
// creatord started on port 0. Usage: node ui/test/e2e.mjs BUILD/creatord SCREENSHOT_DIR
// Every page of every test is watched: a request to any host but creatord, or an error on the
// console, fails the test (the token test expects its 401s and allows those alone).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import { chromium } from "playwright-core";

const binary = process.argv[2];
const shots = process.argv[3];
if (!binary || !shots) {
  console.error("usage: node ui/test/e2e.mjs BUILD/creatord SCREENSHOT_DIR");
  process.exit(2);
}
mkdirSync(shots, { recursive: true });
const TIMEOUT = 30_000;

// A real creatord on port 0; its address from the line it prints once listening.
async function startServer(extra = []) {
  const dir = mkdtempSync(join(tmpdir(), "creatord-ui-"));
  const proc = spawn(binary, ["serve", "--listen", "127.0.0.1:0", "--data-dir", dir, "--access-log=false", ...extra], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`creatord did not start: ${err}`)), 30_000);
    proc.stderr.on("data", (d) => {
      err += d;
      const m = err.match(/listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    proc.on("exit", (code) => reject(new Error(`creatord exited ${code}: ${err}`)));
  });
  return {
    url,
    host: new URL(url).host,
    async api(method, path, body, token) {
      const headers = { "Content-Type": "application/json" };
      if (token) headers.Authorization = `Bearer ${token}`;
      const r = await fetch(url + path, { method, headers, body: body ? JSON.stringify(body) : undefined });
      const text = await r.text();
      return { status: r.status, json: text ? JSON.parse(text) : null };
    },
    async stop() {
      proc.kill("SIGTERM");
      await new Promise((r) => (proc.exitCode !== null ? r() : proc.on("exit", r)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// A small valid PNG (RGB gradient), for the upload.
function png(w, h) {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf) => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const rows = [];
  for (let y = 0; y < h; y++) {
    rows.push(0);
    for (let x = 0; x < w; x++) rows.push((x * 255) / w, (y * 255) / h, 128);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(Buffer.from(rows))),
    chunk("IEND", Buffer.alloc(0)),
  ]);
}

let browser, server;
const state = {};

// A page that records what it must not do.
async function openPage(srv, { allow = [], viewport = { width: 1280, height: 860 } } = {}) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const problems = [];
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (!["data:", "blob:"].includes(u.protocol) && u.host !== srv.host) problems.push(`request to ${r.url()}`);
  });
  page.on("console", (m) => {
    if (m.type() === "error" && !allow.some((a) => m.text().includes(a))) problems.push(`console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.check = () => assert.deepEqual(problems, [], "the page stays on creatord and logs no error");
  page.done = async () => {
    page.check();
    await context.close();
  };
  return page;
}

async function shoot(page, name) {
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.screenshot({ path: join(shots, `${name}-${scheme}.png`), fullPage: true });
  }
  await page.emulateMedia({ colorScheme: "light" });
}

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  server = await startServer(["--demo"]);
});
after(async () => {
  if (browser) await browser.close();
  if (server) await server.stop();
});

test("the overview loads from / with its policy, keyboard first, nothing from elsewhere", async () => {
  const page = await openPage(server);
  const resp = await page.goto(server.url + "/");
  assert.equal(new URL(page.url()).pathname, "/ui/");
  assert.match(resp.headers()["content-security-policy"], /default-src 'none'/);
  await page.getByRole("heading", { name: "Overview" }).waitFor();
  await page.locator('tr[data-queue="generate"]').waitFor();
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "creatord");
  await page.done();
});

test("create a creator, upload an image by drag and drop, see it full size", async () => {
  const page = await openPage(server);
  await page.goto(server.url + "/ui/#/creators");
  await page.locator("ul.creators li").first().waitFor();  // the demo's
  await shoot(page, "creators");
  await page.getByRole("button", { name: "New creator" }).click();
  await page.getByLabel("Name").fill("Ada Browser");
  await page.getByLabel("Handle").fill("ada.browser");
  await page.getByLabel("Tags").fill("ui, tests");
  await page.getByRole("button", { name: "Create creator" }).click();
  await page.getByRole("heading", { name: /Ada Browser/ }).waitFor();
  state.creator = Number(page.url().match(/#\/creators\/(\d+)/)[1]);
  const made = await server.api("GET", `/api/creators/${state.creator}`);
  assert.equal(made.json.handle, "ada.browser");
  assert.deepEqual(made.json.tags, ["ui", "tests"]);

  // The search finds it.
  await page.goto(server.url + "/ui/#/creators");
  await page.getByLabel("Search creators").fill("ada.b");
  await page.waitForFunction(() => document.querySelectorAll("ul.creators li").length === 1);
  await page.locator("ul.creators li").filter({ hasText: "Ada Browser" }).waitFor();
  await page.locator("ul.creators a").first().click();

  // Drop a file on the drop zone, as a person dragging it from their desktop would.
  await page.getByText("Drop PNG, JPEG or WebP images here").waitFor();
  const bytes = [...png(96, 64)];
  await page.evaluate((bytes) => {
    const dt = new DataTransfer();
    dt.items.add(new File([new Uint8Array(bytes)], "portrait.png", { type: "image/png" }));
    document.querySelector(".dropzone").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, bytes);
  await page.locator(".uploads li.done").waitFor();
  await page.locator(".gallery img").first().waitFor();
  const images = await server.api("GET", `/api/creators/${state.creator}/images`);
  assert.equal(images.json.items.length, 1);
  assert.equal(images.json.items[0].width, 96);
  await page.locator(".gallery button.thumb").first().click();
  const full = page.locator("dialog.viewer img");
  await full.waitFor();
  assert.equal(await full.evaluate((img) => img.complete && img.naturalWidth), 96);
  await page.keyboard.press("Escape");
  await page.locator("dialog.viewer").waitFor({ state: "detached" });
  await shoot(page, "creator");
  await page.done();
});

test("pause and resume a queue", async () => {
  const page = await openPage(server);
  await page.goto(server.url + "/ui/#/queues");
  const row = page.locator('tr[data-queue="generate"]');
  await row.getByRole("button", { name: "Pause" }).click();
  await page.locator('tr[data-queue="generate"][data-paused="yes"]').waitFor();
  const paused = await server.api("GET", "/api/queues");
  assert.equal(paused.json.items.find((q) => q.name === "generate").paused, true);
  await shoot(page, "queues");
  await row.getByRole("button", { name: "Resume" }).click();
  await page.locator('tr[data-queue="generate"][data-paused="no"]').waitFor();
  const resumed = await server.api("GET", "/api/queues");
  assert.equal(resumed.json.items.find((q) => q.name === "generate").paused, false);
  await page.done();
});

test("generate: the timeline follows every step to succeeded over SSE, and the images appear", async () => {
  assert.ok(state.creator, "needs the creator made above");
  // The queue waits until the page is following the job: what the page shows comes live.
  assert.equal((await server.api("POST", "/api/queues/generate/pause")).status, 200);
  const page = await openPage(server);
  const streams = [];
  page.on("request", (r) => r.url().includes("/events") && streams.push(r.url()));
  await page.goto(server.url + `/ui/#/creators/${state.creator}`);
  await page.getByRole("link", { name: "Generate" }).nth(1).click();  // the page's, not the menu's
  await page.locator('select[name="pipeline"]').selectOption("generate");
  const small = { variants: 1, avatar_size: 64, banner_width: 96, banner_height: 32, thumb_size: 32, detail: 20 };
  for (const [k, v] of Object.entries(small)) await page.locator(`input[name="${k}"]`).fill(String(v));
  await page.getByRole("button", { name: "Start" }).click();
  await page.getByRole("heading", { name: /Job #\d+/ }).waitFor();
  state.job = Number(page.url().match(/#\/jobs\/(\d+)/)[1]);
  await page.locator('.conn[data-conn="live"]').waitFor();
  assert.equal(await page.locator('li.step[data-state="pending"]').count(), 6);
  assert.equal((await server.api("POST", "/api/queues/generate/resume")).status, 200);
  await page.locator('li.step[data-state="succeeded"]').nth(5).waitFor();
  assert.equal(await page.locator("li.step").count(), 6);
  await page.locator("h1 .badge.s-succeeded").waitFor();
  await page.locator(".gallery img").nth(3).waitFor();  // 1 avatar, 1 banner and their thumbnails
  await page.locator("pre.result").waitFor();
  assert.ok(streams.length >= 1 && streams[0].includes(`/api/jobs/${state.job}/events`), "followed over SSE");
  const job = await server.api("GET", `/api/jobs/${state.job}`);
  assert.equal(job.json.state, "succeeded");
  await shoot(page, "job");
  // The gallery on the creator's page has them too.
  await page.goto(server.url + `/ui/#/creators/${state.creator}`);
  await page.locator(".gallery img").nth(4).waitFor();
  await page.done();
});

test("cancel a running job, then retry it", async () => {
  const page = await openPage(server);
  await page.goto(server.url + `/ui/#/generate?creator=${state.creator}`);
  await page.locator('select[name="pipeline"]').selectOption("diagnostic");
  await page.locator('input[name="sleep_ms"]').fill("60000");
  await page.getByRole("button", { name: "Start" }).click();
  await page.locator('li.step[data-step="sleep"][data-state="running"]').waitFor();
  const id = Number(page.url().match(/#\/jobs\/(\d+)/)[1]);
  await page.getByRole("button", { name: "Cancel" }).click();
  await page.locator("h1 .badge.s-cancelled").waitFor();
  assert.equal((await server.api("GET", `/api/jobs/${id}`)).json.state, "cancelled");
  await page.getByRole("button", { name: "Retry" }).click();
  await page.locator('li.step[data-step="sleep"][data-state="running"]').waitFor();
  const retried = (await server.api("GET", `/api/jobs/${id}`)).json;
  assert.equal(retried.state, "running");
  assert.equal(retried.manual_retries, 1);
  await page.getByRole("button", { name: "Cancel" }).click();
  await page.locator("h1 .badge.s-cancelled").waitFor();
  // The jobs list finds it by its filters.
  await page.goto(server.url + `/ui/#/jobs`);
  await page.locator(`tr[data-job="${state.job}"]`).waitFor();  // the generate job, unfiltered
  await page.locator('select[name="state"]').selectOption("cancelled");
  await page.locator('select[name="kind"]').selectOption("diagnostic");
  await page.locator(`tr[data-job="${state.job}"]`).waitFor({ state: "detached" });
  await page.locator(`tr[data-job="${id}"]`).waitFor();
  assert.equal(await page.locator("table.jobs tbody tr").count(), 1);
  await page.locator('select[name="state"]').selectOption("succeeded");
  await page.locator(`tr[data-job="${id}"]`).waitFor({ state: "detached" });
  await page.getByText("No jobs match these filters.").waitFor();
  await page.locator('select[name="state"]').selectOption("");
  await page.locator('select[name="kind"]').selectOption("");
  await page.locator(`tr[data-job="${state.job}"]`).waitFor();
  await shoot(page, "jobs");
  await page.done();
});

test("retry all failed jobs at once", async () => {
  // Two jobs that fail for good on their first attempt.
  const ids = [];
  for (let i = 0; i < 2; i++) {
    const r = await server.api("POST", `/api/creators/${state.creator}/generate`,
      { pipeline: "diagnostic", params: { sleep_ms: 0, fail_until_attempt: 5 }, max_attempts: 1 });
    assert.equal(r.status, 202);
    ids.push(r.json.id);
  }
  const page = await openPage(server);
  await page.goto(server.url + "/ui/#/jobs?state=failed");
  for (const id of ids) await page.locator(`tr[data-job="${id}"] .badge.s-failed`).waitFor();
  await page.getByRole("button", { name: "Retry all failed" }).click();
  await page.getByText("Retried 2 of 2 failed jobs").waitFor();
  for (const id of ids) assert.equal((await server.api("GET", `/api/jobs/${id}`)).json.manual_retries, 1);
  // The overview now has something to show: counts, sparklines (two readings), failures.
  await page.goto(server.url + "/ui/#/");
  await page.locator(".failures li").first().waitFor();
  await page.locator('tr[data-queue="generate"] svg.spark polyline').first().waitFor({ state: "attached", timeout: 10_000 });
  await shoot(page, "overview");
  await page.done();
});

test("offline: the page says so, and recovers", async () => {
  const page = await openPage(server, { allow: ["ERR_INTERNET_DISCONNECTED"] });
  await page.goto(server.url + "/ui/#/queues");
  await page.locator('tr[data-queue="generate"]').waitFor();
  await page.context().setOffline(true);
  await page.getByText("Offline: showing what was last loaded").waitFor();
  await page.locator('tr[data-queue="generate"]').waitFor();  // the last data stays
  await page.getByText("Cannot reach creatord").waitFor();     // once the next refresh fails
  await page.context().setOffline(false);
  await page.getByText("Offline: showing what was last loaded").waitFor({ state: "detached" });
  await page.getByText("Cannot reach creatord").waitFor({ state: "detached" });
  await page.done();
});

test("at phone width the pages fit the screen", async () => {
  const page = await openPage(server, { viewport: { width: 390, height: 800 } });
  for (const route of ["#/", "#/creators", `#/creators/${state.creator}`, `#/jobs/${state.job}`, "#/jobs"]) {
    await page.goto(server.url + "/ui/" + route);
    await page.locator("main h1").waitFor();
    await page.waitForLoadState("networkidle");
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `${route} is ${overflow}px wider than the screen`);
  }
  await shoot(page, "phone-job");
  await page.done();
});

test("with tokens configured: a write without one shows the 401 message, read-only, then the token works", async () => {
  const guarded = await startServer(["--api-tokens", "ui-secret-token-0123456789"]);
  try {
    // The browser reports each 401 answer on the console: expected here, and only here.
    const page = await openPage(guarded, { allow: ["401"] });
    await page.goto(guarded.url + "/ui/#/creators");
    await page.getByText("No creators yet").waitFor();
    await page.getByRole("button", { name: "New creator" }).click();
    await page.getByLabel("Name").fill("Tok En");
    await page.getByLabel("Handle").fill("token");
    await page.getByRole("button", { name: "Create creator" }).click();
    await page.getByText("401 Unauthorized: this server needs an API token").waitFor();
    await page.getByText("Read-only: this server needs an API token for changes").waitFor();
    assert.ok(await page.getByRole("button", { name: "Create creator" }).isDisabled(), "writes are off in read-only mode");
    assert.equal((await guarded.api("GET", "/api/creators")).json.items.length, 0);
    await shoot(page, "token-401");
    await page.getByLabel("API token").fill("ui-secret-token-0123456789");
    await page.getByRole("button", { name: "Use token" }).click();
    assert.equal(await page.getByText("Read-only").count(), 0);
    assert.equal(await page.evaluate(() => sessionStorage.getItem("creatord.token")), "ui-secret-token-0123456789");
    await page.getByRole("button", { name: "Create creator" }).click();
    await page.getByRole("heading", { name: /Tok En/ }).waitFor();
    assert.equal((await guarded.api("GET", "/api/creators")).json.items.length, 1);
    // The emails need the token even to read; with it, the page lists them (none yet).
    await page.goto(guarded.url + "/ui/#/emails");
    await page.getByText("No emails.").waitFor();
    await page.done();
  } finally {
    await guarded.stop();
  }
});
