// Consumer test: the packed chat-sdk installed with npm into a plain page, two pages in
// headless Chromium (Playwright) exchanging messages through the real chat-server.
// Usage: node consumer.mjs HARNESS_URL   (the harness serves the page under /consumer/)
import { launchChromium, runner } from "./runner.mjs";

const harness = process.argv[2];
if (!harness) throw new Error("usage: node consumer.mjs HARNESS_URL");

const browser = await launchChromium();
const { test, finish } = runner();

async function open(role, id) {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.log(`[${role} ${id}] page error: ${e}`));
  await page.goto(`${harness}/consumer/index.html?role=${role}&id=${id}`);
  await page.waitForFunction(() => document.body.dataset.status === "open", null, { timeout: 15000 });
  return page;
}

await test("two_pages_exchange_messages_through_the_server", async () => {
  const teacher = await open("teacher", 1);
  const student = await open("student", 1);

  const sent = await teacher.evaluate(() => window.chat.send({ role: "student", id: 1 }, "Hello from page one"));
  if (sent.content !== "Hello from page one" || typeof sent.createdAt !== "number") {
    throw new Error(`unexpected stored message ${JSON.stringify(sent)}`);
  }
  await student.waitForFunction((id) => window.received.some((m) => m.id === id), sent.id, { timeout: 10000 });
  await student.getByText("teacher 1: Hello from page one").waitFor({ timeout: 5000 });

  const reply = await student.evaluate(() => window.chat.send({ role: "teacher", id: 1 }, "Reply from page two"));
  await teacher.waitForFunction((id) => window.received.some((m) => m.id === id), reply.id, { timeout: 10000 });

  // History through the package, newest first.
  const page = await teacher.evaluate(() => window.chat.history({ role: "student", id: 1 }, { limit: 10 }));
  const contents = page.messages.map((m) => m.content);
  if (contents[0] !== "Reply from page two" || contents[1] !== "Hello from page one") {
    throw new Error(`history: ${JSON.stringify(contents)}`);
  }
  await teacher.close();
  await student.close();
});

await test("errors_reach_javascript_with_their_stable_code", async () => {
  const student = await open("student", 2);
  const error = await student.evaluate(() =>
    window.chat.send({ role: "student", id: 1 }, "hi").then(
      () => null,
      (e) => ({ isError: e instanceof Error, code: e.code, codeName: e.codeName, retryable: e.retryable }),
    ),
  );
  if (!error || !error.isError || error.code !== 31 || error.codeName !== "not_allowed" || error.retryable) {
    throw new Error(`unexpected ${JSON.stringify(error)}`);
  }
  const empty = await student.evaluate(() => window.chat.send({ role: "teacher", id: 1 }, "   ").catch((e) => e.codeName));
  if (empty !== "content_empty") throw new Error(`unexpected ${empty}`);
  await student.close();
});

await test("going_offline_shows_reconnecting_and_catches_up_when_back_online", async () => {
  const teacher = await open("teacher", 2);
  const student = await open("student", 3);
  await student.context().setOffline(true);
  // The browser's offline event drops the socket at once, without waiting for a heartbeat.
  await student.waitForFunction(() => document.body.dataset.status === "reconnecting", null, { timeout: 5000 });
  const sent = await teacher.evaluate(() => window.chat.send({ role: "student", id: 3 }, "while you were offline"));
  await student.context().setOffline(false);
  await student.waitForFunction(() => document.body.dataset.status === "open", null, { timeout: 15000 });
  await student.waitForFunction((id) => window.received.filter((m) => m.id === id).length === 1, sent.id, { timeout: 10000 });
  await teacher.close();
  await student.close();
});

await browser.close();
process.exit(finish());
