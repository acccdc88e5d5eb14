/* Safe rich text for chat messages: **bold** and `code` become elements, everything
 * else stays text. Built with DOM nodes (never innerHTML), so a message can never
 * inject markup into the page. */
(function () {
  'use strict';
  window.MayakRich = function (parent, text) {
    var re = /\*\*([^*\n]+)\*\*|`([^`\n]+)`/g, last = 0, m;
    while ((m = re.exec(text)) !== null) {
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      var el = document.createElement(m[1] !== undefined ? 'b' : 'code');
      el.textContent = m[1] !== undefined ? m[1] : m[2];
      parent.appendChild(el);
      last = re.lastIndex;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  };
})();
