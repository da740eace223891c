// The built-in demo, as a new user meets it: `chat-server demo` (embedded SQLite, demo users,
// the page at / using the real chat-sdk package), two browser contexts in headless Chromium
// (Playwright), a teacher and a student chatting both ways.
// Usage: node demo.mjs   (CHAT_SERVER_BIN: the binary, default target/debug/chat-server;
//                         CHAT_DEMO_SDK_DIR: the built package, default pkg/dist)
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import {
  axeSource,
  expectEveryControlReachable,
  expectFocus,
  expectNoSideScroll,
  expectNoViolations,
  recordAnnouncements,
  tabTo,
} from "./a11y.mjs";
import { launchChromium, runner } from "./runner.mjs";

const root = resolve(import.meta.dirname, "../..");
const bin = process.env.CHAT_SERVER_BIN ?? join(root, "target/debug/chat-server");
const sdkDir = process.env.CHAT_DEMO_SDK_DIR ?? join(root, "pkg/dist");
const dir = mkdtempSync(join(tmpdir(), "chat-demo-test-"));

// Port 0: the server picks one and says which in its log.
const server = spawn(bin, ["demo", "--port", "0", "--database", join(dir, "demo.db"), "--sdk-dir", sdkDir], {
  cwd: dir,
  env: { ...process.env, RUST_LOG: "info", NO_COLOR: "1" },
  stdio: ["ignore", "ignore", "pipe"],
});
let log = "";
const base = await new Promise((ok, fail) => {
  const timer = setTimeout(() => fail(new Error(`chat-server demo did not start:\n${log}`)), 30000);
  server.stderr.on("data", (chunk) => {
    log += chunk;
    const found = /demo ready: open (http:\/\/\S+?)\/? in/.exec(log);
    if (found) { clearTimeout(timer); ok(found[1]); }
  });
  server.on("exit", (code) => { clearTimeout(timer); fail(new Error(`chat-server demo exited (${code}):\n${log}`)); });
});

const browser = await launchChromium();
const { test, finish } = runner("demo::");

const errors = [];
const axe = axeSource(import.meta.url);
async function newPage(label, options = {}) {
  // A context each: two users must not share storage, as two people would not.
  const context = await browser.newContext(options);
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(`[${label}] ${e}`));
  page.on("console", (m) => { if (m.type() === "error") errors.push(`[${label}] console: ${m.text()}`); });
  return page;
}
const opened = (page) => page.waitForFunction(() => document.body.dataset.status === "open", null, { timeout: 15000 });
const T = 10000;

await test("a_teacher_and_a_student_chat_both_ways_through_the_page", async () => {
  // The teacher picks who they are on the start page.
  const teacher = await newPage("teacher 1");
  await teacher.goto(`${base}/`);
  await teacher.locator('[data-user="teacher-1"]').click();
  await teacher.waitForURL(/\?as=teacher-1$/);
  await opened(teacher);
  // The student arrives by link (as a second tab would after picking).
  const student = await newPage("student 1");
  await student.goto(`${base}/?as=student-1`);
  await opened(student);

  // Students may message teachers only (the default policy): no other students listed.
  if (await student.locator('[data-peer^="student-"]').count() !== 0) throw new Error("a student sees students");
  // Presence: the teacher sees student 1 (not teacher 1's namesake) online.
  await teacher.locator('[data-peer="student-1"] .dot.online').waitFor({ timeout: T });

  // Teacher -> student.
  await teacher.locator('[data-peer="student-1"]').click();
  await teacher.locator("#composer").fill("Hello Ada, homework is due Friday");
  await teacher.locator("#composer").press("Enter");
  await teacher.locator('.msg.mine[data-state="sent"]', { hasText: "homework is due Friday" }).waitFor({ timeout: T });
  // The student sees an unread badge, opens the conversation, reads it; the teacher sees "read".
  await student.locator('[data-peer="teacher-1"] .unread', { hasText: "1" }).waitFor({ timeout: T });
  await student.locator('[data-peer="teacher-1"]').click();
  await student.locator(".msg.theirs", { hasText: "homework is due Friday" }).waitFor({ timeout: T });
  await teacher.locator('.msg.mine[data-state="read"]', { hasText: "homework is due Friday" }).waitFor({ timeout: T });
  if (await student.locator('[data-peer="teacher-1"] .unread').textContent() !== "") throw new Error("badge not cleared");

  // Student -> teacher, with the typing indicator first.
  await student.locator("#composer").pressSequentially("Thanks");
  await teacher.locator("#typing", { hasText: "Ada is typing" }).waitFor({ timeout: T });
  await student.locator("#composer").fill("Thanks, Ms. Rivera!");
  await student.locator("#send").click();
  await teacher.locator(".msg.theirs", { hasText: "Thanks, Ms. Rivera!" }).waitFor({ timeout: T });

  // A reload shows the conversation from the database, oldest first.
  await student.reload();
  await opened(student);
  await student.locator('[data-peer="teacher-1"]').click();
  await student.locator(".msg", { hasText: "Thanks, Ms. Rivera!" }).waitFor({ timeout: T });
  const texts = await student.locator(".msg").allTextContents();
  const a = texts.findIndex((t) => t.includes("homework is due Friday"));
  const b = texts.findIndex((t) => t.includes("Thanks, Ms. Rivera!"));
  if (a < 0 || b < a) throw new Error(`history order: ${JSON.stringify(texts)}`);
  await teacher.context().close();
  await student.context().close();
});

