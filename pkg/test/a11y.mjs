// Accessibility checks shared by the Playwright tests of the demo page (pkg/test/demo.mjs) and
// of the Next.js example (examples/nextjs/tests/e2e.mjs): axe-core with the WCAG 2.2 AA tags,
// keyboard-only navigation, and reflow (no sideways scroll, every control reachable).
// No npm imports: each caller passes its own axe-core source (`axeSource()`, resolved from its
// own node_modules) and its own Playwright pages.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

/** axe-core's browser build, from the node_modules of the module at `from` (its import.meta.url). */
export function axeSource(from) {
  return readFileSync(createRequire(from).resolve("axe-core/axe.min.js"), "utf8");
}

/** The rule sets the project promises (ACCESSIBILITY.md): WCAG 2.0, 2.1 and 2.2, levels A and AA. */
export const WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"];

/**
 * Runs axe-core on the page as it is now; throws with every violation (rule, impact, where) so
 * the failure says what to fix. `state` names the page and state in the message.
 */
export async function expectNoViolations(page, source, state) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) await page.addScriptTag({ content: source });
  const violations = await page.evaluate(async (tags) => {
    const result = await window.axe.run(document, { runOnly: { type: "tag", values: tags }, resultTypes: ["violations"] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      where: v.nodes.slice(0, 4).map((n) => `${n.target.join(" ")}: ${n.failureSummary?.split("\n").slice(1, 3).join(" ")}`),
    }));
  }, WCAG_TAGS);
  if (violations.length) {
    const lines = violations.map((v) => `  ${v.id} (${v.impact}): ${v.help}\n${v.where.map((w) => `    - ${w}`).join("\n")}`);
    throw new Error(`axe-core: ${violations.length} WCAG violation(s) in ${state}:\n${lines.join("\n")}`);
  }
}

/** Throws when the page scrolls sideways (WCAG 1.4.10 reflow: 320 CSS px, or 200% zoom). */
export async function expectNoSideScroll(page, state) {
  const { scroll, width, widest } = await page.evaluate(() => {
    const width = document.documentElement.clientWidth;
    const scroll = document.documentElement.scrollWidth;
    let widest = "";
    // What sticks out, to name in the failure (inside a scrolling box is allowed: a wide table).
    const clipped = (el) => {
      for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
        if (getComputedStyle(p).overflowX !== "visible") return true;
      }
      return false;
    };
    if (scroll > width) {
      for (const el of document.querySelectorAll("body *")) {
        const box = el.getBoundingClientRect();
        if (box.width > 0 && box.right > width + 1 && !clipped(el)) {
          widest = `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""}${typeof el.className === "string" && el.className ? `.${el.className.split(" ").join(".")}` : ""} (right edge ${Math.round(box.right)})`;
          break;
        }
      }
    }
    return { scroll, width, widest };
  });
  if (scroll > width) throw new Error(`${state}: scrolls sideways (${scroll} > ${width} CSS px) ${widest}`);
}

/**
 * Starts recording every text the page's live regions take (`say-polite`, `say-alert`), in
 * order, as "id: text" in `window.__said`: what a screen reader would have been told.
 */
export function recordAnnouncements(page, ids = ["say-polite", "say-alert"]) {
  return page.evaluate((ids) => {
    window.__said = [];
    for (const id of ids) {
      new MutationObserver(() => window.__said.push(`${id}: ${document.getElementById(id).textContent.trim()}`))
        .observe(document.getElementById(id), { childList: true, characterData: true, subtree: true });
    }
  }, ids);
}

/** What has the keyboard focus now, as a short description. */
export function focused(page) {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return "body";
    const name = (el.getAttribute("aria-label") ?? el.textContent ?? el.getAttribute("placeholder") ?? "").trim().slice(0, 40);
    return `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""} "${name}"`;
  });
}

/** Presses Tab (Shift+Tab with `back`) until the focused element matches `selector`; throws if it never does. */
export async function tabTo(page, selector, { back = false, max = 80 } = {}) {
  const path = [];
  for (let i = 0; i < max; i += 1) {
    if (await page.evaluate((sel) => document.activeElement?.matches(sel) ?? false, selector)) return;
    await page.keyboard.press(back ? "Shift+Tab" : "Tab");
    path.push(await focused(page));
  }
  throw new Error(`the keyboard never reached ${selector}; ${back ? "Shift+Tab" : "Tab"} went through:\n  ${path.join("\n  ")}`);
}

/** Throws unless the focused element matches `selector`. */
export async function expectFocus(page, selector, what) {
  if (!(await page.evaluate((sel) => document.activeElement?.matches(sel) ?? false, selector))) {
    throw new Error(`${what}: focus should be on ${selector}, is on ${await focused(page)}`);
  }
}

/**
 * Walks the whole page with Tab and throws unless every visible, enabled control (links,
 * buttons, fields, focusable regions) was reached. (Target sizes, WCAG 2.5.8, are axe-core's
 * `target-size` rule, in the wcag22aa tag.)
 */
export async function expectEveryControlReachable(page, state) {
  await page.evaluate(() => {
    document.activeElement?.blur?.();
    window.__reached = new Set();
    window.__onFocus = (e) => window.__reached.add(e.target);
    document.addEventListener("focusin", window.__onFocus);
  });
  const total = await page.evaluate(() => document.querySelectorAll("a[href], button, input, select, textarea, [tabindex]").length);
  for (let i = 0; i < total + 5; i += 1) await page.keyboard.press("Tab");
  const missed = await page.evaluate(() => {
    document.removeEventListener("focusin", window.__onFocus);
    const visible = (el) => {
      const box = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      return box.width > 0 && box.height > 0 && style.visibility !== "hidden" && !el.closest("[inert]");
    };
    const controls = [...document.querySelectorAll("a[href], button, input, select, textarea, [tabindex]")].filter(
      (el) => visible(el) && !el.disabled && el.getAttribute("tabindex") !== "-1" && !el.closest(".visually-hidden, .skip"),
    );
    return controls
      .filter((el) => !window.__reached.has(el))
      .map((el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ""} "${(el.textContent ?? "").trim().slice(0, 30)}"`);
  });
  if (missed.length) throw new Error(`${state}: not reachable with Tab: ${missed.join(", ")}`);
}
