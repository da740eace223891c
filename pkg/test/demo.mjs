// The built-in demo, as a new user meets it: `chat-server demo` (embedded SQLite, demo users,
// the page at / using the real chat-sdk package), two browser contexts in headless Chromium
// (Playwright), a teacher and a student chatting both ways.
// Usage: node demo.mjs   (CHAT_SERVER_BIN: the binary, default target/debug/chat-server;
//                         CHAT_DEMO_SDK_DIR: the built package, default pkg/dist)
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
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
async function newPage(label) {
  // A context each: two users must not share storage, as two people would not.
  const context = await browser.newContext();
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

await test("no_errors_in_the_pages", async () => {
  if (errors.length) throw new Error(errors.join("\n"));
});

await browser.close();
server.kill("SIGTERM");
await new Promise((ok) => server.on("exit", ok));
rmSync(dir, { recursive: true, force: true });
process.exit(finish());
