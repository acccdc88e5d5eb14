/* Mayak admin page: live desk analytics (refreshed every few seconds), the agents, the
 * knowledge-base documents and the API keys (never their secrets). */
(function () {
  'use strict';
  var I = window.MayakI18n, C = window.MayakConsole;
  var $ = function (id) { return document.getElementById(id); };
  I.switcher($('lang'));
  I.apply(document);

  function table(el, head, rows) {
    el.textContent = '';
    var tr = document.createElement('tr');
    head.forEach(function (h) { var th = document.createElement('th'); th.textContent = h; tr.appendChild(th); });
    el.appendChild(tr);
    rows.forEach(function (r) {
      var row = document.createElement('tr');
      r.forEach(function (v) { var td = document.createElement('td'); td.textContent = v == null ? '—' : v; row.appendChild(td); });
      el.appendChild(row);
    });
  }
  function pct(v) { return v == null ? '—' : (v * 100).toFixed(0) + '%'; }
  function num(v, d) { return v == null ? '—' : Number(v).toFixed(d); }
  function kpi(label, value, id) {
    var d = document.createElement('div');
    d.className = 'kpi';
    d.id = id;
    var b = document.createElement('b');
    b.textContent = value;
    var s = document.createElement('span');
    s.textContent = label;
    d.appendChild(b);
    d.appendChild(s);
    return d;
  }
  function analytics() {
    return C.api('/api/v1/desk/analytics').then(function (a) {
      var o = a.overall, k = $('kpis');
      k.textContent = '';
      k.appendChild(kpi(I.t('convs'), o.conversations, 'kpi-conversations'));
      k.appendChild(kpi(I.t('automation'), pct(o.automation_rate), 'kpi-automation'));
      k.appendChild(kpi(I.t('escalation'), pct(o.escalation_rate), 'kpi-escalation'));
      k.appendChild(kpi(I.t('csat'), num(o.csat_avg, 2) + ' (' + o.csat_count + ')', 'kpi-csat'));
      k.appendChild(kpi(I.t('frt_bot'), num(o.first_response_bot_s, 2), 'kpi-frt-bot'));
      k.appendChild(kpi(I.t('frt_op'), num(o.first_response_operator_s, 1), 'kpi-frt-op'));
      k.appendChild(kpi(I.t('queue_len'), a.queue_length, 'kpi-queue'));
      table($('analytics-agents'), ['agent', I.t('convs'), I.t('automation'), I.t('escalation'), I.t('csat'), I.t('frt_bot'), I.t('frt_op')],
        Object.keys(a.agents).map(function (id) {
          var t = a.agents[id];
          return [id, t.conversations, pct(t.automation_rate), pct(t.escalation_rate), num(t.csat_avg, 2),
                  num(t.first_response_bot_s, 2), num(t.first_response_operator_s, 1)];
        }));
      table($('analytics-reasons'), [I.t('reason'), 'n'], Object.keys(a.reasons).map(function (r) { return [r, a.reasons[r]]; }));
    });
  }
  function statics() {
    C.api('/api/v1/desk/agents').then(function (r) {
      table($('agents'), ['id', 'name', 'description', 'knowledge', 'examples'],
        r.data.map(function (a) { return [a.id, a.name, a.description, a.knowledge.join(', '), a.examples]; }));
    });
    C.api('/api/v1/desk/kb/documents').then(function (r) {
      $('kb-count').textContent = r.data.length;
      table($('kb-docs'), ['id', 'title', 'lang', 'agent', I.t('chunks')],
        r.data.map(function (d) { return [d.id, d.title, d.lang, d.agent || '*', d.chunks]; }));
    });
    C.api('/api/v1/desk/keys').then(function (r) {
      table($('keys'), ['id', 'name', 'tenant', 'role', 'created', 'last used'],
        r.data.map(function (k) {
          return [k.id, k.name, k.tenant, k.role, new Date(k.created_at).toLocaleString(),
                  k.last_used_at ? new Date(k.last_used_at).toLocaleString() : null];
        }));
    }).catch(function (e) { $('keys-error').textContent = String(e.message || e); });
  }
  $('logout').addEventListener('click', function () { C.logout(); location.reload(); });
  C.login(function (who) {
    $('admin').classList.remove('hidden');
    $('logout').classList.remove('hidden');
    $('who').textContent = who.id + ' (' + who.role + ')';
    statics();
    analytics();
    setInterval(function () { analytics().catch(function () {}); }, 3000);
    I.onchange = function () { statics(); analytics(); };
  });
})();
