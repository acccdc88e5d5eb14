/* Mayak web UI strings, Russian and English. The language comes from ?lang=, then
 * the saved choice, then the browser; every page has a switch. */
(function () {
  'use strict';
  var S = {
    ru: {
      title: 'Поддержка', subtitle: 'Ответим сразу, а если нужно — подключим специалиста',
      placeholder: 'Опишите проблему…', send: 'Отправить', human: 'Позвать оператора', end: 'Завершить',
      connecting: 'Подключаемся…', reconnecting: 'Связь потеряна, переподключаемся…', online: 'На связи',
      state_bot: 'Отвечает ассистент', state_waiting_operator: 'Ждём оператора',
      state_operator: 'С вами оператор', state_resolved: 'Разговор завершён',
      queue: 'Ваше место в очереди: {n}', sources: 'Источники', you: 'Вы', bot: 'Ассистент',
      operator: 'Оператор', system: 'Система', pending: 'отправляется…',
      operator_joined: 'Оператор подключился к разговору.', handed_back: 'Разговор снова ведёт ассистент.',
      resolved_note: 'Разговор завершён. Оцените, пожалуйста, помощь.', rate_q: 'Насколько вы довольны?',
      helped_q: 'Это помогло?', yes: 'Да', no: 'Нет', rate_send: 'Оценить', thanks: 'Спасибо за оценку!',
      new_chat: 'Новый разговор', error: 'Ошибка',
      console: 'Консоль оператора', admin: 'Администрирование', api_key: 'API-ключ', totp: 'Код из приложения (TOTP)',
      login: 'Войти', logout: 'Выйти', enroll: 'Добавьте ключ в приложение-аутентификатор и введите код:',
      queue_title: 'Очередь', mine_title: 'Мои разговоры', empty: 'Пусто', reason: 'Причина', draft: 'Черновик бота',
      claim: 'Взять', handback: 'Вернуть боту', resolve: 'Завершить', reply_ph: 'Ответ пользователю…',
      reply: 'Ответить', pick: 'Выберите разговор', agents: 'Агенты', kb: 'База знаний', keys: 'Ключи',
      analytics: 'Аналитика', overall: 'Всего', automation: 'Автоматизация', escalation: 'Эскалации',
      frt_bot: 'Первый ответ бота, с', frt_op: 'Первый ответ оператора, с', csat: 'CSAT', convs: 'Разговоры',
      reasons: 'Причины эскалаций', user_label: 'Пользователь', documents: 'Документы', chunks: 'Фрагменты', queue_len: 'В очереди', waiting_since: 'ждёт с'
    },
    en: {
      title: 'Support', subtitle: 'Instant answers, and a person when you need one',
      placeholder: 'Describe the problem…', send: 'Send', human: 'Talk to a person', end: 'End chat',
      connecting: 'Connecting…', reconnecting: 'Connection lost, reconnecting…', online: 'Online',
      state_bot: 'The assistant is answering', state_waiting_operator: 'Waiting for an operator',
      state_operator: 'An operator is with you', state_resolved: 'Conversation ended',
      queue: 'Your place in the queue: {n}', sources: 'Sources', you: 'You', bot: 'Assistant',
      operator: 'Operator', system: 'System', pending: 'sending…',
      operator_joined: 'An operator joined the conversation.', handed_back: 'The assistant is back.',
      resolved_note: 'The conversation has ended. Please rate the help.', rate_q: 'How satisfied are you?',
      helped_q: 'Did it help?', yes: 'Yes', no: 'No', rate_send: 'Rate', thanks: 'Thank you for your rating!',
      new_chat: 'New conversation', error: 'Error',
      console: 'Operator console', admin: 'Administration', api_key: 'API key', totp: 'Authenticator code (TOTP)',
      login: 'Log in', logout: 'Log out', enroll: 'Add this key to your authenticator app and enter a code:',
      queue_title: 'Queue', mine_title: 'My conversations', empty: 'Empty', reason: 'Reason', draft: "Bot's draft",
      claim: 'Claim', handback: 'Hand back to bot', resolve: 'Resolve', reply_ph: 'Reply to the user…',
      reply: 'Reply', pick: 'Pick a conversation', agents: 'Agents', kb: 'Knowledge base', keys: 'Keys',
      analytics: 'Analytics', overall: 'Overall', automation: 'Automation', escalation: 'Escalations',
      frt_bot: 'Bot first response, s', frt_op: 'Operator first response, s', csat: 'CSAT', convs: 'Conversations',
      reasons: 'Escalation reasons', user_label: 'User', documents: 'Documents', chunks: 'Chunks', queue_len: 'In queue', waiting_since: 'waiting since'
    }
  };
  function pick() {
    var q = new URLSearchParams(location.search).get('lang');
    var saved = null;
    try { saved = localStorage.getItem('mayak.lang'); } catch (e) { /* storage may be off */ }
    var nav = (navigator.language || 'en').slice(0, 2).toLowerCase();
    var l = q || saved || (nav === 'ru' || nav === 'kk' ? 'ru' : 'en');
    return S[l] ? l : 'en';
  }
  var lang = pick();
  var I = {
    get lang() { return lang; },
    t: function (key, vars) {
      var s = (S[lang] && S[lang][key]) || S.en[key] || key;
      if (vars) Object.keys(vars).forEach(function (k) { s = s.replace('{' + k + '}', vars[k]); });
      return s;
    },
    set: function (l) {
      if (!S[l]) return;
      lang = l;
      try { localStorage.setItem('mayak.lang', l); } catch (e) { /* ignore */ }
      I.apply(document);
      if (I.onchange) I.onchange(l);
    },
    /* Fills elements marked data-i18n (text) and data-i18n-ph (placeholder). */
    apply: function (root) {
      root.querySelectorAll('[data-i18n]').forEach(function (el) { el.textContent = I.t(el.dataset.i18n); });
      root.querySelectorAll('[data-i18n-ph]').forEach(function (el) { el.placeholder = I.t(el.dataset.i18nPh); });
      document.documentElement.lang = lang;
      root.querySelectorAll('.lang-switch button').forEach(function (b) {
        b.classList.toggle('on', b.dataset.lang === lang);
      });
    },
    switcher: function (el) {
      ['ru', 'en'].forEach(function (l) {
        var b = document.createElement('button');
        b.type = 'button';
        b.dataset.lang = l;
        b.textContent = l.toUpperCase();
        b.addEventListener('click', function () { I.set(l); });
        el.appendChild(b);
      });
    }
  };
  window.MayakI18n = I;
})();
