// The example app in headless Chromium (playwright-core with Debian's Chromium), against
// `next build && next start`, a real chat-server and PostgreSQL (started by tests/run.sh).
// Usage: node tests/e2e.mjs APP_URL   (DATABASE_URL: the app's database, for seeding history)
import { chromium } from "playwright-core";
import pg from "pg";
import {
  axeSource,
  expectEveryControlReachable,
  expectFocus,
  expectNoSideScroll,
  expectNoViolations,
  recordAnnouncements,
  tabTo,
} from "../../../pkg/test/a11y.mjs";

const base = process.argv[2];
if (!base) throw new Error("usage: node tests/e2e.mjs APP_URL");
// other.test is this machine under another name: a page origin chat-server does not allow.
const launch = (extra = []) =>
  chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions", ...extra],
  });
const browser = await launch();
const axe = axeSource(import.meta.url);
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
async function signIn(user, options = {}, { from = browser, url = base } = {}) {
  const context = await from.newContext(options);
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(`[${user}] ${e}`));
  page.on("console", (m) => m.type() === "error" && errors.push(`[${user}] console: ${m.text()}`));
  await page.goto(`${url}/`);
  await page.locator(`[data-user="${user}"]`).click();
  await page.waitForURL(/\/chat$/, { timeout: T });
  if (from === browser) await open(page);
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
  const top = student.locator(".contacts [data-peer]").first();
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
  for (let i = 0; i < 10 && (await page.locator(".msg", { hasText: /old message 1(?!\d)/ }).count()) === 0; i++) {
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
  await teacher.locator(".msg.mine", { hasText: "Bring your calculater" }).locator('[data-action="edit"]').click();
  await teacher.locator("#ask-text").fill("Bring your calculator");
  await teacher.locator("#ask-confirm").click();
  await student.locator(".msg.theirs", { hasText: "Bring your calculator" }).filter({ hasText: "edited" }).waitFor({ timeout: T });
  // ...then deletes it: "message deleted" where the text was, on both pages.
  await teacher.locator(".msg.mine", { hasText: "Bring your calculator" }).locator('[data-action="delete"]').click();
  await teacher.locator("#ask-confirm").click();
  await student.locator(".msg.theirs .deleted").first().waitFor({ timeout: T });
  await teacher.locator(".msg.mine .deleted").first().waitFor({ timeout: T });
  check((await student.locator(".msg", { hasText: "calculator" }).count()) === 0, "the deleted text is gone from the page");

  // The student reports a message; blocking a teacher is not theirs to do (the server says why).
  await say(teacher, "Please stay after class");
  const worrying = student.locator(".msg.theirs", { hasText: "Please stay after class" });
  await worrying.locator('[data-action="report"]').click();
  await student.locator("#ask-text").fill("It worried me");
  await student.locator("#ask-confirm").click();
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

await test("every_page_and_state_passes_axe_wcag_2_2_aa_in_light_and_dark", async () => {
  for (const colorScheme of ["light", "dark"]) {
    const visitor = await (await browser.newContext({ colorScheme })).newPage();
    await visitor.goto(`${base}/`);
    await expectNoViolations(visitor, axe, `sign-in (${colorScheme})`);
    await visitor.goto(`${base}/?error=pick`);
    await expectNoViolations(visitor, axe, `sign-in with an error (${colorScheme})`);
    await visitor.context().close();

    // Student 3 and teacher 2: a list, an open thread with older history, typing, a failed send,
    // the reconnecting banner with a pending send, the report dialog, a refused block.
    const page = await signIn("student-3", { colorScheme });
    const other = await signIn("teacher-2");
    await expectNoViolations(page, axe, `chat, no conversation open (${colorScheme})`);
    await other.locator('[data-peer="student-3"]').click();
    for (let i = 1; i <= 35; i += 1) await say(other, `Note ${i} (${colorScheme})`);
    await other.locator('.msg.mine:is([data-state="sent"], [data-state="read"])', { hasText: `Note 35 (${colorScheme})` }).waitFor({ timeout: T });
    await badge(page, "teacher-2").filter({ hasText: /\d/ }).waitFor({ timeout: T });
    await expectNoViolations(page, axe, `chat with an unread badge (${colorScheme})`);
    await page.locator('[data-peer="teacher-2"]').click();
    await page.locator(".msg.theirs", { hasText: `Note 35 (${colorScheme})` }).waitFor({ timeout: T });
    await page.locator("#older").waitFor({ timeout: T });
    await expectNoViolations(page, axe, `an open thread with older history (${colorScheme})`);
    await other.locator("#composer").pressSequentially("Also");
    await page.locator("#typing", { hasText: "is typing" }).waitFor({ timeout: T });
    await expectNoViolations(page, axe, `the peer typing (${colorScheme})`);
    await other.locator("#composer").fill("");
    await say(page, "z".repeat(17 * 1024));
    await page.locator('.msg.mine[data-state="failed"] [data-action="retry"]').waitFor({ timeout: T });
    await expectNoViolations(page, axe, `a failed send (${colorScheme})`);
    await page.locator(".msg.theirs", { hasText: `Note 35 (${colorScheme})` }).locator('[data-action="report"]').click();
    await page.locator("#ask-text").waitFor({ timeout: T });
    await expectNoViolations(page, axe, `the report dialog (${colorScheme})`);
    await page.keyboard.press("Escape");
    await page.locator("#ask-text").waitFor({ state: "detached", timeout: T });
    await page.locator("#block").click();
    await page.locator(".thread-bar .error").waitFor({ timeout: T });
    await expectNoViolations(page, axe, `a refused block (${colorScheme})`);
    await page.context().setOffline(true);
    await page.locator("#banner", { hasText: "reconnecting" }).waitFor({ timeout: T });
    await say(page, `Pending while offline (${colorScheme})`);
    await page.locator('.msg.mine[data-state="pending"]', { hasText: "Pending while offline" }).waitFor({ timeout: T });
    await expectNoViolations(page, axe, `the reconnecting banner and a pending send (${colorScheme})`);
    await page.context().setOffline(false);
    await open(page);
    await page.context().close();
    await other.context().close();

    // The staff pages and the Prisma page, as the supervisor (teacher 1).
    const staff = await signIn("teacher-1", { colorScheme });
    await staff.goto(`${base}/messages`);
    await staff.locator("#recent tr").nth(1).waitFor({ timeout: T });
    await expectNoViolations(staff, axe, `the Prisma page (${colorScheme})`);
    await staff.goto(`${base}/supervise`);
    await staff.locator('#supervise[data-status="open"]').waitFor({ timeout: T });
    await staff.locator('[data-student="1"]').click();
    await staff.locator('#supervised-conversations [data-peer="teacher-1"]').click();
    await staff.locator(".supervised-message").first().waitFor({ timeout: T });
    await staff.locator(".supervised-message [data-earlier]").first().click();
    await staff.locator(".supervised-message .earlier").first().waitFor({ timeout: T });
    await expectNoViolations(staff, axe, `the supervisor's page with a conversation open (${colorScheme})`);
    await staff.goto(`${base}/reports`);
    await staff.locator("#reports").waitFor({ timeout: T });
    await expectNoViolations(staff, axe, `the reports page (${colorScheme})`);
    await staff.context().close();
  }
});

await test("keyboard_only_sign_in_open_read_older_send_report_and_sign_out", async () => {
  const page = await (await browser.newContext()).newPage();
  page.on("pageerror", (e) => errors.push(`[keyboard] ${e}`));
  await page.goto(`${base}/`);
  // Sign in: Tab to the user, Enter.
  await tabTo(page, '[data-user="student-2"]');
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/chat$/, { timeout: T });
  await open(page);
  // Open the conversation (75 older messages from teacher 2): the focus goes to the message box.
  await tabTo(page, '[data-peer="teacher-2"]');
  await page.keyboard.press("Enter");
  await expectFocus(page, "#composer", "after opening a conversation");
  await page.locator(".msg", { hasText: "old message 75" }).waitFor({ timeout: T });
  // Read older history: on to "Load older messages" (the thread's first control: forward
  // past the send button and round the page is shorter than back through every message's
  // buttons), Enter, until the first message is there.
  for (let i = 0; i < 5 && (await page.locator(".msg", { hasText: /old message 1(?!\d)/ }).count()) === 0; i += 1) {
    if (await page.locator("#older").count()) {
      await tabTo(page, "#older", { max: 60 });
      await page.keyboard.press("Enter");
    }
    await page.locator(".msg").nth(30 * (i + 1)).or(page.locator(".msg", { hasText: /old message 1(?!\d)/ })).first().waitFor({ timeout: T });
  }
  await page.locator(".msg", { hasText: /old message 1(?!\d)/ }).waitFor({ timeout: T });
  await expectFocus(page, "#thread, #thread *", "after the last older page");
  // Send: Tab to the box, type, Enter.
  await tabTo(page, "#composer");
  await page.keyboard.type("Sent without a mouse");
  await page.keyboard.press("Enter");
  await page.locator('.msg.mine[data-state="sent"]', { hasText: "Sent without a mouse" }).waitFor({ timeout: T });
  // Report the teacher's last message: Shift+Tab to its Report button, Enter, type, confirm.
  await tabTo(page, '.msg.theirs [data-action="report"]', { back: true });
  const reported = await page.evaluate(() => document.activeElement.closest(".msg").dataset.id);
  await page.keyboard.press("Enter");
  await expectFocus(page, "#ask-text", "the report dialog opened");
  await page.keyboard.type("Testing the keyboard path");
  await tabTo(page, "#ask-confirm");
  await page.keyboard.press("Enter");
  await page.locator("#notice", { hasText: "Reported to staff" }).waitFor({ timeout: T });
  await expectFocus(page, `.msg[data-id="${reported}"] [data-action="report"]`, "after the dialog closed");
  // Sign out: back to the header's button, Enter.
  await tabTo(page, "#sign-out", { back: true, max: 200 });
  await page.keyboard.press("Enter");
  await page.waitForURL(new RegExp(`${base}/?$`), { timeout: T });
  await page.locator("[data-user]").first().waitFor({ timeout: T });
  await page.context().close();
});

