// The chat-web demo: one seqsync stream rendered as a chat, with the stream's
// repair counters and a switch that puts the connection through drops,
// duplicates and reordering (the reference server's fault injection).

import { Client } from './pkg/seqsync.js';

const params = new URLSearchParams(location.search);
const stream = `chat:${params.get('room') ?? 'lobby'}`;
const FAULTS = 'drop=0.1,dup=0.1,reorder=0.3,window=8';
const wsBase = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;

const list = document.getElementById('messages');
const badge = document.getElementById('connection');
const trouble = document.getElementById('trouble');
const form = document.getElementById('composer');
const nameInput = document.getElementById('name');
const textInput = document.getElementById('text');
document.getElementById('stream').textContent = stream;
nameInput.value = params.get('name') ?? `guest${Math.floor(Math.random() * 1000)}`;

let client = null;
let sub = null;
let lastSeq = 0;
let epoch;

function render(seq, data) {
  const li = document.createElement('li');
  li.dataset.seq = String(seq);
  const s = document.createElement('span');
  s.className = 'seq';
  s.textContent = `#${seq}`;
  const from = document.createElement('span');
  from.className = 'from';
  from.textContent = String(data?.from ?? '?');
  const text = document.createElement('span');
  text.className = 'text';
  text.textContent = String(data?.text ?? JSON.stringify(data));
  li.append(s, from, text);
  list.append(li);
  list.scrollTop = list.scrollHeight;
  lastSeq = seq;
}

function connect() {
  const url = trouble.checked ? `${wsBase}?faults=seed=${Date.now() % 100000},${FAULTS}` : wsBase;
  client = new Client(url, {
    core: { gapTimeoutMs: 60 },
    heartbeatTimeoutMs: 4000,
    onConnection: (state) => {
      badge.textContent = trouble.checked && state.state === 'connected' ? 'connected (faults on)' : state.state;
      badge.className = `badge ${state.state}`;
    },
  });
  // After the first load, resume after the last message shown: no snapshot,
  // just what came since.
  const start = epoch === undefined ? {} : { since: lastSeq, epoch };
  sub = client.subscribe(stream, {
    ...start,
    onSnapshot: (state, seq, e) => {
      epoch = e;
      list.replaceChildren();
      for (const m of state?.messages ?? []) render(m.seq, m.data);
      lastSeq = seq;
    },
    onMessage: (data, seq) => render(seq, data),
    onReset: () => {
      list.replaceChildren();
    },
  });
}

async function reconnect() {
  const old = client;
  const stats = sub.stats();
  if (stats?.epoch !== undefined) epoch = stats.epoch;
  client = null;
  await old.close();
  connect();
}

function showStats() {
  const s = sub?.stats();
  if (s === undefined) return;
  const c = client?.stats();
  for (const dd of document.querySelectorAll('[data-stat]')) {
    const key = dd.dataset.stat;
    const value = key === 'connects' ? c?.connects : s[key];
    dd.textContent = String(value ?? '-');
  }
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = textInput.value.trim();
  if (text === '' || client === null) return;
  textInput.value = '';
  try {
    await client.publish(stream, { from: nameInput.value, text });
  } catch (e) {
    console.error('publish failed', e);
  }
});

trouble.addEventListener('change', () => {
  reconnect();
});

connect();
setInterval(showStats, 250);
