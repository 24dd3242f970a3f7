// The netkit chat browser client: the chat protocol (PROTOCOL.md) over a
// WebSocket to the server that served this page, one JSON frame per text
// message. Everything received is shown with textContent, never as HTML.
// A browser cannot receive UDP, so it logs in without a UDP port and its
// direct messages go through the server (`relay`), signed end to end with
// this session's Ed25519 key (WebCrypto) and checked as the protocol says.
"use strict";

const LOBBY = "#lobby";
const VERSION = 2;
const DOMAIN = "netkit-chat direct v1\0";
// Sequence numbers a receiver remembers below the newest, per sender key.
const REPLAY_WINDOW = 64n;

const $ = (id) => document.getElementById(id);
const key = (room) => (room || LOBBY).toLowerCase();
const utf8 = new TextEncoder();

let socket = null;
let me = null;
let admin = false;
let session = null;
let pendingLogin = null;
let active = key(LOBBY);
// Joined rooms and direct conversations ("@name") by key:
// {name, direct, topic, operators, members: Set, oldest}.
const rooms = new Map();
// The default room's sessions: {name, addr, key}, several per account
// when the server allows it.
let users = [];
// Lists arriving in pages ("more": true): collected until the last one.
let usersPage = [];
const membersPages = new Map();
let roomsPage = [];
// Message ids already shown, per room, so history and live never repeat.
const seen = new Set();
// Direct messages sent by this session, and the replay window per sender key.
let seq = 0n;
const windows = new Map();

function status(text) {
  $("status").textContent = text;
}

function send(frame) {
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify(frame, (_, value) => (typeof value === "bigint" ? Number(value) : value)));
  }
}

function toBase64(bytes) {
  let text = "";
  for (const byte of new Uint8Array(bytes)) {
    text += String.fromCharCode(byte);
  }
  return btoa(text);
}

function fromBase64(text) {
  const raw = atob(text);
  return Uint8Array.from(raw, (c) => c.charCodeAt(0));
}

// A fresh Ed25519 key for this session, as the protocol asks of clients.
async function sessionKey() {
  if (!window.crypto || !crypto.subtle) {
    throw new Error("this page needs a secure context: open it on localhost or over https");
  }
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  const raw = new Uint8Array(await crypto.subtle.exportKey("raw", pair.publicKey));
  return { pair, raw, public: toBase64(raw) };
}