await test("student_one_and_teacher_one_are_different_people", async () => {
  // Teacher 2 writes to teacher 1; student 1 (same id) must not get it.
  const teacher2 = await newPage("teacher 2");
  await teacher2.goto(`${base}/?as=teacher-2`);
  await opened(teacher2);
  const student1 = await newPage("student 1");
  await student1.goto(`${base}/?as=student-1`);
  await opened(student1);
  const teacher1 = await newPage("teacher 1");
  await teacher1.goto(`${base}/?as=teacher-1`);
  await opened(teacher1);
  await teacher2.locator('[data-peer="teacher-1"]').click();
  await teacher2.locator("#composer").fill("Staff meeting at 4");
  await teacher2.locator("#composer").press("Enter");
  await teacher2.locator('.msg.mine[data-state="sent"]', { hasText: "Staff meeting at 4" }).waitFor({ timeout: T });
  await teacher1.locator('[data-peer="teacher-2"] .unread', { hasText: "1" }).waitFor({ timeout: T });
  const studentSaw = await student1.evaluate(() => window.chat.conversations());
  if (studentSaw.some((c) => c.last.content === "Staff meeting at 4")) throw new Error("student 1 got teacher 1's message");
  for (const p of [teacher1, teacher2, student1]) await p.context().close();
});

await test("an_unknown_user_is_sent_back_to_the_picker", async () => {
  const page = await newPage("nobody");
  await page.goto(`${base}/?as=student-99`);
  await page.locator("#error", { hasText: 'no user "student-99"' }).waitFor({ timeout: T });
  if (await page.locator("[data-user]").count() !== 5) throw new Error("the picker lists the five demo users");
  await page.context().close();
});

/** Sends `n` messages from the user of `page` to `to` through the SDK (setup, not the UI under test). */
async function seed(page, to, n, prefix) {
  await page.evaluate(async ({ to, n, prefix }) => {
    for (let i = 1; i <= n; i += 1) await window.chat.send(to, `${prefix} ${i}`);
  }, { to, n, prefix });
}

