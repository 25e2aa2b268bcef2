/**
 * The sample's chat page, served at `/`, and its script, served at `/chat.js` as an ES module. The script uses the
 * client SDK (`nestjs-websockets/client`, served under `/sdk/`): it connects to /ws on the same host, sends the
 * page's `?token=` as `auth` (in Sec-WebSocket-Protocol, out of the URL and of logs), shows the connection state
 * (open, "reconnecting in N s", closed with the refusal's code and reason), and joins its room again after a
 * reconnection, before the messages typed while offline are sent.
 */
export const CHAT_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>nestjs-websockets chat</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
  #log { list-style: none; padding: 0; border: 1px solid #ccc; min-height: 12rem; }
  #log li { padding: .2rem .5rem; border-bottom: 1px solid #eee; }
  form { display: flex; gap: .5rem; margin: .5rem 0; }
  input[type=text] { flex: 1; }
  #status[data-state=open] { color: #080; }
  #status[data-state=reconnecting] { color: #a60; }
  #status[data-state=closed] { color: #b00; }
</style>
<script type="module" src="/chat.js"></script>
</head>
<body>
<h1>Chat</h1>
<p>Connection: <span id="status" data-state="connecting">connecting</span> · Room: <span id="joined">none</span></p>
<form id="join-form"><input id="room" type="text" value="lobby" aria-label="room"><button id="join">Join</button></form>
<form id="chat-form"><input id="text" type="text" placeholder="Message" aria-label="message"><button id="send">Send</button></form>
<ul id="log"></ul>
</body>
</html>
`;

export const CHAT_SCRIPT = `import { WebSocketsClient } from './sdk/client/index.js';

const $ = (id) => document.getElementById(id);
const status = $('status');
const show = (line) => {
  const li = document.createElement('li');
  li.textContent = line;
  $('log').append(li);
};
const setStatus = (state, text) => {
  status.dataset.state = state;
  status.textContent = text;
};

// The token goes in Sec-WebSocket-Protocol (the server hands it to its guard as Authorization: Bearer).
const token = new URLSearchParams(location.search).get('token');
// A resumable session: after a short drop, what was missed arrives once and in order, and the room is kept.
const client = new WebSocketsClient('/ws', { auth: token, session: true });
let room = null;
let countdown;

async function join(name) {
  try {
    const reply = await client.request('join', { room: name });
    room = reply.room;
    $('joined').textContent = room;
  } catch (error) {
    show('error: ' + error.message);
  }
}

client.on('open', ({ resumed }) => {
  clearInterval(countdown);
  setStatus('open', resumed ? 'open (resumed)' : 'open');
  if (resumed && room !== null) $('joined').textContent = room;
  // A fresh session: join the room again, before the messages queued while offline go to it.
  if (!resumed && room !== null) void join(room);
});
client.on('reconnecting', ({ attempt, delayMs }) => {
  clearInterval(countdown);
  const until = Date.now() + delayMs;
  const tick = () => {
    const seconds = Math.ceil((until - Date.now()) / 1000);
    setStatus('reconnecting', (seconds > 0 ? 'reconnecting in ' + seconds + ' s' : 'reconnecting') + ' (attempt ' + attempt + ')');
  };
  tick();
  countdown = setInterval(tick, 250);
});
client.on('close', ({ code, reason, willReconnect }) => {
  // Until the room is joined again on the next connection.
  if (room !== null) $('joined').textContent = room + ' (offline)';
  if (!willReconnect) setStatus('closed', 'closed (' + code + (reason ? ': ' + reason : '') + ')');
});
client.on('chat', (message) => show('[' + message.room + '] ' + message.text));
client.on('exception', (error) => show('error: ' + JSON.stringify(error.message)));

$('join-form').onsubmit = (event) => {
  event.preventDefault();
  void join($('room').value);
};
$('chat-form').onsubmit = (event) => {
  event.preventDefault();
  const text = $('text');
  if (room !== null && text.value !== '') {
    try {
      client.emit('chat', { room, text: text.value });
    } catch (error) {
      show('not sent: ' + error.message);
    }
  }
  text.value = '';
};
`;
