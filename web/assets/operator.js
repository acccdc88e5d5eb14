/* Mayak operator console: the escalation queue (reason and the bot's draft for each),
 * the operator's own conversations, and one open conversation to claim, answer, hand
 * back to the bot or resolve — live over /ws/operator. Replies carry client ids and
 * are resent after a reconnect like the chat's (the server dedupes them). */
(function () {
  'use strict';
  var I = window.MayakI18n, C = window.MayakConsole;
  var $ = function (id) { return document.getElementById(id); };
  I.switcher($('lang'));
  I.apply(document);
  var S = { ws: null, me: null, queue: [], mine: [], open: null, conv: null, seen: {}, backoff: 500, outbox: [] };

  function fmtTime(ms) { return ms ? new Date(ms).toLocaleTimeString() : ''; }
  function item(c, inQueue) {
    var d = document.createElement('div');
    d.className = 'item' + (S.open === c.id ? ' sel' : '');
    d.classList.add(inQueue ? 'queue-item' : 'mine-item');
    d.dataset.id = c.id;
    var t = document.createElement('div');
    t.textContent = (inQueue ? '#' + c.position + ' ' : '') + (c.last_user_message || c.id.slice(0, 8));
    d.appendChild(t);
    var meta = document.createElement('div');
    meta.className = 'meta';
    meta.textContent = (c.agent || '—') + ' · ' + I.t('reason') + ': ' + (c.reason || c.escalation_reason || '—') +
      (inQueue ? ' · ' + I.t('waiting_since') + ' ' + fmtTime(c.escalated_at) : '');
    d.appendChild(meta);
    if (inQueue && c.draft) {
      var dr = document.createElement('div');
      dr.className = 'draft';
      dr.textContent = I.t('draft') + ': ' + c.draft;
      d.appendChild(dr);
    }
    d.addEventListener('click', function () { openConv(c.id); });
    return d;
  }
  function renderLists() {
    var q = $('queue'), m = $('mine');
    q.textContent = '';
    m.textContent = '';
    $('queue-count').textContent = S.queue.length;
    S.queue.forEach(function (c) { q.appendChild(item(c, true)); });
    S.mine.forEach(function (c) { m.appendChild(item(c, false)); });
    if (!S.queue.length) q.textContent = I.t('empty');
  }
  function renderMsg(m) {
    if (S.seen[m.id]) return;
    S.seen[m.id] = true;
    var box = $('op-messages');
    if (m.client_id) {
      var p = box.querySelector('.msg.pending[data-client-id="' + m.client_id + '"]');
      if (p) p.remove();
    }
    var d = document.createElement('div');
    d.className = 'msg';
    d.dataset.role = m.role;
    d.dataset.seq = m.seq;
    var w = document.createElement('span');
    w.className = 'who';
    w.textContent = I.t(m.role === 'user' ? 'user_label' : m.role) + (m.agent ? ' · ' + m.agent : '') + ' · ' + fmtTime(m.created_at);
    d.appendChild(w);
    window.MayakRich(d, m.text);
    box.appendChild(d);
    box.scrollTop = box.scrollHeight;
  }
  function setConv(c) {
    S.conv = c;
    $('conv-title').textContent = c.id.slice(0, 8) + ' · ' + (c.agent || '—');
    $('conv-state').textContent = I.t('state_' + c.state);
    $('conv-state').dataset.state = c.state;
    var mineNow = c.state === 'operator' && S.me && c.operator === S.me.id;
    $('claim').disabled = !(c.state === 'waiting_operator' || c.state === 'bot');
    $('handback').disabled = !(mineNow || c.state === 'waiting_operator');
    $('resolve').disabled = c.state === 'resolved';
    $('reply-input').disabled = $('reply-send').disabled = !mineNow;
    var q = S.queue.filter(function (x) { return x.id === c.id; })[0];
    $('draft').classList.toggle('hidden', !(q && q.draft));
    if (q && q.draft) $('draft').textContent = I.t('draft') + ':\n' + q.draft;
  }
  function openConv(id) {
    S.open = id;
    S.seen = {};
    $('op-messages').textContent = '';
    send({ type: 'open', conversation_id: id });
    renderLists();
  }
  function send(o) {
    if (S.ws && S.ws.readyState === 1) { S.ws.send(JSON.stringify(o)); return true; }
    return false;
  }
  function connect() {
    var ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
      '/ws/operator?session=' + encodeURIComponent(C.session()));
    S.ws = ws;
    ws.onopen = function () {
      S.backoff = 500;
      $('conn').textContent = I.t('online');
      $('conn').classList.remove('off');
      if (S.open) send({ type: 'open', conversation_id: S.open });
      S.outbox.forEach(send);
    };
    ws.onclose = function (ev) {
      if (S.ws !== ws) return;
      $('conn').textContent = I.t('reconnecting');
      $('conn').classList.add('off');
      if (ev.code === 1006 && !C.session()) return;
      setTimeout(connect, S.backoff);
      S.backoff = Math.min(S.backoff * 2, 5000);
    };
    ws.onmessage = function (ev) {
      var m = JSON.parse(ev.data);
      switch (m.type) {
      case 'welcome': S.me = m.operator; $('who').textContent = m.operator.id + ' (' + m.operator.role + ')'; break;
      case 'queue': S.queue = m.items; renderLists(); if (S.conv) setConv(S.conv); break;
      case 'mine': S.mine = m.items; renderLists(); break;
      case 'history':
        if (m.conversation_id !== S.open) break;
        m.messages.forEach(renderMsg);
        setConv(m.conversation);
        break;
      case 'message':
        if (m.conversation_id === S.open) renderMsg(m.message);
        break;
      case 'conversation':
        if (S.open === m.conversation.id) setConv(m.conversation);
        send({ type: 'queue' });
        break;
      case 'ack':
        if (m.client_id) S.outbox = S.outbox.filter(function (x) { return x.client_id !== m.client_id; });
        if (m.message && m.conversation_id === S.open) renderMsg(m.message);
        if (m.conversation && m.conversation.id === S.open) setConv(m.conversation);
        if (m.op !== 'message') send({ type: 'queue' });
        $('op-error').textContent = '';
        break;
      case 'error':
        if (m.client_id) S.outbox = S.outbox.filter(function (x) { return x.client_id !== m.client_id; });
        $('op-error').textContent = m.message || m.code;
        if (m.conversation && m.conversation.id === S.open) setConv(m.conversation);
        break;
      }
    };
  }
  function act(type) { if (S.open) send({ type: type, conversation_id: S.open }); }
  $('claim').addEventListener('click', function () { act('claim'); });
  $('handback').addEventListener('click', function () { act('handback'); });
  $('resolve').addEventListener('click', function () { act('resolve'); });
  $('reply-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var t = $('reply-input').value.trim();
    if (!t || !S.open) return;
    $('reply-input').value = '';
    var msg = { type: 'reply', conversation_id: S.open, text: t,
                client_id: 'o-' + Date.now().toString(36) + Math.random().toString(36).slice(2, 10) };
    S.outbox.push(msg);
    var d = document.createElement('div');
    d.className = 'msg pending';
    d.dataset.role = 'operator';
    d.dataset.clientId = msg.client_id;
    d.textContent = t;
    $('op-messages').appendChild(d);
    send(msg);
  });
  $('reply-input').addEventListener('keydown', function (e) {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); $('reply-form').requestSubmit(); }
  });
  $('logout').addEventListener('click', function () { C.logout(); location.reload(); });
  C.login(function (who) {
    $('console').classList.remove('hidden');
    $('logout').classList.remove('hidden');
    $('who').textContent = who.id + ' (' + who.role + ')';
    connect();
  });
})();