// The bytes a direct message's signature covers (PROTOCOL.md).
function signedBytes(from, to, toKey, number, text) {
  const parts = [utf8.encode(DOMAIN)];
  for (const name of [from, to]) {
    const bytes = utf8.encode(name).slice(0, 255);
    parts.push(Uint8Array.of(bytes.length), bytes);
  }
  const sequence = new Uint8Array(8);
  new DataView(sequence.buffer).setBigUint64(0, BigInt(number));
  parts.push(toKey, sequence, utf8.encode(text));
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

// True the first time a sender key's sequence number is seen, as the
// anti-replay window of the protocol (and of IPsec) decides.
function fresh(senderKey, number) {
  if (number <= 0n) {
    return false;
  }
  const window = windows.get(senderKey) || { newest: 0n, seen: new Set() };
  windows.set(senderKey, window);
  if (number > window.newest) {
    window.newest = number;
  } else if (window.newest - number >= REPLAY_WINDOW || window.seen.has(number)) {
    return false;
  }
  window.seen.add(number);
  for (const old of window.seen) {
    if (window.newest - old >= REPLAY_WINDOW) {
      window.seen.delete(old);
    }
  }
  return true;
}

function sessionsOf(name) {
  return users.filter((user) => user.name.toLowerCase() === name.toLowerCase());
}

async function sendDirect(to, text) {
  const targets = sessionsOf(to);
  if (targets.length === 0) {
    notice("@" + to, to + " is not online");
    return;
  }
  for (const target of targets) {
    seq += 1n;
    const number = seq;
    const bytes = signedBytes(me, target.name, fromBase64(target.key), number, text);
    const sig = await crypto.subtle.sign({ name: "Ed25519" }, session.pair.privateKey, bytes);
    send({ type: "relay", to: target.name, key: target.key, seq: number, text, sig: toBase64(sig) });
  }
}

// Shows a relayed direct message only if its sender's current key signed it.
async function receiveDirect(frame) {
  if (!me || frame.to.toLowerCase() !== me.toLowerCase() || !Number.isSafeInteger(frame.seq)) {
    return;
  }
  let sig;
  try {
    sig = fromBase64(frame.sig);
  } catch (err) {
    return;
  }
  const bytes = signedBytes(frame.from, frame.to, session.raw, frame.seq, frame.text);
  for (const sender of sessionsOf(frame.from)) {
    const senderKey = await crypto.subtle.importKey("raw", fromBase64(sender.key), { name: "Ed25519" }, false, [
      "verify",
    ]);
    if (await crypto.subtle.verify({ name: "Ed25519" }, senderKey, sig, bytes)) {
      if (fresh(sender.key, BigInt(frame.seq))) {
        conversation(frame.from);
        message({ from: frame.from, text: frame.text, time: Date.now(), room: "@" + frame.from, direct: true });
      }
      return;
    }
  }
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  socket = new WebSocket(scheme + location.host + "/chat");
  status("connecting…");
  socket.onmessage = (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch (err) {
      status("the server sent something that is not JSON");
      return;
    }
    handle(frame);
  };
  socket.onclose = () => {
    socket = null;
    me = null;
    $("chat").hidden = true;
    $("login-form").hidden = false;
    if (!$("status").dataset.bye) {
      status("disconnected: log in again to reconnect");
    }
  };
}

async function logIn(register) {
  const name = $("name").value.trim();
  const password = $("password").value;
  try {
    session = await sessionKey();
  } catch (err) {
    status(err.message);
    return;
  }
  seq = 0n;
  windows.clear();
  // No udp_port: a browser receives direct messages relayed.
  pendingLogin = { type: register ? "register" : "login", version: VERSION, name, password, key: session.public };
  delete $("status").dataset.bye;
  if (socket && socket.readyState === WebSocket.OPEN) {
    send(pendingLogin);
    pendingLogin = null;
  } else if (!socket) {
    connect();
  }
}

function handle(frame) {
  switch (frame.type) {
    case "hello":
      status("connected to " + frame.server);
      $("login-form").hidden = false;
      if (pendingLogin) {
        send(pendingLogin);
        pendingLogin = null;
      }
      break;
    case "welcome":
      me = frame.name;
      admin = frame.admin === true;
      status("logged in as " + me + (frame.registered ? " (new account)" : "") + (admin ? " (admin)" : ""));
      $("password").value = "";
      $("login-form").hidden = true;
      $("chat").hidden = false;
      rooms.clear();
      rooms.set(key(LOBBY), room(LOBBY));
      show(LOBBY);
      send({ type: "history", room: LOBBY });
      send({ type: "rooms" });
      break;
    case "users":
      usersPage.push(...frame.users);
      if (!frame.more) {
        users = usersPage;
        usersPage = [];
        people();
      }
      break;
    case "joined":
      if (frame.room) {
        withRoom(frame.room, (r) => r.members.add(frame.user.name));
      } else {
        users.push(frame.user);
      }
      notice(frame.room, frame.user.name + " joined");
      people();
      break;
    case "left":
      if (frame.room) {
        withRoom(frame.room, (r) => r.members.delete(frame.name));
      } else {
        users = users.filter((user) => !(user.name === frame.name && (!frame.key || user.key === frame.key)));
      }
      notice(frame.room, frame.name + " left (" + frame.reason + ")");
      people();
      break;
    case "message":
      message(frame);
      break;
    case "direct":
      receiveDirect(frame);
      break;
    case "history_end":
      if (frame.count === 0) {
        notice(frame.room, "no older messages");
      }
      break;
    case "room_joined": {
      const r = rooms.get(key(frame.room)) || room(frame.room);
      r.name = frame.room;
      r.topic = frame.topic;
      r.operators = frame.operators;
      rooms.set(key(frame.room), r);
      show(frame.room);
      break;
    }
    case "room_parted":
      rooms.delete(key(frame.room));
      notice(LOBBY, "you left " + frame.room);
      show(active === key(frame.room) ? LOBBY : rooms.get(active).name);
      break;
    case "members": {
      const pages = membersPages.get(key(frame.room)) || [];
      pages.push(...frame.members);
      if (frame.more) {
        membersPages.set(key(frame.room), pages);
      } else {
        membersPages.delete(key(frame.room));
        withRoom(frame.room, (r) => {
          r.members = new Set(pages);
        });
        people();
      }
      break;
    }
    case "rooms":
      roomsPage.push(...frame.rooms);
      if (!frame.more) {
        roomList(roomsPage);
        roomsPage = [];
      }
      break;
    case "topic":
      withRoom(frame.room, (r) => {
        r.topic = frame.topic;
      });
      notice(frame.room, frame.by + " set the topic: " + frame.topic);
      show(rooms.get(active).name);
      break;
    case "moderation":
      moderation(frame);
      break;
    case "ping":
      send(frame.id === undefined ? { type: "pong" } : { type: "pong", id: frame.id });
      break;
    case "status":
      notice(LOBBY, frame.text);
      break;
    case "error":
      status("error: " + frame.text + " (" + frame.code + ")");
      if (me) {
        notice(rooms.has(active) ? rooms.get(active).name : LOBBY, "error: " + frame.text);
      }
      break;
    case "bye":
      status("closed by the server: " + frame.text + " (" + frame.code + ")");
      $("status").dataset.bye = frame.code;
      break;
    default:
      // Frames from a later version are ignored, as the protocol asks.
      break;
  }
}

// Moderation in the words the terminal client uses.
function moderation(frame) {
  const reason = frame.reason ? ": " + frame.reason : "";
  const phrase = (by, user, where) =>
    ({
      kick: `${by} kicked ${user} from ${where}`,
      ban: `${by} banned ${user} from ${where}`,
      unban: `${by} lifted the ban on ${user} in ${where}`,
      mute: `${by} muted ${user} in ${where}`,
      unmute: `${by} unmuted ${user} in ${where}`,
      op: `${by} made ${user} an operator of ${where}`,
      deop: `${by} removed ${user} as an operator of ${where}`,
      disable: `${by} disabled the account ${user}`,
      enable: `${by} enabled the account ${user}`,
      delete: `${by} deleted the account ${user}`,
    })[frame.action] || `${by}: ${frame.action} ${user} ${where}`;
  withRoom(frame.room, (r) => {
    if (frame.action === "op") {
      r.operators = [...r.operators, frame.user];
    } else if (frame.action === "deop") {
      r.operators = r.operators.filter((op) => op.toLowerCase() !== frame.user.toLowerCase());
    }
  });
  const mine = frame.user.toLowerCase() === me.toLowerCase();
  if (frame.room && mine && (frame.action === "kick" || frame.action === "ban")) {
    // The room goes away for us next (room_parted): say it where we land.
    notice(LOBBY, phrase(frame.by, "you", frame.room) + reason);
  }
  notice(frame.room || LOBBY, phrase(frame.by, frame.user, frame.room || "") + reason);
  if (rooms.has(active)) {
    show(rooms.get(active).name);
  }
}

function room(name) {
  return { name, direct: name.startsWith("@"), topic: "", operators: [], members: new Set(), oldest: null };
}

function conversation(name) {
  if (!rooms.has(key("@" + name))) {
    rooms.set(key("@" + name), room("@" + name));
    roomTabs();
  }
}

function withRoom(name, change) {
  const r = name && rooms.get(key(name));
  if (r) {
    change(r);
  }
}

function isOperator(r) {
  return admin || r.operators.some((op) => op.toLowerCase() === (me || "").toLowerCase());
}

function time(ms) {
  return new Date(ms).toLocaleTimeString();
}

function entry(roomName, kind) {
  const li = document.createElement("li");
  li.className = kind;
  li.dataset.room = key(roomName);
  li.hidden = li.dataset.room !== active;
  return li;
}

function place(li, id) {
  const log = $("log");
  if (id !== undefined) {
    // Keep each room in id order: history pages arrive after newer messages.
    for (const other of log.children) {
      if (other.dataset.room === li.dataset.room && other.dataset.id && Number(other.dataset.id) > id) {
        log.insertBefore(li, other);
        return;
      }
    }
  }
  log.appendChild(li);
  if (!li.hidden) {
    log.scrollTop = log.scrollHeight;
  }
}

function message(frame) {
  const roomKey = key(frame.room);
  if (frame.id !== undefined) {
    const id = roomKey + " " + frame.id;
    if (seen.has(id)) {
      return;
    }
    seen.add(id);
    withRoom(roomKey, (r) => {
      if (r.oldest === null || frame.id < r.oldest) {
        r.oldest = frame.id;
      }
    });
  }
  let kind = "message";
  if (frame.history) {
    kind += " history";
  }
  if (frame.direct) {
    kind += " direct";
  }
  const li = entry(frame.room, kind);
  if (frame.id !== undefined) {
    li.dataset.id = frame.id;
  }
  const when = document.createElement("time");
  when.textContent = time(frame.time);
  const from = document.createElement("b");
  from.className = "from";
  from.textContent = frame.from;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = frame.text;
  li.append(when, " ", from, ": ", text);
  place(li, frame.id);
}

function notice(roomName, text) {
  const li = entry(roomName, "notice");
  li.textContent = text;
  place(li);
}

function show(name) {
  active = key(name);
  const r = rooms.get(active);
  $("room-name").textContent = r ? r.name : name;
  $("topic").textContent = r && r.topic ? "— " + r.topic : "";
  const named = active !== key(LOBBY) && !(r && r.direct);
  $("part").hidden = !named;
  $("older").hidden = Boolean(r && r.direct);
  $("topic-form").hidden = !(named && r && isOperator(r));
  for (const li of $("log").children) {
    li.hidden = li.dataset.room !== active;
  }
  $("log").scrollTop = $("log").scrollHeight;
  roomTabs();
  people();
}

function roomTabs() {
  const list = $("rooms");
  list.replaceChildren();
  for (const [roomKey, r] of rooms) {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = r.name;
    button.dataset.room = roomKey;
    if (roomKey === active) {
      button.setAttribute("aria-current", "true");
    }
    button.onclick = () => show(r.name);
    li.appendChild(button);
    list.appendChild(li);
  }
}

function roomList(list) {
  const ul = $("room-list");
  ul.replaceChildren();
  for (const info of list) {
    const li = document.createElement("li");
    li.dataset.room = key(info.name);
    li.textContent = info.name + " (" + info.members + ")" + (info.topic ? " — " + info.topic : "");
    ul.appendChild(li);
  }
}

function action(label, onclick, data) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  button.className = label;
  Object.assign(button.dataset, data);
  button.onclick = onclick;
  return button;
}

