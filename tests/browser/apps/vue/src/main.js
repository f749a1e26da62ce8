// A chat room in Vue over seqsync: the same store of the room as the React
// page (`client.store`, made in ../../common/chat.js), read through a small
// composable, and a form that publishes. Render functions: no template
// compiler needed.

import { createApp, h, onMounted, onUnmounted, ref, shallowRef, watch } from 'vue';
import { Client } from 'seqsync';
import { chatRoom } from '../../common/chat.js';

const chat = chatRoom(Client);

/** A store's value as a Vue ref: subscribed while the component is mounted. */
function useStore(store) {
  const value = shallowRef(store.getSnapshot());
  let leave = () => {};
  onMounted(() => {
    leave = store.subscribe(() => (value.value = store.getSnapshot()));
    value.value = store.getSnapshot();
  });
  onUnmounted(() => leave());
  return value;
}

const Messages = {
  setup() {
    const room = useStore(chat.room);
    return () =>
      h('ol', { id: 'messages' }, room.value.messages.map((m) => h('li', { key: m.seq, 'data-seq': m.seq }, m.data.text ?? `#${m.data.n}`)));
  },
};

const Status = {
  setup() {
    const room = useStore(chat.room);
    // What was rendered goes to the test once Vue has updated the page.
    watch(() => room.value.log, (log) => chat.rendered(log), { flush: 'post', immediate: true });
    return () => h('output', { id: 'count' }, String(room.value.log.length));
  },
};

const Compose = {
  setup() {
    const text = ref('');
    const send = (event) => {
      event.preventDefault();
      chat.send(text.value);
      text.value = '';
    };
    return () =>
      h('form', { onSubmit: send }, [
        h('input', { id: 'text', value: text.value, onInput: (e) => (text.value = e.target.value) }),
        h('button', { type: 'submit' }, 'Send'),
      ]);
  },
};

createApp({ render: () => [h(Status), h(Messages), h(Compose)] }).mount('#root');
window.__loaded = true;
