/* Console login shared by the operator console and the admin page: an API key plus a
 * one-time code (TOTP). The first login of a key enrols the authenticator: the server
 * answers with a secret to add to the app, and the next code confirms it. The session
 * token lives in sessionStorage (gone with the tab). */
(function () {
  'use strict';
  var I = window.MayakI18n;
  var KEY = 'mayak.console.session';
  var C = {
    session: function () { return sessionStorage.getItem(KEY); },
    who: function () { try { return JSON.parse(sessionStorage.getItem(KEY + '.who') || 'null'); } catch (e) { return null; } },
    logout: function () {
      var s = C.session();
      sessionStorage.removeItem(KEY);
      sessionStorage.removeItem(KEY + '.who');
      if (s) fetch('/api/v1/desk/logout', { method: 'POST', headers: { 'X-Desk-Session': s } }).catch(function () {});
    },
    api: function (path, opts) {
      opts = opts || {};
      var h = opts.headers || {};
      h['X-Desk-Session'] = C.session() || '';
      if (opts.body && typeof opts.body !== 'string') { opts.body = JSON.stringify(opts.body); h['Content-Type'] = 'application/json'; }
      opts.headers = h;
      return fetch(path, opts).then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (j) {
          if (r.status === 401) { C.logout(); location.reload(); }
          if (!r.ok) throw new Error((j.error && j.error.message) || r.statusText);
          return j;
        });
      });
    },
    /* Wires the login form; calls done(who) once logged in. */
    login: function (done) {
      var form = document.getElementById('login-form'), err = document.getElementById('login-error');
      var enroll = document.getElementById('enroll'), secret = document.getElementById('enroll-secret');
      if (C.session() && C.who()) return done(C.who());
      form.classList.remove('hidden');
      form.addEventListener('submit', function (e) {
        e.preventDefault();
        err.textContent = '';
        var key = document.getElementById('api-key').value.trim();
        var code = document.getElementById('totp').value.trim();
        var body = code ? { totp: code } : {};
        fetch('/api/v1/desk/login', {
          method: 'POST', headers: { 'Authorization': 'Bearer ' + key, 'Content-Type': 'application/json' },
          body: JSON.stringify(body)
        }).then(function (r) {
          return r.json().then(function (j) { return { ok: r.ok, j: j }; });
        }).then(function (res) {
          if (!res.ok) { err.textContent = (res.j.error && res.j.error.message) || 'error'; return; }
          if (res.j.status === 'enroll') {
            enroll.classList.remove('hidden');
            secret.textContent = res.j.secret;
            secret.dataset.uri = res.j.otpauth_uri;
            document.getElementById('enroll-uri').textContent = res.j.otpauth_uri;
            document.getElementById('totp').focus();
            return;
          }
          sessionStorage.setItem(KEY, res.j.session);
          sessionStorage.setItem(KEY + '.who', JSON.stringify(res.j.operator));
          form.classList.add('hidden');
          done(res.j.operator);
        }).catch(function (e2) { err.textContent = String(e2); });
      });
    }
  };
  window.MayakConsole = C;
  void I;
})();
