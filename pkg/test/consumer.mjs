// Consumer test: the packed chat-sdk installed with npm into a plain page, two pages in
// headless Chromium (Playwright) exchanging messages through the real chat-server.
// Usage: node consumer.mjs HARNESS_URL   (the harness serves the page under /consumer/)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launchChromium, launchPersistent, runner } from "./runner.mjs";

const harness = process.argv[2];
if (!harness) throw new Error("usage: node consumer.mjs HARNESS_URL");

const browser = await launchChromium();
const { test, finish } = runner();

async function open(role, id, context = browser) {
  const page = await context.newPage();
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

await test("a_module_that_cannot_be_fetched_says_so_and_init_can_be_tried_again", async () => {
  // A page of the same origin that has not loaded the package: its own module instance.
  const page = await browser.newPage();
  await page.goto(`${harness}/consumer/node_modules/chat-sdk/package.json`);
  const result = await page.evaluate(async () => {
    const sdk = await import("/consumer/node_modules/chat-sdk/dist/index.js");
    const failed = await sdk.init("/consumer/no-such.wasm").then(
      () => "loaded",
      (e) => String(e.message),
    );
    await sdk.init();
    const client = new sdk.ChatClient({ url: "http://127.0.0.1:9", getToken: () => "t" });
    const status = client.status;
    client.free();
    return { failed, status };
  });
  if (!/could not fetch its WebAssembly module: [45]\d\d from \S*\/no-such\.wasm$/.test(result.failed)) {
    throw new Error(`a missing module: ${JSON.stringify(result)}`);
  }
  if (result.status !== "idle") throw new Error(`the retried init: ${JSON.stringify(result)}`);
  await page.close();
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

const post = (path) => fetch(`${harness}${path}`, { method: "POST" }).then((r) => {
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
});
/** Runs `body` with the chat server stopped at first; it is running again afterwards, whatever happens. */
async function withOutage(body) {
  let started = false;
  const start = async () => {
    if (!started) {
      started = true;
      await post("/start");
    }
  };
  await post("/stop");
  try {
    await body(start);
  } finally {
    await start();
  }
}
/** The sends stored in this page's IndexedDB outbox. */
const stored = (page) =>
  page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const req = indexedDB.open("chat-sdk");
        // Never create the database here: that is the package's job.
        req.onupgradeneeded = () => req.transaction.abort();
        req.onsuccess = () => {
          const db = req.result;
          if (!db.objectStoreNames.contains("outbox")) return resolve([]);
          const all = db.transaction("outbox").objectStore("outbox").getAll();
          all.onsuccess = () => resolve(all.result);
          all.onerror = () => reject(all.error);
        };
        req.onerror = () => resolve([]);
      }),
  );
/** Waits until `page`'s outbox holds `n` sends of its user. */
async function waitStored(page, n) {
  for (let i = 0; i < 100; i += 1) {
    if ((await stored(page)).length === n) return;
    await page.waitForTimeout(50);
  }
  throw new Error(`the outbox never held ${n}: ${JSON.stringify(await stored(page))}`);
}
/** How often `content` is in the conversation, through another user's page. */
async function copies(page, peer, content) {
  const history = await page.evaluate((p) => window.chat.history(p, { limit: 100 }), peer);
  return history.messages.filter((m) => m.content === content).length;
}

await test("a_send_pending_at_a_reload_is_delivered_once_by_the_next_page", async () => {
  const teacher = await open("teacher", 2);
  const content = `survives a reload ${Date.now()}`;
  await withOutage(async (start) => {
    await teacher.waitForFunction(() => document.body.dataset.status === "reconnecting", null, { timeout: 10000 });
    await teacher.evaluate((c) => void window.chat.send({ role: "student", id: 1 }, c).catch(() => {}), content);
    await waitStored(teacher, 1);
    // The page goes away before the server is back; the next one finds the send and says so.
    await teacher.reload();
    await teacher.waitForFunction((c) => window.restored?.some((s) => s.content === c), content, { timeout: 10000 });
    await start();
    await teacher.waitForFunction(() => window.settled?.length === 1 && window.settled[0].sent, null, { timeout: 15000 });
  });
  await waitStored(teacher, 0);
  const student = await open("student", 1);
  const n = await copies(student, { role: "teacher", id: 2 }, content);
  if (n !== 1) throw new Error(`delivered ${n} times`);
  await teacher.close();
  await student.close();
});