await test("a_phone_at_320_px_and_200_percent_zoom_show_one_pane_without_sideways_scroll", async () => {
  const phone = { viewport: { width: 320, height: 640 }, isMobile: true, hasTouch: true };
  const visitor = await (await browser.newContext(phone)).newPage();
  await visitor.goto(`${base}/`);
  await expectNoSideScroll(visitor, "sign-in at 320 px");
  await visitor.context().close();
  const page = await signIn("teacher-2", phone);
  await expectNoSideScroll(page, "the list at 320 px");
  await expectEveryControlReachable(page, "the list at 320 px");
  check(!(await page.locator(".thread-pane").isVisible()), "the thread shows beside the list on a phone");
  await page.locator('[data-peer="student-2"]').click();
  await page.locator(".msg", { hasText: "old message 75" }).waitFor({ timeout: T });
  await say(page, `A long word: ${"abcdefghij".repeat(12)}`);
  await page.locator('.msg.mine:is([data-state="sent"], [data-state="read"])', { hasText: "A long word" }).waitFor({ timeout: T });
  check(!(await page.locator(".contacts-nav").isVisible()), "the list shows beside the thread on a phone");
  await expectNoSideScroll(page, "an open thread at 320 px");
  await expectEveryControlReachable(page, "an open thread at 320 px");
  const bubble = await page.locator(".msg.mine").last().boundingBox();
  check(bubble.width >= 200, `a message at 320 px is ${bubble.width} px wide`);
  await expectNoViolations(page, axe, "an open thread at 320 px");
  await page.locator("#back").click();
  await expectFocus(page, '[data-peer="student-2"]', "after going back to the list");
  for (const path of ["/messages"]) {
    await page.goto(`${base}${path}`);
    await expectNoSideScroll(page, `${path} at 320 px`);
  }
  // 200% zoom of a 1280 x 800 window: 640 x 400 CSS px.
  await page.setViewportSize({ width: 640, height: 400 });
  await page.goto(`${base}/chat`);
  await open(page);
  await expectNoSideScroll(page, "the list at 200% zoom");
  await page.locator('[data-peer="student-2"]').click();
  await expectNoSideScroll(page, "an open thread at 200% zoom");
  await expectEveryControlReachable(page, "an open thread at 200% zoom");
  await page.context().close();
});

