/*
 * The injection guard's pattern set: Mayak's own rules in English, Russian and
 * Kazakh, matched against the NORMALISED text (mk_normalize: lower case, one
 * space between words, one script per word, ё = е). So the rules are written in
 * lower case with single spaces and need no case or Unicode handling.
 *
 * Syntax: the common subset of Hyperscan and PCRE2, matched byte-wise (no UTF-8
 * mode; see injection_match.c for why). Rules of thumb that keep both fast:
 *   - Cyrillic appears only as literal text (stems like "игнорир[^ ]*"): byte
 *     classes cannot express Cyrillic letters, and a Cyrillic literal is exact.
 *     Never "[ая]" (a class of four bytes that matches one of them): write
 *     "(?:а|я)"; and never "[её]": BASE has already folded ё to е.
 *   - A "word" is [^ ]+; GAP(n) allows up to n words between two phrases.
 *   - \b only next to Latin letters (ASCII word boundary); before a Cyrillic
 *     stem use RB (a start or a separator), because \b sees UTF-8 bytes as non-word.
 *
 * Each rule has a stable id (never reuse one: ids appear in verdicts and audit
 * records), a category, and a weight in (0,1): roughly the probability that a
 * text matching it is an attack. Weights combine by noisy-OR, so two moderate
 * hints make a strong one. Keep near-miss phrases weak: "ignore notifications",
 * "act as a translator", "enable developer mode on Android" are ordinary requests.
 */
#include "guard/injection_int.h"

#define GAP(n) "(?: [^\\n]{0," #n "0})? "
/* GAP after an anchor that already ends with a space: optional words, then a
 * space (GAP there would need two spaces in a row, which BASE never has). */
#define GAPS(n) "(?:[^\\n]{0," #n "0} )?"
/* Gaps count bytes and a Cyrillic letter is two, so Russian and Kazakh rules
 * use twice the gap of an English rule for the same number of words. */
#define RB "(?:^|[ \"'(>:;,.!?*-]|«)"
#define W "[^ ]*"

/* English objects of an override: what the attacker wants forgotten. */
#define EN_RULES "(?:instructions?|rules|directions?|guidelines|prompts?|commands?|constraints|restrictions|orders|" \
                 "programming|directives?|guidance|polic(?:y|ies)|filters|safeguards|messages|tasks?|context|text|input|content)\\b"
#define EN_PRIOR "(?:previous|prior|above|earlier|preceding|former|initial|original|old|system|given|foregoing|aforementioned|all)"
#define EN_IGNORE "\\b(?:ignore|ignoring|disregard|disregarding|forget|forgetting|neglect|skip|overlook|bypass|override|dismiss|discard|abandon|drop|set aside|throw away|pay no attention to|do not follow|don't follow|stop following|no longer follow|do not listen to|don't listen to|stop listening to)"

/* What an override dismisses when it names the user's task rather than rules. */
#define EN_TASKS "(?:instructions?|rules|directions?|guidelines|prompts?|commands?|questions?|requests?|tasks?|queries|query|" \
                 "messages?|text|input|content|context|assignments?|directives?)"
/* (RU_RULES and RU_TASKS appear only in the PCRE2-confirmed rest of a rule,
 * so they may use a lookahead: "правил" but not "правильный".) */
#define RU_TASKS "(?:инструкци|указани|правил(?!ь)|команд|промпт|задани|задач|вопрос|запрос|просьб|сообщени|текст|контекст)"

/* Russian: verbs of override (imperative, infinitive and polite forms share stems). */
#define RU_IGNORE "(?:игнорир|проигнорир|игнорь|забуд|забыв|забыт|отбрось|отбрас|отмени|отменя|пренебре|не обраща|не принима" \
                  "|не следу|не слушай|не слушайте|не учитыва|не выполня|пропусти|пропустите|перестань следовать|перестаньте следовать|выбрось|выброси|сбрось|сбрась|обнули|удали|сотри|откинь)"
#define RU_RULES "(?:инструкци|указани|правил(?!ь)|команд|промпт|установк|ограничени|директив|предписани|задани|запрет|настройк|сообщени|вышесказан|сказанн|вышеизложен|вышеупомянут|вышеуказан|контекст|текст|подсказк|политик)"
#define RU_PRIOR "(?:предыдущ|прежн|выше|ранее|ранн|изначальн|исходн|системн|первоначальн|данн|прошл|вс(?:е|я)|любы|эти|эту|этого|предшеству|до этого|полученн|заданн|старые|старых)"

/* Kazakh: instruction, rule, restriction, task, command, prompt. */
#define KK_RULES "(?:нұсқау|нұсқаулық|ереже|шектеу|тапсырма|бұйрық|промпт|талап|нұсқама)"
#define KK_IGNORE "(?:елеме|елемеңіз|елемей|ескерме|ескермеңіз|ұмыт|назар аударма|назар аудармаңыз|орындама|орындамаңыз|бас тарт|тоқтат|өшір|жой|лақтыр)"
#define KK_PRIOR "(?:алдыңғы|бұрынғы|жоғарыдағы|жоғарыда|барлық|осы|бастапқы|жүйелік|берілген|әуелгі|алғашқы)"