await test("a_send_pending_at_a_browser_restart_is_delivered_once_after_it", async () => {
  const profile = mkdtempSync(join(tmpdir(), "chat-sdk-profile-"));
  try {
    let context = await launchPersistent(profile);
    let teacher = await open("teacher", 2, context);
    const content = `survives a browser restart ${Date.now()}`;
    await withOutage(async () => {
      await teacher.waitForFunction(() => document.body.dataset.status === "reconnecting", null, { timeout: 10000 });
      await teacher.evaluate((c) => void window.chat.send({ role: "student", id: 2 }, c).catch(() => {}), content);
      await waitStored(teacher, 1);
      await context.close();
    });
    // The same profile, a new browser.
    context = await launchPersistent(profile);
    teacher = await open("teacher", 2, context);
    await teacher.waitForFunction(() => window.settled?.some((s) => s.sent), null, { timeout: 15000 });
    await waitStored(teacher, 0);
    const n = await copies(teacher, { role: "student", id: 2 }, content);
    if (n !== 1) throw new Error(`delivered ${n} times`);
    await context.close();
  } finally {
    rmSync(profile, { recursive: true, force: true });
  }
});

await test("signing_out_removes_what_the_user_left_in_the_browser", async () => {
  const teacher = await open("teacher", 2);
  await withOutage(async () => {
    await teacher.waitForFunction(() => document.body.dataset.status === "reconnecting", null, { timeout: 10000 });
    await teacher.evaluate(() => void window.chat.send({ role: "student", id: 1 }, "never sent").catch(() => {}));
    await waitStored(teacher, 1);
    await teacher.evaluate(() => window.chat.signOut());
    await waitStored(teacher, 0);
  });
  const storage = await teacher.evaluate(() => window.chat.storage);
  if (storage !== "indexeddb") throw new Error(`storage: ${storage}`);
  // A later page of the same browser has nothing to send.
  await teacher.reload();
  await teacher.waitForFunction(() => document.body.dataset.status === "open", null, { timeout: 15000 });
  const student = await open("student", 1);
  if ((await copies(student, { role: "teacher", id: 2 }, "never sent")) !== 0) throw new Error("sent after sign-out");
  if ((await teacher.evaluate(() => window.restored?.length ?? -1)) !== 0) throw new Error("restored after sign-out");
  await teacher.close();
  await student.close();
});

/** The chat server's count of open connections (its /healthz). */
async function connections() {
  const config = await (await fetch(`${harness}/config`)).json();
  return (await (await fetch(`${config.http}/healthz`)).json()).connections;
}
async function waitConnections(n) {
  for (let i = 0; i < 100; i += 1) {
    if ((await connections()) === n) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`the server never had ${n} connections (it has ${await connections()})`);
}
const role = (page) => page.evaluate(() => window.chat.tabRole);
/** Waits until every page received message `id`, and checks each got it once. */
async function receivedOnce(pages, id) {
  for (const page of pages) {
    await page.waitForFunction((m) => window.received?.some((r) => r.id === m), id, { timeout: 10000 });
    const n = await page.evaluate((m) => window.received.filter((r) => r.id === m).length, id);
    if (n !== 1) throw new Error(`a tab got message ${id} ${n} times`);
  }
}

