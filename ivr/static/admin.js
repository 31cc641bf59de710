// Admin pages: the flow editor's live validation and diff, and the call simulator.
(function () {
  "use strict";
  const csrf = () => document.querySelector("meta[name=csrf-token]").content;

  function editor() {
    const form = document.getElementById("flow-form");
    if (!form) return;
    const source = document.getElementById("source");
    const gutter = document.getElementById("gutter");
    const problems = document.getElementById("problems");
    const status = document.getElementById("validation-status");
    let bad = new Set(Array.from(problems.children, (li) => Number(li.dataset.line)));
    let timer = null;
    let asked = 0;

    function drawGutter() {
      const count = source.value.split("\n").length;
      const lines = [];
      for (let n = 1; n <= count; n++) {
        lines.push(bad.has(n) ? `<span class="err" data-line="${n}">${n}</span>` : String(n));
      }
      gutter.innerHTML = lines.join("\n");
      gutter.scrollTop = source.scrollTop;
    }

    function goTo(line, column) {
      const rows = source.value.split("\n");
      let offset = 0;
      for (let n = 1; n < line && n <= rows.length; n++) offset += rows[n - 1].length + 1;
      source.focus();
      source.setSelectionRange(offset + column - 1, offset + column - 1);
      const height = source.scrollHeight / Math.max(rows.length, 1);
      source.scrollTop = Math.max(0, (line - 5) * height);
    }

    function show(errors) {
      bad = new Set(errors.map((e) => e.line));
      problems.replaceChildren(...errors.map((e) => {
        const li = document.createElement("li");
        li.dataset.line = e.line;
        li.dataset.column = e.column;
        const where = document.createElement("a");
        where.href = "#source";
        where.textContent = `line ${e.line}, column ${e.column}`;
        li.append(where, `: ${e.message}`);
        return li;
      }));
      status.textContent = errors.length ? `${errors.length} problem(s)` : "Valid.";
      status.className = errors.length ? "bad" : "ok";
      drawGutter();
    }

    async function validate() {
      const mine = ++asked;
      const response = await fetch(form.dataset.validateUrl, {
        method: "POST", credentials: "same-origin",
        headers: {"Content-Type": "application/json", "X-CSRFToken": csrf()},
        body: JSON.stringify({source: source.value, filename: form.elements.filename.value}),
      });
      if (mine !== asked) return; // a newer check is on its way
      if (!response.ok) { status.textContent = `Cannot check now (HTTP ${response.status}).`; return; }
      show((await response.json()).errors);
    }

    source.addEventListener("input", () => {
      drawGutter();
      clearTimeout(timer);
      timer = setTimeout(validate, 400);
    });
    source.addEventListener("scroll", () => { gutter.scrollTop = source.scrollTop; });
    source.addEventListener("keydown", (event) => {
      if (event.key !== "Tab") return; // YAML wants spaces, not focus leaving the editor
      event.preventDefault();
      source.setRangeText("  ", source.selectionStart, source.selectionEnd, "end");
      source.dispatchEvent(new Event("input"));
    });
    problems.addEventListener("click", (event) => {
      const li = event.target.closest("li");
      if (!li) return;
      event.preventDefault();
      goTo(Number(li.dataset.line), Number(li.dataset.column));
    });
    document.getElementById("show-diff").addEventListener("click", async () => {
      const body = new FormData(form);
      const response = await fetch(form.dataset.diffUrl, {
        method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": csrf()}, body,
      });
      const diff = document.getElementById("diff");
      diff.hidden = false;
      diff.replaceChildren(...(await response.text()).split("\n").map((line) => {
        const span = document.createElement("span");
        span.className = line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : "";
        span.textContent = line + "\n";
        return span;
      }));
    });
    drawGutter();
  }

  function simulator() {
    const start = document.getElementById("sim-start");
    if (!start) return;
    const phone = document.getElementById("sim-phone");
    const log = document.getElementById("sim-log");
    const waiting = document.getElementById("sim-waiting");
    const error = document.getElementById("sim-error");
    const pressed = document.getElementById("sim-pressed");
    const silence = document.getElementById("sim-silence");
    let token = null;

    function entry(item) {
      const li = document.createElement("li");
      li.className = "sim-step";
      if (item.request) {
        const head = document.createElement("div");
        head.className = "request";
        head.textContent = item.request;
        li.append(head);
      }
      for (const said of item.heard) {
        const p = document.createElement("p");
        p.className = "heard";
        p.textContent = `[${said.language}] ${said.text}`;
        li.append(p);
      }
      for (const note of item.notes) {
        const p = document.createElement("p");
        p.className = "note";
        p.textContent = note;
        li.append(p);
      }
      if (item.twiml) {
        const details = document.createElement("details");
        const summary = document.createElement("summary");
        summary.textContent = "TwiML";
        const pre = document.createElement("pre");
        pre.className = "twiml";
        pre.textContent = item.twiml;
        details.append(summary, pre);
        li.append(details);
      }
      return li;
    }

    async function send(url, body) {
      error.hidden = true;
      body.append("csrf_token", csrf());
      const response = await fetch(url, {method: "POST", credentials: "same-origin",
                                         headers: {"X-CSRFToken": csrf()}, body});
      const step = await response.json().catch(() => ({error: `HTTP ${response.status}`}));
      if (!response.ok) {
        error.textContent = step.error || `HTTP ${response.status}`;
        error.hidden = false;
        return;
      }
      log.append(...step.entries.map(entry));
      token = step.token;
      phone.hidden = step.over;
      phone.dataset.waiting = step.waiting || "";
      if (step.over) {
        const end = document.createElement("li");
        end.className = "sim-end";
        end.textContent = `Call over after ${step.duration} s.` +
          (step.failures.length ? ` Failures: ${step.failures.join("; ")}` : "");
        log.append(end);
      }
      const queue = step.prompt && step.prompt.queue;
      const place = queue ? `Waiting in queue ${queue.name}: position ${queue.position} of ` +
        `${queue.size}, ${queue.seconds} s, pass ${queue.passes}. ` : "";
      waiting.textContent = step.waiting === "wait" ? place + "Keep waiting or hang up."
        : step.waiting === "gather" ? place + (queue ? "Press keys, keep waiting or hang up."
          : "The line is listening: press keys or say something.")
        : step.waiting === "record" ? "Recording after the beep: leave a voicemail (WAV)." : "";
      silence.textContent = queue ? "Keep waiting" : "Stay silent";
      end_of_log();
    }

    function end_of_log() { log.lastElementChild?.scrollIntoView({block: "nearest"}); }

    function answer(kind, value) {
      const body = new FormData();
      body.append("token", token || "");
      body.append("kind", kind);
      body.append("value", value || "");
      return send(phone.dataset.inputUrl, body);
    }

    start.addEventListener("submit", (event) => {
      event.preventDefault();
      log.replaceChildren();
      send(start.action, new FormData(start));
    });
    phone.querySelectorAll("button.key").forEach((key) => key.addEventListener("click", () => {
      pressed.value += key.dataset.key;
    }));
    document.getElementById("sim-keys").addEventListener("submit", (event) => {
      event.preventDefault();
      const keys = pressed.value;
      pressed.value = "";
      answer("keys", keys);
    });
    document.getElementById("sim-speech").addEventListener("submit", (event) => {
      event.preventDefault();
      const said = document.getElementById("sim-said");
      const words = said.value;
      said.value = "";
      answer("speech", words);
    });
    document.getElementById("sim-record").addEventListener("submit", (event) => {
      event.preventDefault();
      const body = new FormData(event.target);
      body.append("token", token || "");
      body.append("kind", "recording");
      send(phone.dataset.inputUrl, body);
    });
    silence.addEventListener("click", () => answer("silence"));
    document.getElementById("sim-hangup").addEventListener("click", () => answer("hangup"));
  }

  document.addEventListener("DOMContentLoaded", () => { editor(); simulator(); });
})();
