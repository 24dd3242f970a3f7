// netkit inbox: live updates over Server-Sent Events. The pages work
// without this script; it only keeps the list current without reloading.
"use strict";

(function () {
  const table = document.getElementById("messages");
  if (!table || !window.EventSource) {
    return;
  }
  const body = table.tBodies[0];
  const counts = document.getElementById("counts");
  const live = table.dataset.live === "1";
  const pageSize = Number(table.dataset.pageSize) || 50;
  let total = Number(counts.dataset.total);
  let unread = Number(counts.dataset.unread);

  function showCounts() {
    counts.textContent = total + " messages, " + unread + " unread";
    counts.dataset.total = total;
    counts.dataset.unread = unread;
    const empty = document.getElementById("empty");
    if (empty) {
      empty.hidden = body.rows.length > 0;
    }
  }

  function mailbox(box) {
    const span = document.createElement("span");
    if (!box) {
      return span;
    }
    if (box.Name) {
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = box.Name;
      const address = document.createElement("span");
      address.className = "address";
      address.textContent = "<" + box.Address + ">";
      span.append(name, " ", address);
    } else {
      span.textContent = box.Address;
    }
    return span;
  }

  function size(bytes) {
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1048576) return (bytes / 1024).toFixed(1) + " KiB";
    return (bytes / 1048576).toFixed(1) + " MiB";
  }

  // The same row pages.rs writes, built from text nodes only.
  function row(message) {
    const tr = document.createElement("tr");
    tr.className = message.Read ? "read" : "unread";
    tr.dataset.id = message.ID;
    const from = document.createElement("td");
    from.append(mailbox(message.From));
    const to = document.createElement("td");
    (message.To || []).forEach(function (box, i) {
      if (i > 0) to.append(", ");
      to.append(mailbox(box));
    });
    const subject = document.createElement("td");
    const link = document.createElement("a");
    link.href = "/message/" + encodeURIComponent(message.ID);
    link.textContent = message.Subject || "(no subject)";
    subject.append(link);
    if (message.Attachments > 0) {
      const clip = document.createElement("span");
      clip.className = "attachment";
      clip.title = message.Attachments + " attachment(s)";
      clip.setAttribute("aria-label", clip.title);
      clip.textContent = "📎";
      subject.append(" ", clip);
    }
    const received = document.createElement("td");
    const time = document.createElement("time");
    time.dateTime = message.Created;
    time.textContent = message.Created.replace("T", " ").replace("Z", " UTC");
    received.append(time);
    const bytes = document.createElement("td");
    bytes.textContent = size(message.Size);
    tr.append(from, to, subject, received, bytes);
    return tr;
  }

  function find(id) {
    return Array.from(body.rows).find(function (tr) {
      return tr.dataset.id === id;
    });
  }

  // A search or a later page cannot place a new message itself: offer a reload.
  function notice() {
    if (document.getElementById("live")) return;
    const p = document.createElement("p");
    p.id = "live";
    p.setAttribute("role", "status");
    const link = document.createElement("a");
    link.href = location.href;
    link.textContent = "New messages have arrived: reload";
    p.append(link);
    table.before(p);
  }

  const events = new EventSource("/api/v1/events");
  // Tells people (and tests) that the list is live.
  events.addEventListener("open", function () {
    table.dataset.connected = "1";
  });
  events.addEventListener("error", function () {
    table.dataset.connected = "0";
  });
  events.addEventListener("new", function (event) {
    const message = JSON.parse(event.data);
    total += 1;
    if (!message.Read) unread += 1;
    if (live) {
      body.prepend(row(message));
      while (body.rows.length > pageSize) {
        body.deleteRow(-1);
      }
    } else {
      notice();
    }
    showCounts();
  });
  events.addEventListener("delete", function (event) {
    JSON.parse(event.data).IDs.forEach(function (id) {
      const tr = find(id);
      if (tr) {
        if (tr.className === "unread") unread -= 1;
        tr.remove();
      }
      total = Math.max(0, total - 1);
    });
    unread = Math.max(0, Math.min(unread, total));
    showCounts();
  });
  events.addEventListener("read", function (event) {
    const change = JSON.parse(event.data);
    change.IDs.forEach(function (id) {
      const tr = find(id);
      if (tr) tr.className = change.Read ? "read" : "unread";
    });
    unread = Math.max(0, unread + (change.Read ? -change.IDs.length : change.IDs.length));
    showCounts();
  });
  events.addEventListener("clear", function () {
    while (body.rows.length > 0) body.deleteRow(-1);
    total = 0;
    unread = 0;
    showCounts();
  });
  events.addEventListener("lagged", function () {
    location.reload();
  });
})();