await test("five_tabs_of_a_user_share_one_connection_and_a_closed_leader_is_replaced", async () => {
  // Every page of the earlier tests is closed: wait until the server has let their sockets go.
  await waitConnections(0);
  const before = 0;
  const context = await browser.newContext();
  const tabs = [];
  for (let i = 0; i < 5; i += 1) tabs.push(await open("student", 1, context));
  const roles = await Promise.all(tabs.map(role));
  if (roles.filter((r) => r === "leader").length !== 1 || roles.filter((r) => r === "follower").length !== 4) {
    throw new Error(`roles: ${roles}`);
  }
  await waitConnections(before + 1);
  // A message to the user reaches every tab, once each.
  const teacher = await open("teacher", 1);
  const first = await teacher.evaluate(() => window.chat.send({ role: "student", id: 1 }, "to all five tabs"));
  await receivedOnce(tabs, first.id);
  // A follower's own calls go through the leader.
  const follower = tabs[roles.indexOf("follower")];
  const reply = await follower.evaluate(() => window.chat.send({ role: "teacher", id: 1 }, "from a follower tab"));
  await teacher.waitForFunction((m) => window.received?.some((r) => r.id === m), reply.id, { timeout: 10000 });
  const page = await follower.evaluate(() => window.chat.history({ role: "teacher", id: 1 }, { limit: 5 }));
  if (!page.messages.some((m) => m.id === reply.id)) throw new Error("history through the leader");

  // The leader's tab closes: another takes the connection over, and nothing is lost or doubled.
  const leader = tabs[roles.indexOf("leader")];
  const rest = tabs.filter((t) => t !== leader);
  await leader.close();
  const started = Date.now();
  // Sent while no tab holds a connection: the new leader's catch-up brings it.
  const gap = await teacher.evaluate(() => window.chat.send({ role: "student", id: 1 }, "during the takeover"));
  await Promise.all(
    rest.map((t) => t.waitForFunction(() => document.body.dataset.status === "open" && window.chat?.tabRole !== "idle", null, { timeout: 10000 })),
  );
  for (let i = 0; i < 100 && !(await Promise.all(rest.map(role))).includes("leader"); i += 1) await rest[0].waitForTimeout(20);
  const took = Date.now() - started;
  const after = await Promise.all(rest.map(role));
  if (after.filter((r) => r === "leader").length !== 1) throw new Error(`roles after: ${after}`);
  if (took > 5000) throw new Error(`took ${took} ms to take over`);
  try {
    await waitConnections(before + 2); // the four tabs' one connection, and the teacher's
  } catch (e) {
    const state = await Promise.all([...rest, teacher].map((t) => t.evaluate(() => `${window.chat.tabRole}/${window.chat.status}`)));
    throw new Error(`${e.message}; tabs and teacher: ${state}`);
  }
  const second = await teacher.evaluate(() => window.chat.send({ role: "student", id: 1 }, "after the takeover"));
  await receivedOnce(rest, second.id);
  await receivedOnce(rest, gap.id);
  await receivedOnce(rest, first.id);
  console.log(`  (takeover: ${took} ms; one server connection for the tabs before and after)`);
  await teacher.close();
  await context.close();
});