await test("every_state_of_the_page_passes_axe_wcag_2_2_aa_in_light_and_dark", async () => {
  for (const colorScheme of ["light", "dark"]) {
    const page = await newPage(`axe ${colorScheme}`, { colorScheme });
    await page.goto(`${base}/`);
    await expectNoViolations(page, axe, `the picker (${colorScheme})`);
    await page.goto(`${base}/?as=nobody-1`);
    await page.locator("#error").waitFor({ timeout: T });
    await expectNoViolations(page, axe, `the picker with an error (${colorScheme})`);
    await page.goto(`${base}/?as=teacher-2`);
    await opened(page);
    await expectNoViolations(page, axe, `the chat, no conversation open (${colorScheme})`);
    await page.context().close();
  }
  // An open thread with a page of history, older pages, unread badges, typing, a pending send
  // while the connection is lost (the banner), a failed send; both schemes.
  const student = await newPage("axe student");
  await student.goto(`${base}/?as=student-3`);
  await opened(student);
  await seed(student, { role: "teacher", id: 2 }, 35, "History line");
  for (const colorScheme of ["light", "dark"]) {
    const page = await newPage(`axe teacher ${colorScheme}`, { colorScheme });
    await page.goto(`${base}/?as=teacher-2`);
    await opened(page);
    if (colorScheme === "light") {
      await page.locator('[data-peer="student-3"] .unread', { hasText: "35" }).waitFor({ timeout: T });
      await expectNoViolations(page, axe, "the list with an unread badge (light)");
    }
    await page.locator('[data-peer="student-3"]').click();
    await page.locator("#older").waitFor({ timeout: T });
    await page.locator(".msg.theirs", { hasText: "History line 35" }).waitFor({ timeout: T });
    await expectNoViolations(page, axe, `an open thread with older messages to load (${colorScheme})`);
    await student.locator('[data-peer="teacher-2"]').click();
    await student.locator("#composer").pressSequentially("Wri");
    await page.locator("#typing", { hasText: "is typing" }).waitFor({ timeout: T });
    await expectNoViolations(page, axe, `the peer typing (${colorScheme})`);
    await page.locator("#composer").fill("x".repeat(20000));
    await page.locator("#composer").press("Enter");
    await page.locator('.msg[data-state="failed"] .retry').waitFor({ timeout: T });
    await expectNoViolations(page, axe, `a failed send with its retry button (${colorScheme})`);
    await page.context().setOffline(true);
    await page.waitForFunction(() => document.body.dataset.status === "reconnecting", null, { timeout: T });
    await page.locator("#composer").fill("Sent while offline");
    await page.locator("#composer").press("Enter");
    await page.locator('.msg[data-state="pending"]', { hasText: "Sent while offline" }).waitFor({ timeout: T });
    await expectNoViolations(page, axe, `the reconnecting banner and a pending send (${colorScheme})`);
    await page.context().setOffline(false);
    // Sent once back online (read at once: the student has the conversation open).
    await page.locator('.msg.mine[data-state="sent"], .msg.mine[data-state="read"]', { hasText: "Sent while offline" }).waitFor({ timeout: T });
    await student.locator("#composer").fill("");
    await page.waitForFunction(() => document.querySelector("#typing").textContent === "", null, { timeout: T });
    await page.context().close();
  }
  await student.context().close();
});

await test("keyboard_only_pick_open_read_older_send_and_switch_user", async () => {
  const student = await newPage("keyboard's peer");
  await student.goto(`${base}/?as=student-2`);
  await opened(student);
  await seed(student, { role: "teacher", id: 1 }, 40, "Older note");
  const page = await newPage("keyboard");
  await page.goto(`${base}/`);
  // Pick who you are: Tab to the button, Enter.
  await tabTo(page, '[data-user="teacher-1"]');
  await page.keyboard.press("Enter");
  await page.waitForURL(/\?as=teacher-1$/);
  await opened(page);
  // Open the conversation from the list: the focus moves to its message box.
  await page.locator('[data-peer="student-2"] .unread', { hasText: "40" }).waitFor({ timeout: T });
  await tabTo(page, '[data-peer="student-2"]');
  await page.keyboard.press("Enter");
  await expectFocus(page, "#composer", "after opening a conversation");
  await page.locator(".msg", { hasText: "Older note 40" }).waitFor({ timeout: T });
  // Read older history: back to the "Load older messages" button, Enter; the focus stays in the thread.
  await page.locator("#older").waitFor({ timeout: T });
  await tabTo(page, "#older", { back: true });
  await page.keyboard.press("Enter");
  await page.locator(".msg", { hasText: "Older note 1" }).first().waitFor({ timeout: T });
  await expectFocus(page, "#thread, #thread *", "after loading older messages");
  // The thread scrolls from the keyboard: it is a focusable region.
  await tabTo(page, "#thread", { back: true });
  const before = await page.locator("#thread").evaluate((el) => el.scrollTop);
  await page.keyboard.press("End");
  await page.waitForFunction((b) => document.querySelector("#thread").scrollTop !== b, before, { timeout: T });
  // Send: Tab to the box, type, Enter.
  await tabTo(page, "#composer");
  await page.keyboard.type("Typed with the keyboard only");
  await page.keyboard.press("Enter");
  await page.locator('.msg.mine[data-state="sent"]', { hasText: "Typed with the keyboard only" }).waitFor({ timeout: T });
  await student.locator('[data-peer="teacher-1"] .unread', { hasText: "1" }).waitFor({ timeout: T });
  // Switch user (the demo's sign-out): Shift+Tab back to the link in the header, Enter.
  await tabTo(page, "header a", { back: true });
  await page.keyboard.press("Enter");
  await page.locator("[data-user]").first().waitFor({ timeout: T });
  await page.context().close();
  await student.context().close();
});

