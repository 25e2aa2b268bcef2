/**
 * The sample's chat page, served at `/`: plain HTML and the browser's own `WebSocket`. It connects to /ws on the same
 * host (wss when the page is https) and passes the page's `?token=` on, for SAMPLE_TOKEN.
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
</style>
</head>
<body>
<h1>Chat</h1>
<p>Status: <span id="status">connecting</span></p>
<form id="join-form"><input id="room" type="text" value="lobby" aria-label="room"><button id="join">Join</button></form>
<form id="chat-form"><input id="text" type="text" placeholder="Message" aria-label="message"><button id="send">Send</button></form>
<ul id="log"></ul>
<script>
  const log = document.getElementById('log');
  const status = document.getElementById('status');
  const show = (line) => { const li = document.createElement('li'); li.textContent = line; log.append(li); };
  const token = new URLSearchParams(location.search).get('token');
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws' + (token ? '?token=' + encodeURIComponent(token) : '');
  const socket = new WebSocket(url);
  let room = null;
  socket.onopen = () => { status.textContent = 'connected'; };
  socket.onclose = (event) => { status.textContent = 'closed (' + event.code + ')'; };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.event === 'joined') { room = message.data.room; status.textContent = 'in room ' + room; }
    else if (message.event === 'chat') show('[' + message.data.room + '] ' + message.data.text);
    else if (message.event === 'exception') show('error: ' + JSON.stringify(message.data.message));
  };
  document.getElementById('join-form').onsubmit = (event) => {
    event.preventDefault();
    socket.send(JSON.stringify({ event: 'join', data: { room: document.getElementById('room').value } }));
  };
  document.getElementById('chat-form').onsubmit = (event) => {
    event.preventDefault();
    const text = document.getElementById('text');
    if (room !== null && text.value !== '') socket.send(JSON.stringify({ event: 'chat', data: { room, text: text.value } }));
    text.value = '';
  };
</script>
</body>
</html>
`;