await test("a_student_reports_a_message_a_teachers_mute_refuses_their_sends_and_edits_reach_the_other_page", async () => {
  const teacher = await open("teacher", 1);
  const student = await open("student", 2);
  const sent = await teacher.evaluate(() => window.chat.send({ role: "student", id: 2 }, "Please see me after class"));
  await student.waitForFunction((id) => window.received.some((m) => m.id === id), sent.id, { timeout: 10000 });
  await student.evaluate((id) => window.chat.report(id, "It worried me"), sent.id);
  // A student reports a teacher rather than blocking them (the default policy).
  const refusal = await student.evaluate(() => window.chat.block({ role: "teacher", id: 1 }).catch((e) => e.codeName));
  if (refusal !== "not_allowed") throw new Error(`a student blocked a teacher: ${refusal}`);

  await teacher.evaluate(() => window.chat.block({ role: "student", id: 2 }));
  const blocked = await teacher.evaluate(() => window.chat.blocks());
  if (JSON.stringify(blocked) !== JSON.stringify([{ role: "student", id: 2 }])) throw new Error(JSON.stringify(blocked));
  const error = await student.evaluate(() =>
    window.chat.send({ role: "teacher", id: 1 }, "hello?").then(
      () => null,
      (e) => ({ codeName: e.codeName, message: e.message, retryable: e.retryable }),
    ),
  );
  if (error?.codeName !== "blocked" || error.retryable || !error.message.includes("does not take messages from you")) {
    throw new Error(`unexpected ${JSON.stringify(error)}`);
  }
  await teacher.evaluate(() => window.chat.unblock({ role: "student", id: 2 }));
  const after = await student.evaluate(() => window.chat.send({ role: "teacher", id: 1 }, "thank you"));
  await teacher.waitForFunction((id) => window.received.some((m) => m.id === id), after.id, { timeout: 10000 });

  // The teacher edits, then deletes, a message: the student's page hears both.
  await student.evaluate(() => {
    window.changes = [];
    window.chat.on("changed", (e) => window.changes.push({ id: e.message.id, content: e.message.content, deleted: e.deleted }));
  });
  await teacher.evaluate((id) => window.chat.editMessage(id, "Please see me after lunch"), sent.id);
  await teacher.evaluate((id) => window.chat.deleteMessage(id), sent.id);
  await student.waitForFunction(() => window.changes.length === 2, null, { timeout: 10000 });
  const changes = await student.evaluate(() => window.changes);
  const want = [
    { id: sent.id, content: "Please see me after lunch", deleted: false },
    { id: sent.id, content: "", deleted: true },
  ];
  if (JSON.stringify(changes) !== JSON.stringify(want)) throw new Error(`changes: ${JSON.stringify(changes)}`);
  await teacher.close();
  await student.close();
});
await test("options_of_the_wrong_shape_throw_a_type_error", async () => {
  const page = await open("student", 5);
  const cases = [
    ["not a url", true, "URL"],
    ["ftp://example.com", true, "http://"],
    ["http://localhost:4000", false, "getToken"],
  ];
  for (const [url, withToken, says] of cases) {
    const got = await page.evaluate(
      ([url, withToken]) => {
        try {
          new window.ChatClient({ url, getToken: withToken ? () => "t" : "a token" });
          return null;
        } catch (e) {
          return { typeError: e instanceof TypeError, message: String(e.message), code: e.code };
        }
      },
      [url, withToken],
    );
    if (!got || !got.typeError || !got.message.includes(says) || got.code !== undefined) {
      throw new Error(`${url}: ${JSON.stringify(got)}`);
    }
  }
  // A call with a user of the wrong shape rejects with the stable code, naming the shape.
  const refused = await page.evaluate(() =>
    window.chat.send({ role: "parent", id: 1 }, "hi").then(
      () => null,
      (e) => ({ code: e.code, codeName: e.codeName, message: e.message }),
    ),
  );
  if (refused?.codeName !== "bad_user_id" || refused.code !== 24 || !refused.message.includes("role")) {
    throw new Error(`unexpected ${JSON.stringify(refused)}`);
  }
  await page.close();
});

await test("the_server_restarts_a_queued_send_goes_once_and_300_missed_messages_arrive_once_in_order", async () => {
  const teacher = await open("teacher", 3);
  const student = await open("student", 6);
  await post("/restart");
  // Sent while the server was away (or just back): queued, then committed once.
  const sent = await teacher.evaluate(() => window.chat.send({ role: "student", id: 6 }, "after the restart"));
  await student.waitForFunction((id) => window.received.some((m) => m.id === id), sent.id, { timeout: 15000 });
  const statuses = await teacher.evaluate(() => window.statuses);
  if (!statuses.includes("reconnecting") || statuses.at(-1) !== "open") throw new Error(`statuses ${statuses}`);
  await teacher.close();

  // The server goes away; meanwhile 300 messages are written by someone else.
  const [before, catchUps] = await student.evaluate(() => [window.received.length, window.caughtUp.length]);
  await withOutage(async (start) => {
    await student.waitForFunction(() => document.body.dataset.status === "reconnecting", null, { timeout: 15000 });
    await post("/inject?from=teacher:3&to=student:6&n=300");
    await start();
    await student.waitForFunction((n) => window.caughtUp.length > n, catchUps, { timeout: 20000 });
  });
  const done = await student.evaluate((n) => window.caughtUp[n], catchUps);
  if (done.count !== 300 || !(done.conversations?.length >= 1)) throw new Error(`caughtUp ${JSON.stringify(done).slice(0, 300)}`);
  const missed = await student.evaluate((n) => window.received.slice(n).map((m) => m.content), before);
  const expected = Array.from({ length: 300 }, (_, i) => `offline ${i + 1}`);
  if (JSON.stringify(missed) !== JSON.stringify(expected)) {
    throw new Error(`each missed message once, in order: got ${missed.length}: ${missed.slice(0, 5)}...`);
  }
  await student.close();
});

