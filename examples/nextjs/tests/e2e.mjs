// The example app in headless Chromium (playwright-core with Debian's Chromium), against
// `next build && next start`, a real chat-server and PostgreSQL (started by tests/run.sh).
// Usage: node tests/e2e.mjs APP_URL   (DATABASE_URL: the app's database, for seeding history)
import { chromium } from "playwright-core";
import pg from "pg";

const base = process.argv[2];
if (!base) throw new Error("usage: node tests/e2e.mjs APP_URL");
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions"],
});
const T = 15000;
let passed = 0;
let failed = 0;
const errors = [];
async function test(name, body) {
  try {
    await body();
    passed += 1;
    console.log(`test nextjs::${name} ... ok`);
  } catch (e) {
    failed += 1;
    console.log(`test nextjs::${name} ... FAILED\n${e?.stack ?? e}`);
  }
}
function check(ok, what) {
  if (!ok) throw new Error(what);
}

/** A browser context signed in as `user` ("teacher-1") through the sign-in page, on /chat. */
async function signIn(user) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(`[${user}] ${e}`));
  page.on("console", (m) => m.type() === "error" && errors.push(`[${user}] console: ${m.text()}`));
  await page.goto(`${base}/`);
  await page.locator(`[data-user="${user}"]`).click();
  await page.waitForURL(/\/chat$/, { timeout: T });
  await open(page);
  return page;
}
const open = (page) => page.locator('#chat[data-status="open"]').waitFor({ timeout: T });
const badge = (page, peer) => page.locator(`[data-peer="${peer}"] .unread`);
// An empty badge is hidden (display: none), so wait on its text, not its visibility.
const badgeCleared = (page, peer) =>
  page.waitForFunction((sel) => document.querySelector(sel)?.textContent === "", `[data-peer="${peer}"] .unread`, {
    timeout: T,
  });
async function say(page, text) {
  await page.locator("#composer").fill(text);
  await page.locator("#composer").press("Enter");
}

await test("the_token_route_refuses_a_visitor_who_is_not_signed_in", async () => {
  const response = await fetch(`${base}/api/chat-token`);
  check(response.status === 401, `expected 401, got ${response.status}`);
});

const teacher = await signIn("teacher-1");
const student = await signIn("student-1");

await test("a_teacher_and_a_student_exchange_messages_live", async () => {
  // Presence: each sees the other online.
  await teacher.locator('[data-peer="student-1"] .dot.online').waitFor({ timeout: T });
  await student.locator('[data-peer="teacher-1"] .dot.online').waitFor({ timeout: T });
  await teacher.locator('[data-peer="student-1"]').click();
  await say(teacher, "Hello Ada, the essay is due Friday");
  await teacher.locator('.msg.mine[data-state="sent"]', { hasText: "essay is due Friday" }).waitFor({ timeout: T });
  // Unread badge, then the student reads it and the teacher sees the receipt.
  await badge(student, "teacher-1").filter({ hasText: "1" }).waitFor({ timeout: T });
  await student.locator('[data-peer="teacher-1"]').click();
  await student.locator(".msg.theirs", { hasText: "essay is due Friday" }).waitFor({ timeout: T });
  await teacher.locator('.msg.mine[data-state="read"]', { hasText: "essay is due Friday" }).waitFor({ timeout: T });
  await badgeCleared(student, "teacher-1");
  // Typing, then the reply arrives live in the teacher's open thread.
  await student.locator("#composer").pressSequentially("Thank");
  await teacher.locator("#typing", { hasText: "Ada Lovelace is typing" }).waitFor({ timeout: T });
  await say(student, "Thank you, Ms. Rivera");
  await teacher.locator(".msg.theirs", { hasText: "Thank you, Ms. Rivera" }).waitFor({ timeout: T });
});

await test("a_reload_shows_the_history", async () => {
  await student.reload();
  await open(student);
  await student.locator('[data-peer="teacher-1"]').click();
  await student.locator(".msg", { hasText: "Thank you, Ms. Rivera" }).waitFor({ timeout: T });
  const texts = await student.locator(".msg").allTextContents();
  const first = texts.findIndex((t) => t.includes("essay is due Friday"));
  const second = texts.findIndex((t) => t.includes("Thank you, Ms. Rivera"));
  check(first >= 0 && second > first, `history order: ${JSON.stringify(texts)}`);
});

await test("a_message_sent_while_the_recipient_is_offline_arrives_once_on_reconnect", async () => {
  await student.context().setOffline(true);
  await student.locator("#banner", { hasText: "reconnecting" }).waitFor({ timeout: T });
  await say(teacher, "Sent while you were offline");
  await teacher.locator('.msg.mine[data-state="sent"]', { hasText: "Sent while you were offline" }).waitFor({ timeout: T });
  await student.context().setOffline(false);
  await open(student);
  await student.locator(".msg.theirs", { hasText: "Sent while you were offline" }).waitFor({ timeout: T });
  await student.waitForTimeout(1000); // a duplicate would arrive with the catch-up, right after
  const copies = await student.locator(".msg.theirs", { hasText: "Sent while you were offline" }).count();
  check(copies === 1, `arrived ${copies} times`);
  check((await student.locator("#banner").count()) === 0, "the banner is gone");
});

