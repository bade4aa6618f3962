// The sandbox page's only script: live updates by polling /regions, and people's actions
// sent to the server as JSON, which has the sandbox driver deliver them to the app.
"use strict";

const body = document.body;
let key = body.dataset.key;
const drawn = {};
document.querySelectorAll("[data-region]").forEach((el) => { drawn[el.dataset.region] = el.innerHTML; });

function user() { return new URLSearchParams(body.dataset.query).get("as"); }

// A modal's overlay starts under the top bar, whose height changes as it wraps.
const topbar = document.querySelector(".topbar");
new ResizeObserver(() => {
  document.documentElement.style.setProperty("--topbar", topbar.offsetHeight + "px");
}).observe(topbar);

function toast(text) {
  const el = document.getElementById("toast");
  el.textContent = text;
  el.hidden = !text;
}

// Said while the sandbox does not answer (stopped, restarting): the page keeps what it shows,
// so say plainly that acting on it does nothing, and take it back once the sandbox answers.
const UNREACHABLE = "The sandbox is not answering, so nothing you do here is sent. "
  + "Is it still running? This page reconnects by itself when it is back.";
let unreachable = false;

function reached(yes) {
  if (yes && unreachable && document.getElementById("toast").textContent === UNREACHABLE) toast("");
  if (!yes) toast(UNREACHABLE);
  unreachable = !yes;
}

// The sandbox's JSON answer to a request; throws a TypeError when it cannot be reached.
async function ask(url, options) {
  const response = await fetch(url, options);
  try {
    return await response.json();
  } catch (err) {
    return { ok: false, error: "The sandbox answered HTTP " + response.status + " without JSON." };
  }
}

async function post(route, data) {
  let answer;
  try {
    answer = await ask("/" + route, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(Object.assign({ as: user() }, data)),
    });
  } catch (err) {
    reached(false);
    return { ok: false, error: UNREACHABLE };
  }
  reached(true);
  toast(answer.error || (answer.problems || []).join("; "));
  await refresh().catch(() => reached(false));
  return answer;
}

async function refresh() {
  const data = await ask("/regions" + body.dataset.query + "&since=" + key);
  if (!data.regions) return;
  key = data.key;
  for (const [name, html] of Object.entries(data.regions)) {
    // Only changed parts are swapped, so typing in an open modal survives new messages.
    if (drawn[name] === html) continue;
    drawn[name] = html;
    const el = document.querySelector(`[data-region="${name}"]`);
    // A redrawn pane keeps its place: at the bottom it follows new messages, anywhere else
    // (answering a run halfway up a busy channel) it stays there instead of jumping to the top.
    const panes = ".messages, [data-region=thread] .pane-body";
    const was = el.querySelector(panes);
    const atBottom = !was || atEnd(was);
    const top = was ? was.scrollTop : 0;
    const seen = new Set(was ? Array.from(was.querySelectorAll(".msg"), (m) => m.dataset.ts) : []);
    el.innerHTML = html;
    const list = el.querySelector(panes);
    if (list) {
      list.scrollTop = atBottom ? list.scrollHeight : top;
      if (was && !atBottom) {
        unseen[name] = (unseen[name] || 0)
          + Array.from(list.querySelectorAll(".msg")).filter((m) => !seen.has(m.dataset.ts)).length;
      }
      showUnseen(name, list);
    }
    const error = name === "modal" && el.querySelector(".sk-error");
    if (error) error.closest("[data-field]").scrollIntoView({ block: "center" });
    if (name === "modal") holdKeyboard();
  }
  body.dataset.key = key;
  // Once its old parts are gone (a focused input taken away still says it changed).
  if (data.instance) body.dataset.instance = data.instance;
}

function atEnd(list) { return list.scrollHeight - list.scrollTop - list.clientHeight < 40; }

// Messages that came in below a pane scrolled up (the answer to a click halfway up a busy
// channel lands at its bottom): counted on a button at the pane's foot, as Slack does, that
// scrolls down to them. Scrolling down by hand counts them seen too.
const unseen = {};

function showUnseen(name, list) {
  const count = unseen[name] || 0;
  let pill = list.querySelector(".new-below");
  if (!count) { if (pill) pill.remove(); return; }
  if (!pill) {
    pill = document.createElement("button");
    pill.type = "button";
    pill.className = "new-below";
    pill.dataset.pane = name;
    list.appendChild(pill);
  }
  pill.textContent = "↓ " + count + (count === 1 ? " new message" : " new messages");
}

document.addEventListener("scroll", (event) => {
  const list = event.target;
  const region = list instanceof Element && list.closest("[data-region]");
  if (region && unseen[region.dataset.region] && atEnd(list)) {
    unseen[region.dataset.region] = 0;
    showUnseen(region.dataset.region, list);
  }
}, true);