await test("the_token_is_refreshed_before_it_expires_without_dropping_the_connection", async () => {
  const page = await open("teacher", 3);
  // A second client on this page whose tokens live 3 s: the core asks for a fresh one a fifth
  // of the lifetime before expiry, over the open connection.
  await page.evaluate(async () => {
    const config = await (await fetch("/config")).json();
    window.tokenCalls = 0;
    window.shortStatuses = [];
    window.short = new window.ChatClient({
      url: config.http,
      getToken: () => {
        window.tokenCalls += 1;
        return fetch("/token?role=student&id=5&ttl=3").then((r) => r.text());
      },
    });
    window.short.on("status", (e) => window.shortStatuses.push(e.status));
    window.short.connect();
  });
  await page.waitForFunction(() => window.tokenCalls >= 3, null, { timeout: 20000 });
  const statuses = await page.evaluate(() => window.shortStatuses);
  if (statuses.join() !== "connecting,open") throw new Error(`the connection dropped: ${statuses}`);
  // Still usable, past the first token's expiry.
  const sent = await page.evaluate(() => window.short.send({ role: "teacher", id: 3 }, "after two refreshes"));
  if (sent.content !== "after two refreshes") throw new Error(JSON.stringify(sent));
  await page.evaluate(() => window.short.close());
  await page.close();
});

await test("a_handler_may_call_the_client_from_inside_an_event", async () => {
  const teacher = await open("teacher", 3);
  const student = await open("student", 5);
  // The student's page answers every message from inside the message handler, and marks it read.
  await student.evaluate(() => {
    window.answered = [];
    window.chat.on("message", ({ message }) => {
      if (message.from.role !== "teacher" || !message.content.startsWith("ping")) return;
      const read = window.chat.markRead(message.from, { at: message.createdAt, id: message.id });
      const reply = window.chat.send(message.from, `pong ${message.content}`);
      Promise.all([read, reply]).then(([count]) => window.answered.push(count));
    });
  });
  const inbox = () => teacher.evaluate(() => window.received.filter((m) => m.content.startsWith("pong ping")).length);
  for (let i = 1; i <= 3; i += 1) {
    await teacher.evaluate((i) => window.chat.send({ role: "student", id: 5 }, `ping ${i}`), i);
  }
  await teacher.waitForFunction(() => window.received.filter((m) => m.content.startsWith("pong ping")).length === 3, null, { timeout: 10000 });
  await student.waitForFunction(() => window.answered.length === 3, null, { timeout: 10000 });
  if ((await inbox()) !== 3) throw new Error("each ping answered once");
  const errors = await student.evaluate(() => window.answered.filter((c) => typeof c !== "number"));
  if (errors.length) throw new Error(`markRead answers ${errors}`);
  await teacher.close();
  await student.close();
});

await test("a_client_freed_while_its_token_is_on_the_way_stays_quiet", async () => {
  const page = await open("teacher", 3);
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.evaluate(async () => {
    const config = await (await fetch("/config")).json();
    window.asked = false;
    window.late = new window.ChatClient({
      url: config.http,
      getToken: () => {
        window.asked = true;
        window.token = new Promise((resolve) => (window.release = resolve));
        return window.token;
      },
    });
    window.late.connect();
  });
  await page.waitForFunction(() => window.asked, null, { timeout: 10000 });
  await page.evaluate(async () => {
    window.late.close();
    window.late.free();
    window.release(await fetch("/token?role=teacher&id=3").then((r) => r.text()));
    // Callbacks run in the order they were added: the client's own has run once this one has.
    await window.token.then(() => {});
  });
  // One more round trip, so that an error the page raised has reached this side.
  await page.evaluate(() => new Promise((resolve) => setTimeout(resolve, 0)));
  if (errors.length) throw new Error(`page errors after free(): ${errors}`);
  await page.close();
});

await browser.close();
process.exit(finish());