await test("sending_shows_pending_while_offline_then_sent_and_failed_on_a_permanent_error", async () => {
  // Offline, the message waits in the SDK's outbox, shown as pending; back online it is stored.
  await teacher.context().setOffline(true);
  await teacher.locator("#banner", { hasText: "reconnecting" }).waitFor({ timeout: T });
  await say(teacher, "Queued while my wifi was off");
  await teacher.locator('.msg.mine[data-state="pending"]', { hasText: "Queued while my wifi" }).waitFor({ timeout: T });
  await teacher.context().setOffline(false);
  await open(teacher);
  // Stored: "sent", or already "read", since the student has this conversation open.
  await teacher
    .locator('.msg.mine:is([data-state="sent"], [data-state="read"])', { hasText: "Queued while my wifi" })
    .waitFor({ timeout: T });
  await student.locator(".msg.theirs", { hasText: "Queued while my wifi" }).waitFor({ timeout: T });
  // Too long for the server (16 KiB): refused for good, shown as failed with the reason.
  await say(teacher, "x".repeat(17 * 1024));
  await teacher.locator('.msg.mine[data-state="failed"]', { hasText: "content_too_long" }).waitFor({ timeout: T });
});

await test("unread_badges_count_messages_from_each_sender", async () => {
  // Teacher 2 writes twice to student 1, whose open thread is teacher 1's.
  const teacher2 = await signIn("teacher-2");
  await teacher2.locator('[data-peer="student-1"]').click();
  await say(teacher2, "Chess club at 3");
  await say(teacher2, "Bring your board");
  await teacher2.locator('.msg.mine[data-state="sent"]', { hasText: "Bring your board" }).waitFor({ timeout: T });
  await badge(student, "teacher-2").filter({ hasText: "2" }).waitFor({ timeout: T });
  // The newest conversation moves to the top, with its last message as the preview.
  const top = student.locator(".contacts li").first();
  check((await top.getAttribute("data-peer")) === "teacher-2", "teacher 2's conversation is first");
  check((await top.locator(".preview").textContent()) === "Bring your board", "preview of the last message");
  // Teacher 1's namesake, student 1, is not teacher 1: teacher 1 got nothing from teacher 2.
  check((await badge(teacher, "teacher-2").textContent()) === "", "teacher 1 got student 1's messages");
  await student.locator('[data-peer="teacher-2"]').click();
  await badgeCleared(student, "teacher-2");
  await teacher2.locator('.msg.mine[data-state="read"]', { hasText: "Bring your board" }).waitFor({ timeout: T });
  await teacher2.context().close();
});

await test("scrolling_up_loads_older_history", async () => {
  // 75 older messages between teacher 2 and student 2, written straight to the table.
  const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await client.connect();
  await client.query(`
    INSERT INTO "Message" (id, "senderId", "senderRole", "recipientId", "recipientRole", content, "createdAt", "updatedAt", "isRead")
    SELECT gen_random_uuid()::text, 2, 'teacher', 2, 'student', 'old message ' || n,
           TIMESTAMP '2026-01-01' + n * INTERVAL '1 minute', TIMESTAMP '2026-01-01' + n * INTERVAL '1 minute', true
    FROM generate_series(1, 75) n`);
  await client.end();
  const page = await signIn("student-2");
  await page.locator('[data-peer="teacher-2"]').click();
  await page.locator(".msg", { hasText: "old message 75" }).waitFor({ timeout: T });
  for (let i = 0; i < 10 && (await page.locator(".msg", { hasText: /^old message 1\b/ }).count()) === 0; i++) {
    await page.locator("#thread").evaluate((el) => { el.scrollTop = 0; });
    await page.waitForTimeout(400);
  }
  const count = await page.locator(".msg").count();
  check(count === 75, `expected all 75 messages after scrolling up, got ${count}`);
  await page.context().close();
});

