// Unit tests of the package's pure TypeScript (node:test, on the built dist/): what needs no
// browser. Run by scripts/browser-tests.sh after the build.
import assert from "node:assert/strict";
import { test } from "node:test";
import { websocketUrl } from "../dist/connection.js";

test("the guide's socket URL maps to the WebSocket endpoint, as the native client maps it", () => {
  // The cases of client-wasm/src/url.rs.
  assert.equal(websocketUrl("http://localhost:4000"), "ws://localhost:4000/ws");
  assert.equal(websocketUrl(" http://localhost:4000/ "), "ws://localhost:4000/ws");
  assert.equal(websocketUrl("https://chat.school.example"), "wss://chat.school.example/ws");
  assert.equal(websocketUrl("https://school.example/chat"), "wss://school.example/chat/ws");
  assert.equal(websocketUrl("https://school.example/chat/?x=1#y"), "wss://school.example/chat/ws");
  assert.equal(websocketUrl("ws://127.0.0.1:9/ws"), "ws://127.0.0.1:9/ws");
  assert.equal(websocketUrl("http://h:1/ws"), "ws://h:1/ws");
  assert.throws(() => websocketUrl("localhost:4000"), { name: "TypeError", message: /must start with http:\/\// });
  assert.throws(() => websocketUrl("http://"), { name: "TypeError", message: /no host/ });
  assert.throws(() => websocketUrl("https:///chat"), { name: "TypeError", message: /no host/ });
});