// An open modal has the keyboard, as in Slack: what is behind it cannot be tabbed to or
// pressed (Enter on a button behind it would send that click), focus moves into it when it
// opens or is redrawn, and Escape closes it.
function holdKeyboard() {
  const modal = document.querySelector("[data-region=modal] .modal");
  document.querySelector(".app").inert = !!modal;
  // The user picker is the sandbox's, not Slack's: the mouse may switch users with a modal
  // open (each user's modal is their own), while Tab stays in the modal.
  document.getElementById("who").tabIndex = modal ? -1 : 0;
  if (!modal) {
    // Closed: the keyboard goes back to the control that opened it, as in Slack, so
    // keyboard-only use goes on from where it was (the part may have been redrawn since).
    const back = opener && opener();
    opener = null;
    const lost = !document.activeElement || document.activeElement === document.body;
    if (back && lost) back.focus();
    return;
  }
  if (modal.contains(document.activeElement)) return;
  // The first input in error (a group of choices is not focusable, its first choice is).
  const error = modal.querySelector(".has-error :is(input, select, textarea)");
  const first = modal.querySelector("[data-field] [data-kind]:not(.sk-choices), [data-field] input");
  const target = error || first || modal.querySelector("[data-submit], [data-close-modal]");
  if (target) target.focus({ preventScroll: !!modal.querySelector(".sk-error") });
}

document.addEventListener("keydown", (event) => {
  const modal = document.querySelector("[data-region=modal] .modal");
  // A confirm dialog takes its own keys.
  if (!modal || event.defaultPrevented || document.querySelector("dialog[open]")) return;
  if (event.key === "Escape") {
    event.preventDefault();
    post("close", {});
  } else if (event.key === "Tab") {
    // Round the modal's controls: past its last, back to its first (and the other way).
    const stops = Array.from(modal.querySelectorAll("button, input, select, textarea"))
      .filter((el) => !el.disabled && el.offsetParent !== null);
    if (!stops.length) return;
    const [first, last] = [stops[0], stops[stops.length - 1]];
    const inside = modal.contains(document.activeElement);
    if (event.shiftKey && (!inside || document.activeElement === first)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (!inside || document.activeElement === last)) {
      event.preventDefault();
      first.focus();
    }
  }
});

async function poll() {
  try {
    await refresh();
    reached(true);
  } catch (err) {
    if (!unreachable) reached(false);
  }
  setTimeout(poll, 500);
}

function surfaceOf(el) {
  const msg = el.closest(".msg");
  if (msg && !el.closest("[data-view-id]")) {
    return { kind: msg.classList.contains("ephemeral") ? "ephemeral" : "message",
             channel: body.dataset.channel, ts: msg.dataset.ts };
  }
  const view = el.closest("[data-view-id]");
  return { kind: "view", view_id: view ? view.dataset.viewId : "" };
}

// The value one element holds, as the driver takes it.
function valueOf(el) {
  const kind = el.dataset.kind;
  if (kind === "checkboxes") {
    return Array.from(el.querySelectorAll("input:checked")).map((i) => i.value);
  }
  if (kind === "radio_buttons") {
    const checked = el.querySelector("input:checked");
    return checked ? checked.value : null;
  }
  if (el.multiple) return Array.from(el.selectedOptions).map((o) => o.value);
  return el.value === "" ? null : el.value;
}

// Finds again the control last acted on (a button that may open a modal), once redrawn.
let opener = null;

function remember(el) {
  if (el.closest("[data-region=modal]")) return;
  const region = el.closest("[data-region]");
  const msg = el.closest(".msg");
  const same = (other) => other.dataset.actionId === el.dataset.actionId
    && other.dataset.blockId === el.dataset.blockId
    && (other.dataset.value || "") === (el.dataset.value || "")
    && (!msg || (other.closest(".msg") || {}).dataset?.ts === msg.dataset.ts);
  opener = () => {
    if (el.isConnected) return el;
    if (!region) return null;
    const found = document.querySelector(`[data-region="${region.dataset.region}"]`);
    return Array.from(found.querySelectorAll("[data-live]")).find(same) || null;
  };
}

// What was typed and chosen in the open modal, kept by this tab: the app hears of it only on
// Submit, and the modal stays open across a reload, so a reload must not lose it. Kept by
// sandbox too: a restarted one numbers its views afresh, and another form with the same id
// was filled in with what was typed into the old one.
function draftKey(form) {
  return "signoff-draft:" + body.dataset.instance + ":" + user() + ":" + form.dataset.viewId;
}

function fields(form) { return form.querySelectorAll("[data-field] [data-kind]"); }

