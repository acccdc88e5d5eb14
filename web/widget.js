/* Mayak chat widget: one script tag embeds support chat in any site.
 *
 *   <script src="https://support.example.com/widget.js" async
 *           data-lang="ru" data-key="mk-..." data-position="right"></script>
 *
 * It adds a round button in a corner; the button opens the chat page of the Mayak
 * server the script came from, in an iframe (so the host page's styles and scripts
 * cannot touch the chat, nor the chat the page). data-key: an API key of role "user"
 * when the server requires keys (it is visible to visitors: give it the user role
 * only); data-lang: ru or en; data-position: right (default) or left.
 */
(function () {
  'use strict';
  var me = document.currentScript;
  if (!me || window.__mayakWidget) return;
  window.__mayakWidget = true;
  var origin = new URL(me.src, location.href).origin;
  var lang = me.dataset.lang || '';
  var key = me.dataset.key || '';
  var left = me.dataset.position === 'left';

  function start() {
    var host = document.createElement('div');
    host.id = 'mayak-widget';
    var root = host.attachShadow ? host.attachShadow({ mode: 'open' }) : host;
    var side = left ? 'left' : 'right';
    var style = document.createElement('style');
    style.textContent =
      '.btn{position:fixed;bottom:20px;' + side + ':20px;width:56px;height:56px;border-radius:50%;border:0;' +
      'background:#0b6bcb;color:#fff;font-size:26px;cursor:pointer;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483646}' +
      '.panel{position:fixed;bottom:86px;' + side + ':20px;width:380px;height:560px;max-width:calc(100vw - 40px);' +
      'max-height:calc(100vh - 110px);border:1px solid #e3e6ea;border-radius:14px;overflow:hidden;background:#fff;' +
      'box-shadow:0 8px 30px rgba(0,0,0,.2);z-index:2147483647;display:none}' +
      '.panel.open{display:block}.panel iframe{width:100%;height:100%;border:0}';
    var btn = document.createElement('button');
    btn.className = 'btn';
    btn.type = 'button';
    btn.setAttribute('aria-label', lang === 'en' ? 'Support chat' : 'Чат поддержки');
    btn.textContent = '💬';
    var panel = document.createElement('div');
    panel.className = 'panel';
    var frame = null;
    btn.addEventListener('click', function () {
      if (!frame) { /* the chat loads on first open: no socket for visitors who never ask */
        frame = document.createElement('iframe');
        var q = new URLSearchParams({ embed: '1' });
        if (lang) q.set('lang', lang);
        if (key) q.set('key', key);
        frame.src = origin + '/?' + q.toString();
        frame.title = btn.getAttribute('aria-label');
        frame.allow = 'clipboard-write';
        panel.appendChild(frame);
      }
      panel.classList.toggle('open');
      btn.textContent = panel.classList.contains('open') ? '×' : '💬';
    });
    root.appendChild(style);
    root.appendChild(panel);
    root.appendChild(btn);
    document.body.appendChild(host);
  }
  if (document.body) start();
  else document.addEventListener('DOMContentLoaded', start);
})();
