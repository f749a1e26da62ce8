// A chat room in React over seqsync: one store of the room (`client.store`,
// made in ../../common/chat.js), read by components through
// `useSyncExternalStore`, and a form that publishes.

import { StrictMode, useEffect, useState, useSyncExternalStore } from 'react';
import { createRoot } from 'react-dom/client';
import { Client } from 'seqsync';
import { chatRoom } from '../../common/chat.js';

const chat = chatRoom(Client);
const { room } = chat;

const useRoom = () => useSyncExternalStore(room.subscribe, room.getSnapshot);

function Messages() {
  const { messages } = useRoom();
  return (
    <ol id="messages">
      {messages.map((m) => (
        <li key={m.seq} data-seq={m.seq}>
          {m.data.text ?? `#${m.data.n}`}
        </li>
      ))}
    </ol>
  );
}

function Status() {
  const { log } = useRoom();
  // What was rendered goes to the test once React has committed it.
  useEffect(() => chat.rendered(log), [log]);
  return <output id="count">{log.length}</output>;
}

function Compose() {
  const [text, setText] = useState('');
  const send = (event) => {
    event.preventDefault();
    chat.send(text);
    setText('');
  };
  return (
    <form onSubmit={send}>
      <input id="text" value={text} onChange={(e) => setText(e.target.value)} />
      <button type="submit">Send</button>
    </form>
  );
}

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <Status />
    <Messages />
    <Compose />
  </StrictMode>,
);
window.__loaded = true;
