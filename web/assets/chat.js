/* Mayak chat: the end user's side of a support conversation (the page at / and, in an
 * iframe, the widget).
 *
 * Nothing typed is lost to a bad network: every message gets a client id and waits in
 * an outbox (kept in localStorage) until the server acknowledges it; after a
 * reconnect the page says hello with the conversation's id, token and the last
 * sequence number it has, gets what it missed, and sends the outbox again. The server
 * answers a resent client id with the message it already stored, so nothing doubles.
 */
(function () {
  'use strict';
  var I = window.MayakI18n;
  var params = new URLSearchParams(location.search);
  var embed = params.get('embed') === '1';
  var accessKey = params.get('key') || '';
  var store = (function () {
    try { localStorage.setItem('mayak.t', '1'); localStorage.removeItem('mayak.t'); return localStorage; }
    catch (e) { var m = {}; return { getItem: function (k) { return m[k] || null; }, setItem: function (k, v) { m[k] = String(v); }, removeItem: function (k) { delete m[k]; } }; }
  })();

  var $ = function (id) { return document.getElementById(id); };
  var el = {
    chat: $('chat'), messages: $('messages'), input: $('input'), composer: $('composer'), conn: $('conn'),
    state: $('state'), queue: $('queue-position'), human: $('human'), end: $('end'), rating: $('rating'),
    stars: $('stars'), yes: $('helped-yes'), no: $('helped-no'), rateSubmit: $('rate-submit'), rated: $('rated'),
    newChat: $('new-chat')
  };
  if (embed) el.chat.classList.add('embed');
  I.switcher($('lang'));
  I.apply(document);

  var S = {
    ws: null, online: false, backoff: 500, timer: null,
    conv: store.getItem('mayak.conv'), token: store.getItem('mayak.token'),
    lastSeq: 0, seen: {}, state: null, queuePos: null, csat: 0, helped: null,
    outbox: []
  };
  try { S.outbox = JSON.parse(store.getItem('mayak.outbox') || '[]'); } catch (e) { S.outbox = []; }
  function saveOutbox() { store.setItem('mayak.outbox', JSON.stringify(S.outbox)); }

  function newId() {
    var a = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(a);
    return 'c-' + Array.prototype.map.call(a, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }

  /* ---- rendering ---- */
  function who(role) { return I.t(role === 'user' ? 'you' : role); }
  function citationHref(c) {
    if (/^https?:\/\//.test(c.url || '')) return c.url;
    return '/api/v1/desk/kb/article?source=' + encodeURIComponent(c.url || '');
  }
  function renderMessage(m, pendingId) {
    var div = document.createElement('div');
    div.className = 'msg';
    div.dataset.role = m.role;
    if (m.seq) div.dataset.seq = m.seq;
    if (m.client_id || pendingId) div.dataset.clientId = m.client_id || pendingId;
    var w = document.createElement('span');
    w.className = 'who';
    w.textContent = who(m.role) + (pendingId ? ' · ' + I.t('pending') : '');
    div.appendChild(w);
    window.MayakRich(div, m.text);
    if (m.citations && m.citations.length) {
      var c = document.createElement('div');
      c.className = 'citations';
      c.appendChild(document.createTextNode(I.t('sources') + ': '));
      m.citations.forEach(function (ci) {
        var a = document.createElement('a');
        a.className = 'citation';
        a.href = citationHref(ci);
        a.target = '_blank';
        a.rel = 'noopener';
        a.textContent = ci.title || ci.id || ci.url;
        a.dataset.source = ci.url || '';
        c.appendChild(a);
      });
      div.appendChild(c);
    }
    if (pendingId) div.classList.add('pending');
    return div;
  }
  function scroll() { el.messages.scrollTop = el.messages.scrollHeight; }
  function addMessage(m) {
    if (!m || !m.id || S.seen[m.id]) return;
    S.seen[m.id] = true;
    if (m.seq > S.lastSeq) S.lastSeq = m.seq;
    var node = renderMessage(m);
    if (m.client_id) { /* replaces its pending copy */
      var p = el.messages.querySelector('.msg.pending[data-client-id="' + m.client_id + '"]');
      if (p) p.remove();
    }
    /* keep server order even if a late replay arrives */
    var after = null;
    el.messages.querySelectorAll('.msg[data-seq]').forEach(function (n) {
      if (+n.dataset.seq < m.seq) after = n;
    });
    var firstPending = el.messages.querySelector('.msg.pending');
    if (after) after.after(node);
    else if (el.messages.firstChild && !el.messages.firstChild.classList.contains('pending') && +el.messages.firstChild.dataset.seq > m.seq) el.messages.prepend(node);
    else if (firstPending) firstPending.before(node);
    else el.messages.appendChild(node);
    scroll();
  }
  function addPending(item) {
    if (el.messages.querySelector('.msg[data-client-id="' + item.client_id + '"]')) return;
    el.messages.appendChild(renderMessage({ role: 'user', text: item.text }, item.client_id));
    scroll();
  }
  function note(text) {
    var d = document.createElement('div');
    d.className = 'note';
    d.textContent = text;
    el.messages.appendChild(d);
    scroll();
  }
  function setConn(on, reconnecting) {
    S.online = on;
    el.conn.textContent = I.t(on ? 'online' : reconnecting ? 'reconnecting' : 'connecting');
    el.conn.classList.toggle('off', !on);
  }
  function setState(conv, pos) {
    var prev = S.state;
    S.state = conv.state;
    el.chat.dataset.state = conv.state;
    el.state.textContent = I.t('state_' + conv.state);
    el.state.dataset.state = conv.state;
    setQueue(conv.state === 'waiting_operator' ? pos : null);
    el.human.disabled = conv.state !== 'bot';
    el.end.disabled = conv.state === 'resolved';
    el.rating.classList.toggle('hidden', conv.state !== 'resolved');
    el.newChat.classList.toggle('hidden', conv.state !== 'resolved');
    if (conv.rating) showRated();
    if (prev && prev !== conv.state) {
      if (conv.state === 'operator') note(I.t('operator_joined'));
      if (conv.state === 'bot' && prev === 'operator') note(I.t('handed_back'));
    }
  }
  function setQueue(pos) {
    S.queuePos = pos;
    el.queue.textContent = pos ? I.t('queue', { n: pos }) : '';
    el.queue.dataset.position = pos || '';
  }
  function showRated() {
    el.rated.classList.remove('hidden');
    el.rateSubmit.disabled = true;
  }

  /* ---- the socket ---- */
  function wsUrl() {
    var u = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws/chat';
    return accessKey ? u + '?access_token=' + encodeURIComponent(accessKey) : u;
  }
  function send(obj) {
    if (!S.ws || S.ws.readyState !== 1) return false;
    S.ws.send(JSON.stringify(obj));
    return true;
  }
  function flushOutbox() {
    S.outbox.forEach(function (item) {
      addPending(item);
      send(item.type === 'message' ? { type: 'message', client_id: item.client_id, text: item.text } : item);
    });
  }
  function connect() {
    clearTimeout(S.timer);
    var ws;
    try { ws = new WebSocket(wsUrl()); } catch (e) { return retry(); }
    S.ws = ws;
    ws.onopen = function () {
      S.backoff = 500;
      var hello = { type: 'hello', lang: I.lang, last_seq: S.lastSeq };
      if (S.conv && S.token) { hello.conversation_id = S.conv; hello.token = S.token; }
      ws.send(JSON.stringify(hello));
    };
    ws.onmessage = function (ev) {
      var m;
      try { m = JSON.parse(ev.data); } catch (e) { return; }
      handle(m);
    };
    ws.onclose = function () {
      if (S.ws !== ws) return;
      S.ws = null;
      setConn(false, true);
      retry();
    };
    ws.onerror = function () { /* onclose follows */ };
  }
  function retry() {
    clearTimeout(S.timer);
    S.timer = setTimeout(connect, S.backoff);
    S.backoff = Math.min(S.backoff * 2, 5000);
  }
  function handle(m) {
    switch (m.type) {
    case 'welcome':
      if (m.token) {
        S.conv = m.conversation.id;
        S.token = m.token;
        store.setItem('mayak.conv', S.conv);
        store.setItem('mayak.token', S.token);
      }
      el.chat.dataset.conversation = m.conversation.id;
      setConn(true);
      (m.messages || []).forEach(addMessage);
      setState(m.conversation, m.queue_position);
      flushOutbox();
      break;
    case 'message':
      addMessage(m.message);
      break;
    case 'ack':
      if (m.client_id) {
        S.outbox = S.outbox.filter(function (x) { return x.client_id !== m.client_id; });
        saveOutbox();
      }
      if (m.message) addMessage(m.message);
      if (m.conversation) setState(m.conversation, S.queuePos);
      break;
    case 'state':
      setState(m.conversation, m.queue_position);
      break;
    case 'queue_position':
      if (S.state === 'waiting_operator') setQueue(m.position);
      break;
    case 'error':
      if (!el.chat.dataset.conversation && (m.code === 'unauthorized' || m.code === 'notfound')) {
        /* the stored conversation is gone or not ours: start a new one */
        store.removeItem('mayak.conv');
        store.removeItem('mayak.token');
        S.conv = S.token = null;
        if (S.ws) S.ws.close();
      } else if (m.op === 'message' && m.client_id) {
        S.outbox = S.outbox.filter(function (x) { return x.client_id !== m.client_id; });
        saveOutbox();
        note(I.t('error') + ': ' + (m.message || m.code));
      } else {
        note(I.t('error') + ': ' + (m.message || m.code));
      }
      break;
    }
  }

  /* ---- actions ---- */
  el.composer.addEventListener('submit', function (e) {
    e.preventDefault();
    var text = el.input.value.trim();
    if (!text) return;
    el.input.value = '';
    var item = { type: 'message', client_id: newId(), text: text };
    S.outbox.push(item);
    saveOutbox();
    addPending(item);
    send({ type: 'message', client_id: item.client_id, text: text });
  });
  el.input.addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); el.composer.requestSubmit(); }
  });
  el.human.addEventListener('click', function () { send({ type: 'escalate', reason: 'user_request' }); });
  el.end.addEventListener('click', function () { send({ type: 'resolve' }); });
  el.newChat.addEventListener('click', function () {
    store.removeItem('mayak.conv');
    store.removeItem('mayak.token');
    location.reload();
  });
  for (var i = 1; i <= 5; i++) {
    var b = document.createElement('button');
    b.type = 'button';
    b.className = 'star';
    b.dataset.value = i;
    b.textContent = '★';
    b.title = String(i);
    b.addEventListener('click', function (ev) {
      S.csat = +ev.currentTarget.dataset.value;
      el.stars.querySelectorAll('button').forEach(function (s) { s.classList.toggle('on', +s.dataset.value <= S.csat); });
      el.rateSubmit.disabled = false;
    });
    el.stars.appendChild(b);
  }
  el.yes.addEventListener('click', function () { S.helped = true; el.yes.classList.add('on'); el.no.classList.remove('on'); });
  el.no.addEventListener('click', function () { S.helped = false; el.no.classList.add('on'); el.yes.classList.remove('on'); });
  el.rateSubmit.addEventListener('click', function () {
    if (!S.csat) return;
    var r = { type: 'rate', csat: S.csat };
    if (S.helped !== null) r.helped = S.helped;
    if (send(r)) showRated();
  });
  I.onchange = function () {
    if (S.state) { el.state.textContent = I.t('state_' + S.state); setQueue(S.queuePos); }
    setConn(S.online, !S.online && !!S.conv);
  };
  setConn(false, false);
  connect();
})();