await test("the_live_region_reads_each_new_message_once_and_never_typing", async () => {
  const listener = await signIn("teacher-2");
  await recordAnnouncements(listener);
  await listener.locator('[data-peer="student-3"]').click();
  const speaker = await signIn("student-3");
  await speaker.locator('[data-peer="teacher-2"]').click();
  await speaker.locator("#composer").pressSequentially("Is the");
  await listener.locator("#typing", { hasText: "is typing" }).waitFor({ timeout: T });
  await say(speaker, "Is the trip on Thursday?");
  await listener.waitForFunction(() => window.__said.includes("say-polite: Chloé Dubois: Is the trip on Thursday?"), null, { timeout: T });
  // Another conversation's message is named, not read out.
  const ben = await signIn("student-2");
  await ben.locator('[data-peer="teacher-2"]').click();
  await say(ben, "A question from Ben");
  await listener.waitForFunction(() => window.__said.includes("say-polite: New message from Ben Carter"), null, { timeout: T });
  await say(speaker, "Thanks!");
  await listener.waitForFunction(() => window.__said.includes("say-polite: Chloé Dubois: Thanks!"), null, { timeout: T });
  const said = await listener.evaluate(() => window.__said);
  const once = said.filter((x) => x.includes("Is the trip on Thursday?")).length;
  check(once === 1, `the message was announced ${once} times: ${JSON.stringify(said)}`);
  check(!said.some((x) => /typing/i.test(x)), `typing was announced: ${JSON.stringify(said)}`);
  // A failed send is said at once.
  await say(listener, "q".repeat(17 * 1024));
  await listener.waitForFunction(() => window.__said.some((x) => x.startsWith("say-alert: Your message to Chloé Dubois was not sent")), null, { timeout: T });
  for (const p of [listener, speaker, ben]) await p.context().close();
});

await test("a_page_on_an_origin_the_chat_server_refuses_says_so_for_good", async () => {
  // The same app on another name (other.test -> 127.0.0.1): its origin is not in
  // CHAT_ALLOWED_ORIGINS. The page must say which origin and which setting, not "reconnecting".
  const elsewhere = await launch(["--host-resolver-rules=MAP other.test 127.0.0.1"]);
  try {
    const url = base.replace("127.0.0.1", "other.test");
    const page = await signIn("student-3", {}, { from: elsewhere, url });
    const origin = new URL(url).origin;
    await page.locator('#chat[data-status="refused"]').waitFor({ timeout: T });
    await page.locator("#banner", { hasText: `${origin} is not in CHAT_ALLOWED_ORIGINS` }).waitFor({ timeout: T });
    await page.waitForFunction((o) => document.getElementById("say-alert").textContent.includes(o), origin, { timeout: T });
    check((await page.locator("#chat").getAttribute("data-status")) === "refused", "the refusal is final, not a retry loop");
    await expectNoViolations(page, axe, "the refused-origin banner");
  } finally {
    await elsewhere.close();
  }
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