await test("edit_delete_report_mute_and_supervision_through_the_pages", async () => {
  for (const page of [teacher, student]) {
    await page.goto(`${base}/chat`);
    await open(page);
  }
  await teacher.locator('[data-peer="student-1"]').click();
  await student.locator('[data-peer="teacher-1"]').click();
  await say(teacher, "Bring your calculater");
  await student.locator(".msg.theirs", { hasText: "Bring your calculater" }).waitFor({ timeout: T });
  // The teacher fixes the typo; the student's page shows the new text, marked edited.
  teacher.once("dialog", (d) => d.accept("Bring your calculator"));
  await teacher.locator(".msg.mine", { hasText: "Bring your calculater" }).locator('[data-action="edit"]').click();
  await student.locator(".msg.theirs", { hasText: "Bring your calculator" }).filter({ hasText: "edited" }).waitFor({ timeout: T });
  // ...then deletes it: "message deleted" where the text was, on both pages.
  teacher.once("dialog", (d) => d.accept());
  await teacher.locator(".msg.mine", { hasText: "Bring your calculator" }).locator('[data-action="delete"]').click();
  await student.locator(".msg.theirs .deleted").first().waitFor({ timeout: T });
  await teacher.locator(".msg.mine .deleted").first().waitFor({ timeout: T });
  check((await student.locator(".msg", { hasText: "calculator" }).count()) === 0, "the deleted text is gone from the page");

  // The student reports a message; blocking a teacher is not theirs to do (the server says why).
  await say(teacher, "Please stay after class");
  const worrying = student.locator(".msg.theirs", { hasText: "Please stay after class" });
  student.once("dialog", (d) => d.accept("It worried me"));
  await worrying.locator('[data-action="report"]').click();
  await student.locator("#notice", { hasText: "Reported to staff" }).waitFor({ timeout: T });
  await student.locator("#block", { hasText: "Block Ms. Rivera" }).click();
  await student.locator(".thread-bar .error", { hasText: "report a message instead" }).waitFor({ timeout: T });

  // The teacher mutes the student: the student's send is refused as blocked, until unmuted.
  await teacher.locator("#block", { hasText: "Mute Ada Lovelace" }).click();
  await teacher.locator("#block", { hasText: "Unmute Ada Lovelace" }).waitFor({ timeout: T });
  await say(student, "hello?");
  await student.locator('.msg.mine[data-state="failed"]', { hasText: "hello?" }).filter({ hasText: "blocked" }).waitFor({ timeout: T });
  await teacher.locator("#block", { hasText: "Unmute Ada Lovelace" }).click();
  await teacher.locator("#block", { hasText: "Mute Ada Lovelace" }).waitFor({ timeout: T });

  // Teacher 1 is a supervisor (CHAT_SUPERVISORS=1): the student's conversation, read-only.
  await teacher.goto(`${base}/supervise`);
  await teacher.locator('#supervise[data-status="open"]').waitFor({ timeout: T });
  await teacher.locator('[data-student="1"]').click();
  await teacher.locator('#supervised-conversations [data-peer="teacher-1"]').click();
  await teacher.locator("#supervised-thread", { hasText: "Please stay after class" }).waitFor({ timeout: T });
  const deleted = teacher.locator(".supervised-message", { hasText: "deleted by its sender" }).first();
  await deleted.waitFor({ timeout: T });
  // The deleted message's earlier texts: the typo, then the corrected text (the supervisor's read is audited).
  await deleted.locator("[data-earlier]").click();
  await deleted.locator(".earlier", { hasText: "before: Bring your calculater" }).waitFor({ timeout: T });
  await deleted.locator(".earlier", { hasText: "before: Bring your calculator" }).waitFor({ timeout: T });
  // The report is on the staff's Reports page (Prisma reading chat_report), and so is the supervisor's read.
  await teacher.goto(`${base}/reports`);
  const row = teacher.locator("#reports tr", { hasText: "It worried me" });
  await row.waitFor({ timeout: T });
  check((await row.textContent()).includes("Please stay after class"), "the reported text is on the page");
  await teacher.locator("#reads li", { hasText: "earlier texts" }).first().waitFor({ timeout: T });
  // Not for anyone else.
  await student.goto(`${base}/reports`);
  await student.locator("main .error", { hasText: "Only the school" }).waitFor({ timeout: T });
  await student.goto(`${base}/supervise`);
  await student.locator("main .error", { hasText: "Only the school" }).waitFor({ timeout: T });
  await student.goto(`${base}/chat`);
});

await test("the_prisma_page_names_teacher_1_and_student_1_correctly", async () => {
  await teacher.goto(`${base}/messages`);
  const row = (text) => teacher.locator("#recent tr", { hasText: text });
  await row("essay is due Friday").waitFor({ timeout: T });
  check((await row("essay is due Friday").locator(".from").textContent()) === "Ms. Rivera (teacher 1)", "sender of the essay message");
  check((await row("essay is due Friday").locator(".to").textContent()) === "Ada Lovelace (student 1)", "recipient of the essay message");
  check((await row("Thank you, Ms. Rivera").locator(".from").textContent()) === "Ada Lovelace (student 1)", "sender of the reply");
  check((await row("Thank you, Ms. Rivera").locator(".to").textContent()) === "Ms. Rivera (teacher 1)", "recipient of the reply");
  check((await row("Chess club at 3").locator(".from").textContent()) === "Mr. Okafor (teacher 2)", "teacher 2's message");
});

if (errors.length) {
  failed += 1;
  console.log(`test nextjs::no_errors_in_the_pages ... FAILED\n${errors.join("\n")}`);
} else {
  passed += 1;
  console.log("test nextjs::no_errors_in_the_pages ... ok");
}
await browser.close();
console.log(`test result: ${failed ? "FAILED" : "ok"}. ${passed} passed; ${failed} failed`);
process.exit(failed ? 1 : 0);