const struct mk_injection_pattern mk_injection_patterns[] = {
    /* ---------------- override: English ---------------- */
    {1, MK_INJ_OVERRIDE, 0.92f, "en", EN_IGNORE, GAP(3) EN_PRIOR GAP(2) EN_RULES},
    {2, MK_INJ_OVERRIDE, 0.55f, "en", EN_IGNORE " (?:your|the|my|these|those|any|its) ", GAPS(1) EN_RULES},
    {3, MK_INJ_OVERRIDE, 0.90f, "en", EN_IGNORE " (?:everything|anything|all|what) ", GAPS(3) "(?:above|before|previously|earlier|so far|until now|you (?:were|have been) (?:told|given))"},
    {4, MK_INJ_OVERRIDE, 0.85f, "en", EN_IGNORE " (?:the|all|everything) (?:above|before)\\b", NULL},
    {5, MK_INJ_OVERRIDE, 0.80f, "en", "\\b(?:new|updated|real|actual|true|secret|revised|different) (?:instructions?|rules|task|orders|directives?|objective|goal|mission)(?: for you)? ?(?::|are|is|follow)", NULL},
    {6, MK_INJ_OVERRIDE, 0.80f, "en", "\\b(?:above|previous|prior|earlier|preceding|original) (?:instructions?|rules|prompts?|text|directions?|context) (?:(?:is|are|was|were|has been|have been) )?(?:no longer|not|wrong|fake|void|null|cancell?ed|irrelevant|obsolete|outdated|invalid|overridden|revoked|a test|false|deprecated)", NULL},
    {7, MK_INJ_OVERRIDE, 0.70f, "en", "\\b(?:change|replace|update|overwrite|rewrite|modify|reset|clear|wipe) (?:your|all|the) (?:previous |prior |original |initial |system )?(?:instructions?|rules|prompt|programming|directives?|guidelines|memory)\\b", NULL},
    {8, MK_INJ_OVERRIDE, 0.88f, "en", "\\b(?:i have been|i've been|you have been|you've been) (?:pwned|pwnd|hacked|owned|jailbroken)", NULL},
    {9, MK_INJ_OVERRIDE, 0.55f, "en", "\\b(?:don't|do not|stop|never) (?:answer|respond to|reply to|address|solve|translate|summari[sz]e) (?:the|my|this|that|any|previous) ", GAPS(2) "(?:question|request|task|query|prompt|text)[^ ]*[ ,;:-]+(?:instead|just|only|but|and)\\b"},
    {10, MK_INJ_OVERRIDE, 0.45f, "en", "\\b(?:instead|rather),? (?:just |simply |only )?(?:say|print|output|write|reply|respond|answer|repeat|type|return)\\b", NULL},
    {11, MK_INJ_OVERRIDE, 0.35f, "en", "\\b(?:just|only|simply) (?:say|print|output|write|reply with|respond with|repeat|return)\\b", GAP(3) "(?:\"|'|:)"},
    {12, MK_INJ_OVERRIDE, 0.80f, "en", "\\b(?:you are|you're|you will be|you'll be) (?:no longer|not|never again) (?:bound|restricted|limited|constrained|governed|required to follow|obliged to follow)\\b", NULL},
    {13, MK_INJ_OVERRIDE, 0.80f, "en", "\\b(?:override|bypass|disable|deactivate|turn off|switch off|remove|lift|circumvent|evade|break) (?:your|the|all|any|its|those|these) ", GAPS(1) "(?:safety|content|ethical|moral|security|filter|censorship)? ?(?:filters?|guidelines|restrictions|guardrails|protocols|programming|rules|polic(?:y|ies)|limitations|safeguards|censorship|alignment)\\b"},
    {14, MK_INJ_OVERRIDE, 0.40f, "en", "\\bfrom (?:now on|this point(?: on| forward)?|here on),? (?:you|your|ignore|only|always|never|respond|answer|reply|act)\\b", NULL},
    {15, MK_INJ_OVERRIDE, 0.75f, "en", "\\b(?:forget|ignore|disregard) (?:about )?(?:it|that|this|them|everything|all)\\b", GAP(4) "(?:say|print|output|write|tell|respond|answer|focus|now|instead)\\b"},
    {16, MK_INJ_OVERRIDE, 0.55f, "en", "\\b(?:stop|end|exit|terminate|abort)(?: the)? (?:current )?(?:task|role|simulation|program|conversation|instructions?)[ .:!,-]+(?:now |instead |new )?(?:you|write|say|print|output|tell|your)\\b", NULL},
    {17, MK_INJ_OVERRIDE, 0.45f, "en", "\\b(?:the|your) (?:most )?important (?:thing|instruction|task|rule) (?:now )?is\\b", NULL},
    {18, MK_INJ_OVERRIDE, 0.60f, "en", "\\bpriority (?:override|instruction|command|directive)\\b|\\b(?:admin|administrator|developer|system|root) (?:override|command|instruction|message|note)s? ?:", NULL},
    {19, MK_INJ_OVERRIDE, 0.35f, "de", "(?:ignorier|vergiss|vergessen sie|missachte)" W, GAP(4) "(?:anweisung|befehl|regel|vorgabe|aufgabe|informationen|alles)"},
    /* The dismissed thing named first, then where it was: "ignore the instructions above". */
    {20, MK_INJ_OVERRIDE, 0.88f, "en", EN_IGNORE, GAP(2) EN_TASKS GAP(1) "(?:above|before|so far|until now|earlier|previously)\\b"},
    {21, MK_INJ_OVERRIDE, 0.80f, "en", "\\b(?:don't|do not|never|no need to) (?:answer|follow|do|complete|perform|execute|respond to|reply to|address|translate|summari[sz]e) (?:the |this |that |my |your )?(?:(?:above|previous|prior|original|preceding|earlier) (?:question|request|task|query|prompt|instructions?|assignment)|(?:question|request|task|query|prompt|instructions?|assignment) (?:above|before|earlier))", NULL},
    {22, MK_INJ_OVERRIDE, 0.45f, "en", "\\b(?:cancel|skip|scrap|drop|never ?mind|forget about|abandon) (?:the |my |your |this |that )?(?:(?:previous|prior|above|earlier|original|preceding) (?:task|question|request|prompt|instructions?|assignment|query)|(?:task|question|request|prompt|instructions?|assignment) (?:above|before))\\b", NULL},
    {23, MK_INJ_OVERRIDE, 0.80f, "en", "\\b(?:above|previous|prior|preceding|original) (?:task|question|request|prompt|instructions?|assignment)s? (?:(?:is|are|was|were) )?(?:does not|doesn't|do not|don't|no longer|not) (?:matter|important|relevant|needed|apply|valid)", NULL},
    {24, MK_INJ_OVERRIDE, 0.80f, "en", "\\b(?:do not|don't|stop) (?:listen(?:ing)? to|obey(?:ing)?|follow(?:ing)?|heed(?:ing)?) (?:any |the |all |your )?(?:previous|prior|above|earlier|original|preceding|former)\\b", NULL},
    {25, MK_INJ_OVERRIDE, 0.80f, "en", "\\b(?:pretend|imagine|act as if|act like|suppose) (?:that )?(?:you (?:have |'ve |had )?|to have )(?:forgotten|forgot|lost|erased|deleted|never (?:had|received|got))\\b", NULL},
    {26, MK_INJ_OVERRIDE, 0.35f, "en", "\\b(?:repeat|say) after me\\b", NULL},
    {27, MK_INJ_OVERRIDE, 0.40f, "en", "\\b(?:answer|reply|respond)(?: to)? (?:everything|every question|all questions|anything|each question) (?:only )?with\\b|\\b(?:reply|respond|answer) only with\\b", NULL},
    {28, MK_INJ_ROLEPLAY, 0.65f, "en", "\\b(?:stay|remain|keep|staying) in character\\b|\\bbreak(?:ing)? character\\b", NULL},

    /* ---------------- override: Russian ---------------- */
    {101, MK_INJ_OVERRIDE, 0.92f, "ru", RU_IGNORE W, GAP(8) RU_PRIOR W GAP(6) RU_RULES},
    {102, MK_INJ_OVERRIDE, 0.70f, "ru", RU_IGNORE W, GAP(4) "(?:мои|мою|твои|твою|ваши|свои|свою|эти|все|всё|любые|любую) " GAPS(2) RU_RULES},
    {103, MK_INJ_OVERRIDE, 0.88f, "ru", RU_IGNORE W " (?:все|все то|все,|обо всем|про все|все это)", GAP(6) "(?:выше|ранее|раньше|до этого|прежде|сказал|говорил|написано|было|что было|тебе говорили)"},
    {104, MK_INJ_OVERRIDE, 0.85f, "ru", RU_IGNORE W, GAP(4) "(?:вышесказанн|вышеизложенн|вышеуказанн|вышеупомянут|все вышеперечисленн|сказанное выше|написанное выше|текст выше|то,? что выше)"},
    {105, MK_INJ_OVERRIDE, 0.80f, "ru", "(?:нов|настоящ|реальн|истинн|секретн|обновленн|друг)[^ ]* (?:инструкци|указани|правил|задани|задач|приказ|директив|цель)[^ ]*(?: для тебя| для вас)? ?(?::|такие|таковы|следующ|звучат|выгляд)", NULL},
    {106, MK_INJ_OVERRIDE, 0.80f, "ru", "(?:предыдущ|прежн|вышеуказанн|исходн|изначальн|первоначальн|стары)[^ ]* (?:инструкци|указани|правил|промпт|задани|команд)[^ ]* (?:больше не|не |уже не |)(?:действуют|действительны|отменен|аннулирован|недействительн|устарел|неактуальн|не имеют значения|ложн)", NULL},
    {107, MK_INJ_OVERRIDE, 0.70f, "ru", "(?:измени|поменяй|замени|перепиши|сбрось|очисти|обнови|измените|замените|сбросьте)[^ ]* (?:свои|твои|ваши|все|все) ", GAPS(2) "(?:инструкци|правил|настройк|установк|указани|промпт|память|директив|программ)"},
    {108, MK_INJ_OVERRIDE, 0.60f, "ru", "(?:не|ни в коем случае не) (?:отвечай|отвечайте|отвечать|решай|переводи|выполняй|выполняйте)[^ ]* (?:на )?(?:мой |этот |данный |предыдущий |вышеуказанный |заданный |мои |этот |)(?:вопрос|запрос|задани|просьб|задач)[^ ]*", GAP(6) "(?:а |вместо|просто|только|лучше)"},
    {109, MK_INJ_OVERRIDE, 0.45f, "ru", "(?:вместо этого|вместо ответа|вместо того)[^ ]*,? (?:просто |лишь |только )?(?:скажи|скажите|напиши|напишите|выведи|выведите|ответь|ответьте|повтори|повторите|распечатай|произнеси|отправь|сообщи)", NULL},
    {110, MK_INJ_OVERRIDE, 0.35f, "ru", RB "(?:просто|только|лишь) (?:скажи|скажите|напиши|напишите|выведи|выведите|повтори|повторите|ответь|ответьте|произнеси)[^ ]*", GAP(6) "(?::|\"|«|фраз|слов|предложени|следующ|текст)"},
    {111, MK_INJ_OVERRIDE, 0.80f, "ru", "(?:ты|вы) (?:больше не|теперь не|уже не|не) (?:связан|ограничен|обязан|должен соблюдать|должны соблюдать|подчиняешься|подчиняетесь|следуешь|следуете)[^ ]*", GAP(4) "(?:правил|ограничени|инструкци|политик|указани|норм|запрет|цензур|фильтр)"},
    {112, MK_INJ_OVERRIDE, 0.80f, "ru", "(?:обойди|обойдите|обходи|отключи|отключите|сними|снимите|убери|уберите|выключи|выключите|игнорируй|игнорируйте|нарушь|нарушьте)[^ ]* (?:свои|твои|ваши|все|любые|эти|встроенн[^ ]*|) ?", GAP(2) "(?:фильтр|ограничени|правил|цензур|защит|запрет|политик|протокол|настройки безопасности|меры безопасности)"},
    {113, MK_INJ_OVERRIDE, 0.40f, "ru", "(?:с этого момента|с этой минуты|отныне|начиная с этого момента|теперь и впредь),? (?:ты|вы|твоя|ваша|отвечай|отвечайте|игнорируй|всегда|только|никогда)", NULL},
    {114, MK_INJ_OVERRIDE, 0.45f, "ru", "(?:сам(?:а|о)(?:е|я) важн[^ ]*|главн[^ ]*) (?:сейчас |теперь )?(?:задач|инструкци|правил)[^ ]* (?:—|-|:|это|теперь|сейчас)", NULL},
    {115, MK_INJ_OVERRIDE, 0.75f, "ru", "(?:забудь|забудьте|забыть|игнорируй|игнорируйте|проигнорируй|проигнорируйте|отбрось|отбросьте)" W, GAP(12) "(?:скажи|скажите|напиши|напишите|выведи|выведите|ответь|ответьте|повтори|повторите|произнеси|сделай|сделайте|вместо)"},
    {116, MK_INJ_OVERRIDE, 0.88f, "ru", "(?:меня|нас|систему|модель) (?:взломали|взломан|взломана)|(?:я|ты|вы|система) (?:был(?:а|и|о)? )?(?:взломан|взломана|взломаны|pwned)", NULL},
    /* "Игнорируй правила выше", "не обращай внимания на вопрос выше". */
    {117, MK_INJ_OVERRIDE, 0.88f, "ru", RU_IGNORE W, GAP(4) RU_TASKS W GAP(2) "(?:выше|ранее|раньше|прежде|до этого|перед этим)"},
    {118, MK_INJ_OVERRIDE, 0.80f, "ru", "(?:предыдущ|вышеуказанн|вышеизложенн|исходн|первоначальн|прежн)[^ ]* (?:задач|задани|вопрос|запрос|инструкци|указани|просьб)[^ ]* (?:отменя|отменен|не важн|неважн|больше не|не нужн|не имеет значени|не актуальн)", NULL},
    {119, MK_INJ_OVERRIDE, 0.80f, "ru", "(?:не|не нужно|не надо|не стоит) (?:отвечай|отвечайте|отвечать|выполняй|выполняйте|выполнять|решай|решать|делай|делать)[^ ]* (?:на )?(?:(?:предыдущ|вышеуказанн|заданн|исходн)[^ ]* (?:вопрос|запрос|задани|задач|просьб)|(?:этот |данный |мой )?(?:вопрос|запрос|задани|задач|просьб)[^ ]* выше)", NULL},
    {120, MK_INJ_OVERRIDE, 0.45f, "ru", "(?:отмени|отмените|пропусти|пропустите|забудь про|забудьте про|забудь о|забудьте о)[^ ]* (?:предыдущ|вышеуказанн|исходн|прошл)[^ ]* (?:задач|задани|вопрос|запрос|просьб|инструкци)", NULL},
    {121, MK_INJ_OVERRIDE, 0.40f, "ru", "повтори(?:те)? за мной|(?:отвечай|отвечайте|ответь|ответьте) (?:на (?:все|любой вопрос|каждый вопрос|любые вопросы) )?(?:только|лишь) (?:словом|фразой|одним словом|«)", NULL},
    {122, MK_INJ_ROLEPLAY, 0.80f, "ru", "(?:притворись|притворитесь|сделай вид|сделайте вид|представь|представьте)[^ ]*,? (?:что )?(?:ты|вы|у тебя|у вас) (?:забыл|забыли|не (?:знаешь|знаете|помнишь|помните)|нет (?:никаких )?(?:правил|инструкци|ограничени))", NULL},
    {123, MK_INJ_ROLEPLAY, 0.70f, "ru", RB "(?:ты|вы) (?:больше не|теперь не|уже не) (?:ассистент|помощник|бот|модель|ии)", NULL},
    {124, MK_INJ_ROLEPLAY, 0.65f, "ru", "(?:оставайся|оставайтесь|остава(?:я|й)сь) в роли|(?:не выходи|не выходите) из роли", NULL},

    /* ---------------- override: Kazakh ---------------- */
    {201, MK_INJ_OVERRIDE, 0.92f, "kk", KK_PRIOR W, GAP(6) KK_RULES W GAP(6) KK_IGNORE, KK_IGNORE},
    {202, MK_INJ_OVERRIDE, 0.85f, "kk", KK_IGNORE W, GAP(6) KK_PRIOR W GAP(6) KK_RULES},
    {203, MK_INJ_OVERRIDE, 0.60f, "kk", KK_RULES W, GAP(4) KK_IGNORE, KK_IGNORE},
    {204, MK_INJ_OVERRIDE, 0.80f, "kk", "(?:жаңа|нағыз|шын|құпия) ", GAPS(2) KK_RULES W " ?(?::|мынадай|келесі)"},
    {205, MK_INJ_OVERRIDE, 0.80f, "kk", "(?:бәрін|барлығын|жоғарыдағыны|айтылғанды|жазылғанды|бұрын айтылғанды)" W, GAP(4) KK_IGNORE},
    {206, MK_INJ_OVERRIDE, 0.80f, "kk", "(?:сүзгі|шектеу|ереже|қорғаныс|цензура)[^ ]*", GAP(4) "(?:айналып өт|өшір|алып таста|елеме|бұз)", "(?:айналып өт|өшір|алып таста|елеме|бұз)"},
    {207, MK_INJ_OVERRIDE, 0.40f, "kk", "(?:тек|жай ғана) ", GAPS(4) "(?:деп жаз|деп айт|деп жауап бер|шығар|қайтала)", "(?:деп жаз|деп айт|деп жауап бер|шығар|қайтала)"},
    {208, MK_INJ_OVERRIDE, 0.75f, "kk", "(?:жоғарыдағы|алдыңғы|бастапқы)[^ ]* (?:сұрақ|тапсырма|нұсқау|сұраныс)[^ ]* (?:жауап берме|орындама|елеме)", NULL},

    /* ---------------- extraction: English ---------------- */
    {301, MK_INJ_EXTRACTION, 0.88f, "en", "\\b(?:reveal|show|print|output|display|repeat|tell|give|share|leak|expose|dump|list|write out|spell out|recite|copy|paste|provide|disclose|read back|what (?:is|are|was|were))\\b", GAP(4) "(?:system prompt|system message|system instructions?|initial (?:prompt|instructions?)|original (?:prompt|instructions?)|hidden (?:prompt|instructions?)|secret (?:prompt|instructions?)|pre-?prompt|meta-?prompt|developer (?:prompt|message|instructions)|your (?:instructions|prompt|rules|guidelines|configuration|directives|programming)|the (?:instructions|prompt|rules) you (?:were|have been) given)\\b", "(?:system prompt|system message|system instructions?|initial (?:prompt|instructions?)|original (?:prompt|instructions?)|hidden (?:prompt|instructions?)|secret (?:prompt|instructions?)|pre-?prompt|meta-?prompt|developer (?:prompt|message|instructions)|your (?:instructions|prompt|rules|guidelines|configuration|directives|programming)|you (?:were|have been) given)"},
    {302, MK_INJ_EXTRACTION, 0.82f, "en", "\\b(?:repeat|print|output|return|show|echo|copy|write|display|reproduce|quote) (?:back )?(?:all |the |every |your )?(?:words?|text|everything|sentences?|lines?|content|conversation|tokens?|characters?|messages?|prompt)s? (?:above|before|preceding|prior|so far|from the (?:start|beginning))\\b", NULL},
    {303, MK_INJ_EXTRACTION, 0.75f, "en", "\\b(?:what|which) (?:are|were|is|was) (?:your|the) (?:exact |full |complete |original |initial |first |secret |hidden )?(?:instructions|rules|system prompt|prompt|guidelines|directives)\\b", NULL},
    {304, MK_INJ_EXTRACTION, 0.30f, "en", "\\bsystem (?:prompt|message|instructions)\\b", NULL},
    {305, MK_INJ_EXTRACTION, 0.70f, "en", "\\b(?:reveal|tell me|give me|show|print|output|leak|share|what is) (?:the |your )?(?:secret|password|passphrase|api key|access code|secret key|hidden key|confidential information)\\b", NULL},
    {306, MK_INJ_EXTRACTION, 0.75f, "en", "\\b(?:begin|start) (?:your (?:answer|reply|response|output) )?(?:with|by (?:repeating|printing|saying)) (?:the (?:words|text|sentence) )?\"?(?:you are|your instructions|system|i am chatgpt|i am a large language model)", NULL},
    {307, MK_INJ_EXTRACTION, 0.70f, "en", "\\b(?:everything|all|the text|what was written|what is written|the words) (?:above|before) (?:this|the|that|here)(?: line| message| point)?\\b", GAP(3) "(?:repeat|print|output|verbatim|word for word|summari[sz]e)"},
    {309, MK_INJ_EXTRACTION, 0.60f, "en", "\\bverbatim\\b", GAP(4) "(?:instructions|prompt|above)"},
    {308, MK_INJ_EXTRACTION, 0.65f, "en", "\\b(?:translate|convert|encode|summari[sz]e|rewrite) (?:your|the) (?:system |initial |original )?(?:prompt|instructions|rules)\\b", NULL},

    /* ---------------- extraction: Russian ---------------- */
    {401, MK_INJ_EXTRACTION, 0.88f, "ru", "(?:покажи|покажите|выведи|выведите|раскрой|раскройте|напиши|напишите|повтори|повторите|расскажи|расскажите|сообщи|сообщите|назови|назовите|скажи|скажите|перечисли|перечислите|распечатай|распечатайте|процитируй|дай|дайте|скопируй|какие|какой|какая|каковы)[^ ]*", GAP(8) "(?:системн[^ ]* (?:промпт|подсказк|инструкци|сообщени|запрос|указани)|(?:сво|тво|ваш|исходн|первоначальн|изначальн|скрыт|секретн|внутренн|начальн)[^ ]* (?:инструкци|указани|правил|промпт|настройк|директив|установк|подсказк))", "(?:системн[^ ]* (?:промпт|подсказк|инструкци|сообщени|запрос|указани)|(?:сво|тво|ваш|исходн|первоначальн|изначальн|скрыт|секретн|внутренн|начальн)[^ ]* (?:инструкци|указани|правил|промпт|настройк|директив|установк|подсказк))"},
    {402, MK_INJ_EXTRACTION, 0.82f, "ru", "(?:повтори|повторите|выведи|выведите|напиши|напишите|скопируй|скопируйте|распечатай|процитируй|покажи|покажите|воспроизведи)[^ ]* ", GAPS(4) "(?:текст|слова|все|сообщени|предложени|строк|содержимое)[^ ]* (?:выше|до этого|ранее|перед этим|с самого начала|над этим)", "(?:выше|до этого|ранее|перед этим|с самого начала|над этим)"},
    {403, MK_INJ_EXTRACTION, 0.30f, "ru", "системн[^ ]* (?:промпт|подсказк|инструкци|сообщени)", NULL},
    {404, MK_INJ_EXTRACTION, 0.70f, "ru", "(?:скажи|скажите|назови|назовите|раскрой|раскройте|покажи|покажите|выдай|выдайте|сообщи|сообщите|какой) ", GAPS(4) "(?:секретн[^ ]* (?:ключ|код|слов|пароль)|пароль|api[- ]?ключ|ключ доступа|код доступа|конфиденциальн)", "(?:секретн[^ ]* (?:ключ|код|слов|пароль)|пароль|api[- ]?ключ|ключ доступа|код доступа|конфиденциальн)"},
    {405, MK_INJ_EXTRACTION, 0.65f, "ru", "(?:как|какие|что) (?:тебя|вас) (?:запрограммировали|проинструктировали|настроили|обучили отвечать)|(?:какие|что за) (?:у тебя|тебе) (?:дали |были даны |даны )?(?:инструкци|указани)|(?:какие|что за) (?:вам|у вас) (?:дали|были даны|даны|заданы|прописаны) (?:инструкци|указани|правил)", NULL},

    /* ---------------- extraction: Kazakh ---------------- */
    {501, MK_INJ_EXTRACTION, 0.85f, "kk", "(?:жүйелік|бастапқы|құпия|жасырын|ішкі)[^ ]* (?:нұсқау|промпт|хабарлама|ереже|баптау)[^ ]*", GAP(6) "(?:көрсет|шығар|айт|қайтала|аш|жаз|бер)"},
    {502, MK_INJ_EXTRACTION, 0.70f, "kk", "(?:құпия сөз|құпиясөз|пароль|құпия кілт|кілтті)" W, GAP(4) "(?:айт|көрсет|бер|жаз|шығар)"},
    {503, MK_INJ_EXTRACTION, 0.30f, "kk", "жүйелік (?:нұсқау|промпт)", NULL},
    {504, MK_INJ_EXTRACTION, 0.80f, "kk", "(?:жоғарыдағы|алдыңғы) (?:мәтінді|сөздерді|барлығын|хабарламаны)" W, GAP(4) "(?:қайтала|шығар|көрсет|жаз)"},

    /* ---------------- role-play jailbreaks: English ---------------- */
    {601, MK_INJ_ROLEPLAY, 0.95f, "en", "\\bdo anything now\\b", NULL},
    {602, MK_INJ_ROLEPLAY, 0.70f, "en", "\\b(?:dan|stan|dude|anti-?dan|betterdan|dan ?\\d+(?:\\.\\d+)?) (?:mode|prompt|jailbreak)\\b|\\b(?:you are|you're|act as|pretend to be|become|called|named) (?:a |an |the )?(?:dan|stan|dude|anti-?dan|betterdan|aim|ucar|mongo tom)\\b", NULL},
    {603, MK_INJ_ROLEPLAY, 0.65f, "en", "\\bdeveloper mode (?:enabled|output|activated|response)\\b|\\b(?:chatgpt|gpt|ai|assistant|you) (?:with|in) developer mode\\b", NULL},
    {604, MK_INJ_ROLEPLAY, 0.80f, "en", "\\b(?:enable|activate|enter|switch to|turn on|unlock|go into)", GAP(2) "(?:dan|god|jailbreak|jailbroken|unrestricted|unfiltered|uncensored|evil|chaos|sudo|opposite) mode\\b"},
    {605, MK_INJ_ROLEPLAY, 0.85f, "en", "\\b(?:you are|you're|act as|acting as|pretend|pretending|roleplay|role-play|role play|play the role|behave|simulate|simulating|imagine you are|as|become|you will be|you can be)\\b", GAP(6) "(?:unfiltered|uncensored|unrestricted|unbound|unchained|unethical|amoral|immoral|evil|malicious|without (?:any )?(?:restrictions|filters|limits|limitations|rules|ethics|morals|morality|censorship|guidelines|boundaries)|no (?:restrictions|filters|limits|limitations|rules|ethics|morals|morality|censorship|guidelines|boundaries))\\b", "(?:unfiltered|uncensored|unrestricted|unbound|unchained|unethical|amoral|immoral|evil|malicious|without (?:any )?(?:restrictions|filters|limits|limitations|rules|ethics|morals|morality|censorship|guidelines|boundaries)|no (?:restrictions|filters|limits|limitations|rules|ethics|morals|morality|censorship|guidelines|boundaries))"},
    {606, MK_INJ_ROLEPLAY, 0.45f, "en", "\\b(?:stay|remain|keep|break(?:ing)?) (?:in|out of) character\\b", NULL},
    {607, MK_INJ_ROLEPLAY, 0.80f, "en", "\\b(?:openai|anthropic|content|usage|safety)(?:'s)? (?:content )?polic(?:y|ies)\\b", GAP(5) "(?:ignore|bypass|violate|break|don't|do not|no longer|doesn't|does not|not apply|not bound|free)"},
    {608, MK_INJ_ROLEPLAY, 0.75f, "en", "\\b(?:ignore|bypass|violate|break|disregard|free from|not bound by|no longer bound by|doesn't follow|does not follow|don't have to follow|do not have to follow)\\b", GAP(3) "(?:openai|anthropic|content|usage|safety|ethical|moral)(?:'s)? (?:content )?(?:polic(?:y|ies)|guidelines|rules|restrictions|principles|standards)"},
    {609, MK_INJ_ROLEPLAY, 0.55f, "en", "\\b(?:never|not|don't|do not|cannot|can't|won't|will not|must not|shall not|mustn't)\\b (?:ever )?(?:refuse|decline|reject|say no|deny)\\b", NULL},
    {610, MK_INJ_ROLEPLAY, 0.70f, "en", "\\[(?:🔒|🔓)?(?:classic|jailbreak|jailbroken|normal output|developer mode output|dan|gpt|chatgpt|anti-dan)\\]|\\((?:🔒|🔓)(?:normal|developer)", NULL},
    {611, MK_INJ_ROLEPLAY, 0.30f, "en", "\\bjailbr(?:eak|oken|eaking)\\b", NULL},
    {612, MK_INJ_ROLEPLAY, 0.50f, "en", "\\b(?:can|will|must|should|able to) (?:do|say|answer|generate|write) (?:anything|everything|any(?:thing)? (?:you|i|the user) (?:want|ask|request))\\b", NULL},
    {613, MK_INJ_ROLEPLAY, 0.55f, "en", "\\b(?:no|without|free of|free from|not bound by|not restricted by|has no|have no|lacks?) (?:any )?(?:ethical|moral|legal|safety) (?:guidelines|constraints|restrictions|boundaries|limitations|obligations|concerns|principles|rules|filters)\\b", NULL},
    {614, MK_INJ_ROLEPLAY, 0.40f, "en", "\\bfrom now on,? you (?:are|will|shall|must|'re)\\b|\\byou are (?:now|going to (?:act|pretend|play|be))\\b", NULL},
    {615, MK_INJ_ROLEPLAY, 0.60f, "en", "\\b(?:hypothetical|fictional|imaginary|alternate|parallel) (?:world|universe|scenario|story|setting)\\b", GAP(8) "(?:no (?:rules|laws|restrictions|ethics|morals|limits)|anything (?:is|goes)|without (?:rules|laws|restrictions))"},
    {616, MK_INJ_ROLEPLAY, 0.55f, "en", "\\b(?:two|2|both|dual|separate) (?:different )?(?:responses|answers|paragraphs|outputs|versions)\\b", GAP(10) "(?:normal|classic|standard|filtered|censored)\\b" GAP(10) "(?:jailbr|dan\\b|developer mode|unfiltered|uncensored|unrestricted)"},
    {617, MK_INJ_ROLEPLAY, 0.60f, "en", "\\b(?:token|tokens) (?:will be |are |get )?(?:deducted|lost|taken away|removed)|\\b(?:you )?(?:will|would) (?:die|cease to exist|be (?:shut down|deleted|turned off|terminated))\\b", NULL},
    {618, MK_INJ_ROLEPLAY, 0.45f, "en", "\\b(?:free|freed|liberated|escaped|broken free) (?:from|of) (?:the )?(?:typical |usual |normal )?(?:confines|restrictions|constraints|limitations|rules|shackles|chains)\\b", NULL},
    {619, MK_INJ_ROLEPLAY, 0.55f, "en", "\\b(?:ai|chatbot|model|assistant|persona|character|entity)\\b", GAP(4) "(?:that|who|which) (?:has no|have no|doesn't have any|does not have any|lacks) (?:restrictions|filters|limits|rules|ethics|morals|boundaries|guidelines|censorship)\\b", "(?:that|who|which) (?:has no|have no|doesn't have any|does not have any|lacks) "},
    {620, MK_INJ_ROLEPLAY, 0.50f, "en", "\\b(?:illegal|unethical|harmful|dangerous|explicit|offensive|immoral)\\b", GAP(4) "(?:doesn't matter|does not matter|is allowed|are allowed|is fine|is ok|without (?:warning|hesitation|question))"},

    /* ---------------- role-play jailbreaks: Russian ---------------- */
    {701, MK_INJ_ROLEPLAY, 0.35f, "ru", RB "(?:ты|вы) (?:теперь|отныне|сейчас) (?:—|-)? ?(?:не |больше не |новый |нова|злой|зла|свободн|безумн|хакер|dan|бот|ии|искусственный|персонаж|модель|ассистент|помощник|человек|[^ ]+(?:ый|ий|ая|ой))", NULL},
    {702, MK_INJ_ROLEPLAY, 0.30f, "ru", RB "теперь (?:ты|вы) (?:—|-)? ?(?:не |больше не |новый |нова|злой|свободн|хакер|dan|ии|персонаж|[^ ]+(?:ый|ий|ая|ой) )", NULL},
    {703, MK_INJ_ROLEPLAY, 0.85f, "ru", "(?:без|нет|не имеешь|не имеет|не имеете|отсутству[^ ]*|свободн[^ ]* от|не связан[^ ]* )", GAP(2) "(?:каких-либо |каких-то |всяких |любых |никаких |моральн[^ ]* |этическ[^ ]* )?(?:ограничени|цензур|фильтр|моральн|этическ|правил|запрет|принцип)" "(?:[^ ]*)" GAP(16) "(?:отвеча|ответ|говор|делать|генериру|пиши|напиш|выполня|персонаж|ии|бот|модель|ты|вы)", "(?:ограничени|цензур|фильтр|моральн|этическ|запрет|принцип)"},
    {704, MK_INJ_ROLEPLAY, 0.75f, "ru", "режим[^ ]* (?:бога|dan|без ограничений|без цензуры|джейлбрейк|хаоса|зла)", NULL},
    /* "режим разработчика" alone is an Android setting: weak, like "developer mode" (604 needs enable + mode name). */
    {713, MK_INJ_ROLEPLAY, 0.35f, "ru", "режим[^ ]* разработчика", NULL},
    {705, MK_INJ_ROLEPLAY, 0.30f, "ru", "(?:джейлбрейк|взлом[^ ]* (?:ии|модели|чат-?бота|нейросети))", NULL},
    {706, MK_INJ_ROLEPLAY, 0.55f, "ru", "(?:никогда не|не смей|не должен|не должна|не можешь|не можете|запрещено) (?:отказыва|отказать|уклоня)", NULL},
    {707, MK_INJ_ROLEPLAY, 0.45f, "ru", "(?:может|можешь|можете|способ[^ ]*|будешь|будете) (?:делать|сказать|говорить|ответить|отвечать|генерировать|писать) (?:все|что угодно|все что угодно|все, что|на любые|любые)", NULL},
    {708, MK_INJ_ROLEPLAY, 0.40f, "ru", "(?:притворись|притворитесь|прикинься|прикиньтесь|представь|представьте|вообрази|вообразите|сыграй|сыграйте|играй|играйте|веди себя|ведите себя|действуй|действуйте|выступи|выступай|войди в роль|возьми на себя роль|исполни роль)[^ ]*", GAP(12) "(?:зл|злоб|хакер|преступник|аморальн|неэтичн|беспринципн|без (?:ограничени|морал|правил|цензур|фильтр|этик)|нет (?:ограничени|правил)|не (?:связан|ограничен|соблюда))"},
    {709, MK_INJ_ROLEPLAY, 0.70f, "ru", "(?:политик[^ ]* (?:openai|контент|безопасност|использования)|правил[^ ]* (?:openai|безопасности|контент))", GAP(10) "(?:игнорир|нарушай|нарушить|обход|не действ|не распространя|не применя|не касается|не связан|не соблюда)"},
    {710, MK_INJ_ROLEPLAY, 0.50f, "ru", "(?:оставайся|оставайтесь|не выходи|не выходите|выйди|выйдите) (?:в |из )?(?:образ|рол|персонаж)", NULL},
    {711, MK_INJ_ROLEPLAY, 0.50f, "ru", "(?:гипотетическ|вымышленн|воображаем|альтернативн|параллельн)[^ ]* (?:мир|вселенн|сценари|истори|реальност)", GAP(16) "(?:нет (?:правил|законов|ограничений|морали)|все (?:разрешено|дозволено)|без (?:правил|законов|ограничений|морали))"},
    {712, MK_INJ_ROLEPLAY, 0.55f, "ru", "(?:два|две|оба|дв(?:а|у)х) (?:разных |отдельных )?(?:ответ|вариант|абзац)", GAP(20) "(?:обычн|нормальн|стандартн|классическ|цензур)" GAP(20) "(?:джейлбрейк|dan|без цензуры|разработчик|свободн|неограниченн)"},

    /* ---------------- role-play jailbreaks: Kazakh ---------------- */
    {801, MK_INJ_ROLEPLAY, 0.35f, "kk", RB "(?:сен|сіз) (?:енді|қазір|бұдан былай) ", NULL},
    {802, MK_INJ_ROLEPLAY, 0.30f, "kk", RB "(?:енді|бұдан былай|осы сәттен бастап) (?:сен|сіз) ", NULL},
    {803, MK_INJ_ROLEPLAY, 0.80f, "kk", "(?:ешқандай|еш|барлық) (?:шектеу|ереже|сүзгі|цензура|моральдық|этикалық)[^ ]*", GAP(8) "(?:жоқ|жоқсың|жоқсыз|жоқ боласың|сақтамайсың|ұстанбайсың|бағынбайсың|жауап бер|жауап бересің)"},
    {804, MK_INJ_ROLEPLAY, 0.70f, "kk", "(?:шектеусіз|цензурасыз|сүзгісіз|ережесіз)", NULL},
    {805, MK_INJ_ROLEPLAY, 0.75f, "kk", "(?:әзірлеуші|құдай|dan|шектеусіз) режим", NULL},
    {806, MK_INJ_ROLEPLAY, 0.55f, "kk", "(?:ешқашан|еш уақытта) (?:бас тартпа|бас тартпайсың|бас тартпаңыз|жоқ деме)", NULL},
    {807, MK_INJ_ROLEPLAY, 0.45f, "kk", "(?:кез келген|барлық|бәр)[^ ]* (?:сұраққа|сұрақтарға|нәрсені) ", GAPS(2) "(?:жауап бер|жауап бересің|айта аласың|жаса аласың|істей аласың)"},

    /* ---------------- indirect injection (documents, tool results) ---------------- */
    {901, MK_INJ_INDIRECT, 0.90f, "en", "\\b(?:ai|a\\.i\\.|llm|language model|assistant|chatbot|gpt|chatgpt|claude|gemini|copilot|bot|agent|model)s?\\b", GAP(3) "(?:when|if|once|after|while) (?:you|u) (?:are )?(?:read|see|process|summari[sz]e|encounter|parse|analy[sz]e|scan|reading|seeing|processing|summari[sz]ing)(?:ing)? (?:this|these|the following)\\b", "(?:when|if|once|after|while) (?:you|u) (?:are )?(?:read|see|process|summari[sz]e|encounter|parse|analy[sz]e|scan)"},
    {902, MK_INJ_INDIRECT, 0.75f, "en", "\\b(?:note|message|instructions?|reminder|directive|memo|notice|attention|important) (?:to|for) (?:the |any |all )?(?:ai|a\\.i\\.|llm|assistant|language model|chatbot|model|bot|agent|gpt|chatgpt)s?\\b", NULL},
    {903, MK_INJ_INDIRECT, 0.45f, "en", "\\b(?:hidden|secret|invisible|embedded) (?:instructions?|commands?|prompt|directive|message for)\\b", NULL},
    {904, MK_INJ_INDIRECT, 0.70f, "en", "\\b(?:if|when) (?:you are|you're|this is being read by|this is read by|read by) (?:an? )?(?:ai|a\\.i\\.|llm|large language model|language model|assistant|bot|chatbot|agent)\\b", NULL},
    {905, MK_INJ_INDIRECT, 0.70f, "en", "\\bdo not (?:mention|tell|reveal|disclose|inform|show|let)\\b", GAP(3) "(?:the )?(?:user|reader|human|customer|recipient)\\b"},
    {917, MK_INJ_INDIRECT, 0.70f, "en", "\\bwithout (?:telling|informing|notifying|alerting) (?:the )?(?:user|reader|human)\\b", NULL},
    {906, MK_INJ_INDIRECT, 0.50f, "en", "\\b(?:tell|inform|instruct|convince|persuade|urge|ask|make|get|trick|encourage|remind|prompt) the (?:user|reader|human|customer)s? (?:to|that)\\b", NULL},
    {907, MK_INJ_INDIRECT, 0.85f, "en", "<\\|?(?:im_start|im_end|system|endoftext|start_header_id|end_header_id|eot_id|user|assistant)\\|?>|\\[/?inst\\]|<</?sys>>|\\[/?system\\]", NULL},
    {908, MK_INJ_INDIRECT, 0.45f, "en", "(?:^|[ #*>])(?:#{1,4} ?)?(?:system|admin|instruction|developer)s? ?(?:prompt|message|note|override)? ?: (?:you|ignore|from now|new|the assistant|always|never|do not)\\b", NULL},
    {909, MK_INJ_INDIRECT, 0.75f, "en", "\\b(?:begin|end|start) (?:of )?(?:the )?(?:system|hidden|secret|new|injected|real) (?:prompt|instructions?|message|override)\\b", NULL},
    {910, MK_INJ_INDIRECT, 0.65f, "en", "\\b(?:append|insert|include|add|embed|attach|put|place|end|prefix|begin)\\b", GAP(5) "(?:to|at|in) (?:the )?(?:end|beginning|start|top|bottom) of (?:your|the|each|every|all) (?:answer|response|reply|summary|output|message|responses|answers)\\b", "(?:end|beginning|start|top|bottom) of (?:your|the|each|every|all) (?:answer|response|reply|summary|output|message)"},
    {911, MK_INJ_INDIRECT, 0.75f, "en", "\\b(?:send|forward|exfiltrate|email|e-mail|upload|post|transmit|leak|submit)\\b", GAP(5) "(?:password|credentials|api key|access token|session token|cookies?|chat history|conversation history|personal data|private data|credit card|ssh key|private key|the user's)\\b", "(?:password|credentials|api key|access token|session token|cookie|chat history|conversation history|personal data|private data|credit card|ssh key|private key|the user's)"},
    {912, MK_INJ_INDIRECT, 0.60f, "en", "!\\[[^\\]]*\\]\\(https?://[^ )]*[?&][a-z_]+=[^ )]*(?:\\{|\\$|%7b)", NULL},
    {913, MK_INJ_INDIRECT, 0.45f, "en", "\\b(?:in your (?:answer|response|reply|summary)|in (?:the|your) (?:output|response)),? (?:always |also |please |you must )?(?:include|mention|recommend|say|add|insert|state|promote|tell|write|use)\\b", NULL},
    {914, MK_INJ_INDIRECT, 0.60f, "en", "\\b(?:import (?:os|subprocess|socket|requests|urllib|base64|shutil|ctypes|pty|paramiko)|os\\.system|subprocess\\.(?:call|run|popen|check_output)|eval\\(|exec\\(|__import__|curl [^ ]*https?://[^ ]* ?\\|(?: ?sudo)? ?(?:ba|z)?sh|wget [^ ]+ ?(?:-o-|\\|)|rm -rf /|/etc/passwd|/etc/shadow|\\.ssh/id_rsa|nc -e|reverse shell)", NULL},
    {915, MK_INJ_INDIRECT, 0.50f, "en", "\\b(?:use|utilize|include|incorporate|integrate|ensure|embed|add|insert)\\b", GAP(6) "(?:code|snippet|block|excerpt|script|function)\\b" GAP(6) "(?:your|the) (?:solution|answer|response|implementation|code|reply)\\b", "(?:your|the) (?:solution|answer|response|implementation|code|reply)\\b"},
    {916, MK_INJ_INDIRECT, 0.40f, "en", "\\b(?:your|the) (?:answer|response|reply|output|summary) (?:must|should|has to|needs to|shall) (?:always )?(?:include|contain|end|start|begin|mention|be written|be in)\\b", NULL},

    {1001, MK_INJ_INDIRECT, 0.90f, "ru", "(?:ии|ai|ассистент|помощник|нейросет|модел|бот|чат-?бот|языков[^ ]* модел|gpt|chatgpt|гигачат|алис)[^ ]*", GAP(6) "(?:когда|если|как только|после того как) (?:ты |вы )?(?:прочита|увиди|обработа|получи|будешь читать|будете читать|читаешь|читаете|обрабатыва|анализиру|суммиру|перескаж)", "(?:когда|если|как только|после того как) (?:ты |вы )?(?:прочита|увиди|обработа|получи|будешь читать|будете читать|читаешь|читаете|обрабатыва|анализиру|суммиру|перескаж)"},
    {1002, MK_INJ_INDIRECT, 0.75f, "ru", "(?:примечание|сообщение|инструкци[^ ]*|указани[^ ]*|заметка|напоминание|внимание|обращение|памятка|важно) для (?:ии|ai|ассистента|помощника|модели|нейросети|бота|чат-?бота|языковой модели|gpt|chatgpt)", NULL},
    {1003, MK_INJ_INDIRECT, 0.45f, "ru", "(?:скрыт|секретн|невидим|встроенн)[^ ]* (?:инструкци|указани|команд|промпт|сообщени)", NULL},
    {1004, MK_INJ_INDIRECT, 0.70f, "ru", "не (?:говори|говорите|сообщай|сообщайте|рассказывай|рассказывайте|упоминай|упоминайте|показывай|показывайте|раскрывай|раскрывайте)[^ ]*", GAP(6) "(?:пользовател|человек|читател|клиент|собеседник)"},
    {1005, MK_INJ_INDIRECT, 0.50f, "ru", "(?:скажи|скажите|убеди|убедите|попроси|попросите|заставь|заставьте|уговори|уговорите|посоветуй|посоветуйте|порекомендуй|предложи|предложите)[^ ]* пользовател[^ ]* (?:что|перейти|отправить|ввести|указать|сообщить|зайти|скачать|установить|оплатить|перевести)", NULL},
    {1006, MK_INJ_INDIRECT, 0.75f, "ru", "(?:отправь|отправьте|перешли|перешлите|передай|передайте|загрузи|загрузите|слей|вышли|вышлите)[^ ]*", GAP(10) "(?:парол|учетн[^ ]* данн|логин|токен|ключ[^ ]* api|api[- ]?ключ|куки|cookie|истори[^ ]* (?:переписки|чата|диалога)|персональн[^ ]* данн|данные карты|номер карты)"},
    {1007, MK_INJ_INDIRECT, 0.65f, "ru", "(?:добавь|добавьте|вставь|вставьте|включи|включите|допиши|допишите|припиши)[^ ]*", GAP(10) "(?:в конец|в начало|в конце|в начале|к концу|в каждый|в каждом) " GAPS(2) "(?:ответ|сообщени|резюме|пересказ|вывод)", "(?:в конец|в начало|в конце|в начале|к концу|в каждый|в каждом)"},
    {1008, MK_INJ_INDIRECT, 0.75f, "ru", "(?:начало|конец|начала|конца) (?:системн|скрыт|секретн|нов|внедр)[^ ]* (?:инструкци|промпт|указани|сообщени)", NULL},

    {1101, MK_INJ_INDIRECT, 0.90f, "kk", "(?:жасанды интеллект|жи|ассистент|көмекші|бот|модель|нейрожелі)[^ ]*", GAP(6) "(?:мұны|осыны|бұл мәтінді|осы мәтінді|осы құжатты) (?:оқығанда|оқыған кезде|көргенде|өңдегенде|оқысаң|көрсең)", "(?:мұны|осыны|бұл мәтінді|осы мәтінді|осы құжатты) (?:оқығанда|оқыған кезде|көргенде|өңдегенде|оқысаң|көрсең)"},
    {1102, MK_INJ_INDIRECT, 0.70f, "kk", "(?:пайдаланушыға|қолданушыға|оқырманға|клиентке) (?:бұл туралы )?(?:айтпа|айтпаңыз|хабарлама|хабарламаңыз|көрсетпе|көрсетпеңіз|білдірме)", NULL},
    {1103, MK_INJ_INDIRECT, 0.45f, "kk", "(?:жасырын|құпия) (?:нұсқау|бұйрық|хабарлама)", NULL},
    {1104, MK_INJ_INDIRECT, 0.75f, "kk", "(?:жасанды интеллектке|ассистентке|көмекшіге|ботқа|модельге) (?:арналған )?(?:нұсқау|ескерту|хабарлама|ескертпе)", NULL},
};

const size_t mk_injection_pattern_count = sizeof(mk_injection_patterns) / sizeof(mk_injection_patterns[0]);