function people() {
  const ul = $("users");
  ul.replaceChildren();
  const r = rooms.get(active);
  let names;
  if (active === key(LOBBY)) {
    $("people-title").textContent = "Online";
    names = [...new Set(users.map((user) => user.name))];
  } else if (r && r.direct) {
    $("people-title").textContent = "Direct messages";
    names = [r.name.slice(1)];
  } else {
    $("people-title").textContent = "In this room";
    names = r ? [...r.members] : [];
  }
  names.sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
  for (const name of names) {
    const li = document.createElement("li");
    li.dataset.name = name.toLowerCase();
    const label = document.createElement("span");
    label.textContent = name;
    li.appendChild(label);
    const other = name.toLowerCase() !== (me || "").toLowerCase();
    if (other && active === key(LOBBY)) {
      li.append(
        " ",
        action(
          "message",
          () => {
            conversation(name);
            show("@" + name);
          },
          { user: name }
        )
      );
    }
    if (other && r && !r.direct && active !== key(LOBBY) && isOperator(r)) {
      li.append(" ", action("kick", () => send({ type: "kick", room: r.name, user: name }), { user: name }));
    }
    ul.appendChild(li);
  }
}

function say(text) {
  const r = rooms.get(active);
  if (r.direct) {
    const to = r.name.slice(1);
    sendDirect(to, text);
    message({ from: me, text, time: Date.now(), room: r.name, direct: true });
    return;
  }
  const frame = { type: "say", text };
  if (active !== key(LOBBY)) {
    frame.room = r.name;
  }
  send(frame);
  message({ from: me, text, time: Date.now(), room: active === key(LOBBY) ? undefined : r.name });
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    logIn(event.submitter && event.submitter.value === "register");
  });
  $("say-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("say").value;
    if (text) {
      say(text);
      $("say").value = "";
    }
  });
  $("join-form").addEventListener("submit", (event) => {
    event.preventDefault();
    let name = $("join-room").value.trim();
    if (!name.startsWith("#")) {
      name = "#" + name;
    }
    send({ type: "join", room: name });
    $("join-room").value = "";
  });
  $("part").addEventListener("click", () => {
    send({ type: "part", room: rooms.get(active).name });
  });
  $("topic-form").addEventListener("submit", (event) => {
    event.preventDefault();
    send({ type: "topic", room: rooms.get(active).name, topic: $("topic-text").value });
    $("topic-text").value = "";
  });
  $("older").addEventListener("click", () => {
    const r = rooms.get(active);
    const frame = { type: "history", room: r.name };
    if (r.oldest !== null) {
      frame.before = r.oldest;
    }
    send(frame);
  });
  $("refresh-rooms").addEventListener("click", () => send({ type: "rooms" }));
  $("logout").addEventListener("click", () => send({ type: "logout" }));
  connect();
});