await test("a_phone_at_320_px_and_200_percent_zoom_show_one_pane_without_sideways_scroll", async () => {
  const page = await newPage("phone", { viewport: { width: 320, height: 640 }, isMobile: true, hasTouch: true });
  await page.goto(`${base}/`);
  await expectNoSideScroll(page, "the picker at 320 px");
  await page.goto(`${base}/?as=teacher-2`);
  await opened(page);
  await expectNoSideScroll(page, "the list at 320 px");
  await expectEveryControlReachable(page, "the list at 320 px");
  if (await page.locator("#pane").isVisible()) throw new Error("the thread pane shows beside the list on a phone");
  await page.locator('[data-peer="student-1"]').click();
  await page.locator("#composer").fill(`A long unbroken word: ${"abcdefghij".repeat(12)} and a link https://school.example/${"x".repeat(80)}`);
  await page.locator("#composer").press("Enter");
  await page.locator('.msg.mine[data-state="sent"]', { hasText: "A long unbroken word" }).waitFor({ timeout: T });
  if (await page.locator("#contacts-nav").isVisible()) throw new Error("the list shows beside the thread on a phone");
  await expectNoSideScroll(page, "an open thread at 320 px");
  await expectEveryControlReachable(page, "an open thread at 320 px");
  // A message is not one letter per line: its bubble takes most of the width.
  const bubble = await page.locator(".msg.mine").last().boundingBox();
  if (bubble.width < 200) throw new Error(`a message at 320 px is ${bubble.width} px wide`);
  await expectNoViolations(page, axe, "an open thread at 320 px");
  // Back to the list: the focus returns to the conversation it came from.
  await page.locator("#back").click();
  await expectFocus(page, '[data-peer="student-1"]', "after going back to the list");
  // 200% zoom of a 1280 x 800 window: 640 x 400 CSS px.
  await page.setViewportSize({ width: 640, height: 400 });
  await expectNoSideScroll(page, "the list at 200% zoom");
  await page.locator('[data-peer="student-1"]').click();
  await expectNoSideScroll(page, "an open thread at 200% zoom");
  await expectEveryControlReachable(page, "an open thread at 200% zoom");
  await page.context().close();
});

await test("the_live_region_reads_each_new_message_once_and_never_typing", async () => {
  const teacher = await newPage("listener");
  await teacher.goto(`${base}/?as=teacher-1`);
  await opened(teacher);
  await recordAnnouncements(teacher);
  await teacher.locator('[data-peer="student-1"]').click();
  const student = await newPage("speaker");
  await student.goto(`${base}/?as=student-1`);
  await opened(student);
  await student.locator('[data-peer="teacher-1"]').click();
  await student.locator("#composer").pressSequentially("Is the");
  await teacher.locator("#typing", { hasText: "is typing" }).waitFor({ timeout: T });
  await student.locator("#composer").fill("Is the trip on Thursday?");
  await student.locator("#composer").press("Enter");
  await teacher.locator(".msg.theirs", { hasText: "Is the trip on Thursday?" }).waitFor({ timeout: T });
  await teacher.waitForFunction(() => window.__said.some((s) => s === "say-polite: Ada: Is the trip on Thursday?"), null, { timeout: T });
  // Another conversation's message is named, not read out.
  const ben = await newPage("other");
  await ben.goto(`${base}/?as=student-2`);
  await opened(ben);
  await seed(ben, { role: "teacher", id: 1 }, 1, "Question from Ben");
  await teacher.locator('[data-peer="student-2"] .unread').filter({ hasText: /\d/ }).waitFor({ timeout: T });
  await teacher.waitForFunction(() => window.__said.includes("say-polite: New message from Ben"), null, { timeout: T });
  // A second message from Ada: the first is not read again, typing never was.
  await student.locator("#composer").fill("Thanks!");
  await student.locator("#composer").press("Enter");
  await teacher.waitForFunction(() => window.__said.includes("say-polite: Ada: Thanks!"), null, { timeout: T });
  const said = await teacher.evaluate(() => window.__said);
  const first = said.filter((s) => s.includes("Is the trip on Thursday?"));
  if (first.length !== 1) throw new Error(`the message was announced ${first.length} times: ${JSON.stringify(said)}`);
  if (said.some((s) => /typing/i.test(s))) throw new Error(`typing was announced: ${JSON.stringify(said)}`);
  // A failed send is said at once (assertive).
  await teacher.locator("#composer").fill("y".repeat(20000));
  await teacher.locator("#composer").press("Enter");
  await teacher.waitForFunction(() => window.__said.some((s) => s.startsWith("say-alert: Your message to Ada was not sent")), null, { timeout: T });
  for (const p of [teacher, student, ben]) await p.context().close();
});

await test("no_errors_in_the_pages", async () => {
  if (errors.length) throw new Error(errors.join("\n"));
});

await browser.close();
server.kill("SIGTERM");
await new Promise((ok) => server.on("exit", ok));
rmSync(dir, { recursive: true, force: true });
process.exit(finish());
