// auditlog's page script: progressive additions to pages that work without
// it. Local times on hover, short filter URLs, older pages appended in
// place, an entry opened in a dialog, and an export with visible progress.
// Nothing here builds HTML from strings: fragments come from the server,
// already escaped, and are parsed inert with DOMParser.
"use strict";

(function () {
  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (!isNaN(d)) {
        t.title = d.toLocaleString(undefined, { dateStyle: "full", timeStyle: "long" }) + " (your local time)";
      }
    });
  }

  function parse(text) {
    return new DOMParser().parseFromString(text, "text/html");
  }

  async function fetchText(url) {
    var resp = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (resp.redirected && resp.url.indexOf("/login") !== -1) {
      window.location.href = resp.url;
      throw new Error("signed out");
    }
    if (!resp.ok) throw new Error("the server answered " + resp.status);
    return resp.text();
  }

  function withParam(href, key, value) {
    var u = new URL(href, window.location.href);
    u.searchParams.set(key, value);
    return u.toString();
  }

  // Filters: show the custom dates only when asked for, and leave empty
  // fields out of the URL so a shared link says only what matters.
  var form = document.getElementById("filters");
  if (form) {
    var range = document.getElementById("range");
    var dates = form.querySelector(".custom-dates");
    var syncDates = function () {
      if (range && dates) dates.hidden = !(range.value === "" || range.value === "custom");
    };
    if (range) range.addEventListener("change", syncDates);
    syncDates();
    form.addEventListener("submit", function () {
      form.querySelectorAll("input, select").forEach(function (el) {
        if (!el.value || (dates && dates.hidden && dates.contains(el))) el.disabled = true;
      });
    });
    window.addEventListener("pageshow", function () {
      form.querySelectorAll("[disabled]").forEach(function (el) { el.disabled = false; });
    });
  }

  // One entry in a dialog; the link still works on its own (new tab, no
  // script).
  var dialog = document.getElementById("entry-dialog");
  var body = document.getElementById("entry-body");
  var opener = null;

  async function openEntry(link) {
    if (!dialog || !body) return false;
    opener = link;
    body.replaceChildren(document.createTextNode("Loading…"));
    dialog.showModal();
    try {
      var doc = parse(await fetchText(withParam(link.href, "fragment", "1")));
      var view = doc.querySelector(".entry-view");
      body.replaceChildren(document.adoptNode(view));
      localTimes(body);
      var title = document.getElementById("entry-title");
      if (title) { title.tabIndex = -1; title.focus(); }
    } catch (e) {
      body.replaceChildren(document.createTextNode("The entry could not be loaded: " + e.message + ". "));
      var a = document.createElement("a");
      a.href = link.href;
      a.textContent = "Open it on its own page";
      body.appendChild(a);
    }
    return true;
  }

  if (dialog) {
    dialog.addEventListener("close", function () {
      if (opener) opener.focus();
    });
    dialog.addEventListener("click", function (ev) {
      if (ev.target === dialog) dialog.close();
    });
  }

  document.addEventListener("click", function (ev) {
    if (ev.defaultPrevented || ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
    var row = ev.target.closest("tr.entry");
    if (row && dialog) {
      var link = row.querySelector("td.when a");
      if (link && !ev.target.closest("a:not(td.when a)")) {
        ev.preventDefault();
        openEntry(link);
        return;
      }
    }
    var more = ev.target.closest("#more");
    if (more) {
      ev.preventDefault();
      loadMore(more);
      return;
    }
    var exp = ev.target.closest("a#export");
    if (exp && window.ReadableStream) {
      ev.preventDefault();
      runExport(exp);
    }
  });

  // Older entries appended below, keeping the ones already read.
  async function loadMore(link) {
    if (link.getAttribute("aria-disabled") === "true") return;
    link.setAttribute("aria-disabled", "true");
    var label = link.textContent;
    link.textContent = "Loading…";
    try {
      var doc = parse(await fetchText(withParam(link.href, "fragment", "rows")));
      var rows = document.getElementById("rows");
      var fresh = Array.from(doc.querySelectorAll("#rows > tr"));
      fresh.forEach(function (tr) { rows.appendChild(document.adoptNode(tr)); });
      localTimes(rows);
      document.getElementById("pager").replaceWith(document.adoptNode(doc.getElementById("pager")));
      if (fresh.length) {
        var first = fresh[0].querySelector("a");
        if (first) first.focus();
      }
    } catch (e) {
      link.textContent = label;
      link.removeAttribute("aria-disabled");
      var status = document.getElementById("export-status");
      if (status) status.textContent = "Older entries could not be loaded: " + e.message;
    }
  }

  // The export streams; rows are counted as they arrive (a newline ends a
  // record unless it is inside quotes), then the file is handed to the
  // browser's downloads.
  async function runExport(link) {
    var status = document.getElementById("export-status");
    if (link.getAttribute("aria-disabled") === "true") return;
    link.setAttribute("aria-disabled", "true");
    var say = function (text) { if (status) status.textContent = text; };
    say("Exporting…");
    try {
      var resp = await fetch(link.href, { credentials: "same-origin" });
      if (!resp.ok) {
        var message = "the server answered " + resp.status;
        try { message = (await resp.json()).error.message; } catch (e) { /* not JSON */ }
        throw new Error(message);
      }
      var reader = resp.body.getReader();
      var chunks = [];
      var records = 0, bytes = 0, quoted = false, lastShown = 0;
      for (;;) {
        var step = await reader.read();
        if (step.done) break;
        var chunk = step.value;
        chunks.push(chunk);
        bytes += chunk.length;
        for (var i = 0; i < chunk.length; i++) {
          var c = chunk[i];
          if (c === 34) quoted = !quoted;
          else if (c === 10 && !quoted) records++;
        }
        var now = Date.now();
        if (now - lastShown > 150) {
          say("Exporting… " + Math.max(records - 1, 0).toLocaleString() + " rows");
          lastShown = now;
        }
      }
      var name = "audit.csv";
      var cd = resp.headers.get("Content-Disposition") || "";
      var m = /filename="?([^";]+)"?/.exec(cd);
      if (m) name = m[1];
      var url = URL.createObjectURL(new Blob(chunks, { type: "text/csv" }));
      var a = document.createElement("a");
      a.href = url;
      a.download = name;
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
      var rows = Math.max(records - 1, 0);
      say("Exported " + rows.toLocaleString() + " rows (" + (bytes / 1024).toFixed(0) + " KiB) to " + name);
    } catch (e) {
      say("Export failed: " + e.message);
    } finally {
      link.removeAttribute("aria-disabled");
    }
  }

  localTimes(document);

  // One-time secrets: a copy button where the browser lets us write to the
  // clipboard; the value stays selectable by hand everywhere else.
  if (navigator.clipboard) {
    document.querySelectorAll("button.copy[data-copy]").forEach(function (button) {
      button.hidden = false;
      button.addEventListener("click", async function () {
        var source = document.querySelector(button.getAttribute("data-copy"));
        if (!source) return;
        var text = source.value !== undefined ? source.value : source.href;
        try {
          await navigator.clipboard.writeText(text);
          button.textContent = "Copied";
        } catch (e) {
          button.textContent = "Copy failed: select and copy by hand";
        }
      });
    });
  }

  // The chart, counted after the page is shown: it replaces its link.
  var chartLink = document.getElementById("chart-link");
  if (chartLink) {
    fetchText(withParam(chartLink.href, "fragment", "1")).then(function (text) {
      var fresh = parse(text).getElementById("chart");
      var slot = document.getElementById("chart");
      if (fresh && slot) slot.replaceWith(document.adoptNode(fresh));
    }).catch(function () { /* the link stays */ });
  }
})();
