// The netkit chat browser client: the chat protocol (PROTOCOL.md) over a
// WebSocket to the server that served this page, one JSON frame per text
// message. Everything received is shown with textContent, never as HTML.
"use strict";

const LOBBY = "#lobby";
const VERSION = 2;

const $ = (id) => document.getElementById(id);
const key = (room) => (room || LOBBY).toLowerCase();

let socket = null;
let me = null;
let pendingLogin = null;
let active = key(LOBBY);
// Joined rooms by key: {name, topic, operators, members: Set, oldest}.
const rooms = new Map();
// The default room's users, by lower-case name.
let users = new Map();
// Lists arriving in pages ("more": true): collected until the last one.
let usersPage = [];
const membersPages = new Map();
let roomsPage = [];
// Message ids already shown, per room, so history and live never repeat.
const seen = new Set();

function status(text) {
  $("status").textContent = text;
}

function send(frame) {
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify(frame));
  }
}

function base64(bytes) {
  let text = "";
  for (const byte of new Uint8Array(bytes)) {
    text += String.fromCharCode(byte);
  }
  return btoa(text);
}

// A fresh Ed25519 key for this session, as the protocol asks of clients.
async function sessionKey() {
  if (!window.crypto || !crypto.subtle) {
    throw new Error("this page needs a secure context: open it on localhost or over https");
  }
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"]);
  return { pair, public: base64(await crypto.subtle.exportKey("raw", pair.publicKey)) };
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
    if (me) {
      notice(active, "disconnected");
    }
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
  let session;
  try {
    session = await sessionKey();
  } catch (err) {
    status(err.message);
    return;
  }
  pendingLogin = {
    type: register ? "register" : "login",
    version: VERSION,
    name,
    password,
    key: session.public,
  };
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
      status("logged in as " + me + (frame.registered ? " (new account)" : ""));
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
        users = new Map(usersPage.map((user) => [user.name.toLowerCase(), user]));
        usersPage = [];
        people();
      }
      break;
    case "joined":
      if (frame.room) {
        withRoom(frame.room, (r) => r.members.add(frame.user.name));
      } else {
        users.set(frame.user.name.toLowerCase(), frame.user);
      }
      notice(frame.room, frame.user.name + " joined");
      people();
      break;
    case "left":
      if (frame.room) {
        withRoom(frame.room, (r) => r.members.delete(frame.name));
      } else {
        users.delete(frame.name.toLowerCase());
      }
      notice(frame.room, frame.name + " left (" + frame.reason + ")");
      people();
      break;
    case "message":
      message(frame);
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
      roomTabs();
      show(frame.room);
      break;
    }
    case "room_parted":
      rooms.delete(key(frame.room));
      roomTabs();
      notice(LOBBY, "you left " + frame.room);
      show(LOBBY);
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
    case "ping":
      send(frame.id === undefined ? { type: "pong" } : { type: "pong", id: frame.id });
      break;
    case "pong":
      break;
    case "error":
      status("error: " + frame.text + " (" + frame.code + ")");
      if (me) {
        notice(active, "error: " + frame.text);
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

function room(name) {
  return { name, topic: "", operators: [], members: new Set(), oldest: null };
}

function withRoom(name, change) {
  const r = rooms.get(key(name));
  if (r) {
    change(r);
  }
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
  const li = entry(frame.room, frame.history ? "message history" : "message");
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
  const named = active !== key(LOBBY);
  $("part").hidden = !named;
  $("topic-form").hidden = !(named && r && r.operators.some((op) => op.toLowerCase() === (me || "").toLowerCase()));
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

function people() {
  const ul = $("users");
  ul.replaceChildren();
  let names;
  if (active === key(LOBBY)) {
    $("people-title").textContent = "Online";
    names = [...users.values()].map((user) => user.name);
  } else {
    $("people-title").textContent = "In this room";
    const r = rooms.get(active);
    names = r ? [...r.members] : [];
  }
  names.sort((a, b) => a.toLowerCase().localeCompare(b.toLowerCase()));
  for (const name of names) {
    const li = document.createElement("li");
    li.textContent = name;
    li.dataset.name = name.toLowerCase();
    ul.appendChild(li);
  }
}

function say(text) {
  const r = rooms.get(active);
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