function saveDraft(form) {
  const values = {};
  fields(form).forEach((el) => { values[el.dataset.blockId] = valueOf(el); });
  sessionStorage.setItem(draftKey(form), JSON.stringify(values));
}

function restoreDraft(form) {
  const saved = JSON.parse(sessionStorage.getItem(draftKey(form)) || "null");
  if (!saved) return;
  fields(form).forEach((el) => {
    if (!(el.dataset.blockId in saved)) return;
    const value = saved[el.dataset.blockId];
    const many = [].concat(value === null ? [] : value);
    if (el.dataset.kind === "checkboxes" || el.dataset.kind === "radio_buttons") {
      el.querySelectorAll("input").forEach((i) => { i.checked = many.includes(i.value); });
    } else if (el.multiple) {
      Array.from(el.options).forEach((o) => { o.selected = many.includes(o.value); });
    } else {
      el.value = value === null ? "" : value;
    }
  });
}

["input", "change"].forEach((type) => document.addEventListener(type, (event) => {
  const form = event.target.closest("form.modal");
  if (form && form.isConnected) saveDraft(form);  // not one just taken off the page
}));

// Clicks on their way to the app, by what was clicked. Slack's buttons wait for the app's
// answer: a double click on a decision answered twice, the second told "already answered".
const acting = new Set();

function act(el, value) {
  remember(el);
  const surface = surfaceOf(el);
  const what = JSON.stringify([surface, el.dataset.actionId, el.dataset.blockId, value]);
  if (acting.has(what)) return Promise.resolve({ ok: false, pending: true });
  acting.add(what);
  return post("act", { surface: surface, action_id: el.dataset.actionId,
                       block_id: el.dataset.blockId, value: value })
    .finally(() => acting.delete(what));
}

document.addEventListener("click", (event) => {
  const pill = event.target.closest(".new-below");
  if (pill) {
    const list = pill.parentElement;
    unseen[pill.dataset.pane] = 0;
    pill.remove();
    list.scrollTop = list.scrollHeight;
    return;
  }
  const button = event.target.closest("button[data-live]");
  if (button) {
    event.preventDefault();
    if (button.dataset.url) window.open(button.dataset.url, "_blank", "noopener");
    if (button.hasAttribute("data-confirm")) {
      const dialog = button.nextElementSibling;
      dialog.returnValue = "";
      dialog.onclose = () => { if (dialog.returnValue === "confirm") act(button, button.dataset.value || null); };
      dialog.showModal();
    } else {
      act(button, button.dataset.value || null);
    }
    return;
  }
  if (event.target.closest("[data-close-modal]")) {
    event.preventDefault();
    post("close", {});
    return;
  }
  const home = event.target.closest("[data-open-home]");
  if (home) {
    event.preventDefault();
    post("home", {}).then(() => { window.location = home.getAttribute("href"); });
  }
});

// What the sandbox said about the command sent is stale once it is being corrected, and it
// covers the list of flows under the box: it goes with the first key.
document.addEventListener("input", (event) => {
  if (event.target.id === "composer-text" && !unreachable) toast("");
});

document.addEventListener("change", (event) => {
  const who = event.target.closest("#who");
  if (who) { window.location = who.value; return; }
  const el = event.target.closest("[data-live]:not(button)");
  if (el) act(el, valueOf(el));
});

// The view whose submission is on its way, if any.
let submitting = null;

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form.method === "dialog") return;  // a confirm dialog closes itself
  event.preventDefault();
  if (form.id === "composer") {
    const input = document.getElementById("composer-text");
    const text = input.value;
    if (!text.trim()) return;  // as in Slack, Enter in an empty box sends nothing
    remember(input);  // a command may open a form; closing it comes back here
    // Emptied as it is sent, as Slack's box is: a second Enter before the app answered sent
    // the command again (a second run). What the sandbox refuses comes back, to be corrected.
    input.value = "";
    post("command", { channel: body.dataset.channel, text: text }).then((answer) => {
      if (answer.ok === false && !input.value) input.value = text;
    });
    return;
  }
  if (form.classList.contains("modal")) {
    // Once, as Slack's Submit: a second click (or Enter) while the first is on its way sent
    // the answer again, and that one's outcome ("already answered by you") replaced the first's.
    if (submitting === form.dataset.viewId) return;
    submitting = form.dataset.viewId;
    const values = {};
    fields(form).forEach((el) => { values[el.dataset.blockId] = valueOf(el); });
    post("submit", { view_id: form.dataset.viewId, values: values }).finally(() => { submitting = null; });
  }
});

const list = document.querySelector(".messages");
if (list) list.scrollTop = list.scrollHeight;
const reloaded = document.querySelector("[data-region=modal] form.modal");
if (reloaded) restoreDraft(reloaded);
holdKeyboard();
setTimeout(poll, 500);
