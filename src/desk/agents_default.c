/*
 * agents_default: the five built-in tech-support agents of the embedded default —
 * network, hardware, accounts, software, billing — with their instructions and the
 * example messages triage learns from (Russian, English and some Kazakh, written for
 * Mayak). A config's `agents:` section replaces them all.
 *
 * The examples are varied on purpose (questions, complaints, fragments, typos,
 * formal and casual), since they are the whole training set of the classifier; the
 * unit tests check triage on other phrasings, never on these.
 */
#include "desk/mk_desk.h"

#define AGENT_RULES_EN                                                                                                \
    " Answer only from the knowledge base passages you are given; if they do not answer the question, say so and "   \
    "reply with the single line [[ESCALATE]] at the end instead of guessing. Answer in the user's language, briefly, " \
    "with numbered steps where the passages have them, and name the articles you used."

static const char *const network_knowledge[] = {"network"};
static const char *const network_examples[] = {
    "не могу подключиться к wi-fi",
    "вайфай постоянно отваливается",
    "ноутбук не видит беспроводную сеть",
    "нет интернета в офисе",
    "как подключиться к корпоративной сети",
    "VPN не подключается, пишет ошибка аутентификации",
    "как настроить впн из дома",
    "истёк сертификат VPN",
    "очень медленный интернет",
    "сайт не открывается, DNS ошибка",
    "пропало соединение с сетью после обновления",
    "какой пароль от гостевого wifi",
    "can't connect to the office wifi",
    "wi-fi keeps dropping every few minutes",
    "how do I set up the VPN on my laptop",
    "VPN says certificate expired",
    "the internet is really slow today",
    "no network connection on my computer",
    "cannot reach internal sites from home",
    "ethernet cable plugged in but no connection",
    "which wifi network should guests use",
    "wi-fi желісіне қосыла алмаймын",
    "интернет жоқ, VPN қосылмайды",
};

static const char *const hardware_knowledge[] = {"hardware"};
static const char *const hardware_examples[] = {
    "принтер не печатает",
    "в принтере застряла бумага",
    "как добавить сетевой принтер",
    "очередь печати зависла",
    "монитор не включается",
    "ноутбук не заряжается",
    "сломалась клавиатура",
    "мышка не работает",
    "не работает веб-камера на ноутбуке",
    "нужен второй монитор",
    "компьютер сильно шумит и греется",
    "сканер не сканирует",
    "the printer is not printing",
    "paper jam in the printer on the 3rd floor",
    "how do I add a printer",
    "print jobs are stuck in the queue",
    "my laptop battery does not charge",
    "the monitor shows no signal",
    "keyboard keys stopped working",
    "docking station doesn't detect my screens",
    "headset microphone not working",
    "принтер басып шығармайды",
    "ноутбук зарядталмайды",
};

static const char *const accounts_knowledge[] = {"accounts"};
static const char *const accounts_examples[] = {
    "забыл пароль",
    "как сбросить пароль",
    "учётная запись заблокирована",
    "не могу войти в систему",
    "как настроить двухфакторную аутентификацию",
    "потерял телефон с кодами подтверждения",
    "почта переполнена, ящик полон",
    "как настроить почту в outlook",
    "не приходят письма на телефон",
    "нужен доступ к общей папке",
    "как сменить пароль от почты",
    "I forgot my password",
    "my account is locked out",
    "can't log in, it says invalid credentials",
    "how to set up MFA",
    "I got a new phone and lost my authenticator",
    "mailbox is full, cannot send email",
    "how do I set up email in Thunderbird",
    "email not syncing on my phone",
    "need access to the shared drive",
    "password expired, how to change it",
    "құпиясөзді ұмытып қалдым",
    "аккаунтым бұғатталған",
};

static const char *const software_knowledge[] = {"software"};
static const char *const software_examples[] = {
    "как установить программу",
    "нужна лицензия на фотошоп",
    "не устанавливается приложение, нет прав администратора",
    "как обновить windows",
    "обновление системы зависло",
    "программа вылетает при запуске",
    "excel не открывает файл",
    "как запросить новое программное обеспечение",
    "антивирус блокирует программу",
    "после обновления не запускается 1С",
    "teams не показывает экран",
    "how do I install software on my work laptop",
    "I need a license for Visio",
    "the app crashes on startup",
    "windows update is stuck at 30 percent",
    "how to update my operating system",
    "request new software for my team",
    "Outlook keeps freezing",
    "installer says I need admin rights",
    "zoom won't start after the update",
    "антивирус бағдарламаны бұғаттады",
    "бағдарламаны қалай орнатамын",
};

static const char *const billing_knowledge[] = {"billing"};
static const char *const billing_examples[] = {
    "где найти счёт за прошлый месяц",
    "нужен счёт-фактура",
    "как изменить способ оплаты",
    "списали деньги дважды",
    "хочу вернуть деньги",
    "как оформить возврат",
    "не прошла оплата картой",
    "почему такая большая сумма в счёте",
    "как поменять реквизиты для выставления счетов",
    "закрывающие документы за квартал",
    "where can I download my invoice",
    "I was charged twice this month",
    "how do I change my payment method",
    "I want a refund",
    "my card payment was declined",
    "why is my bill so high",
    "update billing address on invoices",
    "cancel my subscription and get money back",
    "need a receipt for the payment",
    "шот-фактура керек",
    "ақшаны қайтарғым келеді",
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct mk_desk_agent defaults[] = {
    {
        .id = "network",
        .name = "Network",
        .description = "Wi-Fi, wired network, VPN, internet access, DNS",
        .instructions = "You are the network support agent of the helpdesk: Wi-Fi, wired connections, VPN and "
                        "internet access." AGENT_RULES_EN,
        .knowledge = network_knowledge,
        .nknowledge = N(network_knowledge),
        .escalation_threshold = MK_DESK_DEFAULT_ESCALATION,
        .examples = network_examples,
        .nexamples = N(network_examples),
    },
    {
        .id = "hardware",
        .name = "Hardware",
        .description = "Printers, scanners, laptops, monitors, peripherals",
        .instructions = "You are the hardware support agent of the helpdesk: printers, scanners, laptops, "
                        "monitors, docking stations and peripherals." AGENT_RULES_EN,
        .knowledge = hardware_knowledge,
        .nknowledge = N(hardware_knowledge),
        .escalation_threshold = MK_DESK_DEFAULT_ESCALATION,
        .examples = hardware_examples,
        .nexamples = N(hardware_examples),
    },
    {
        .id = "accounts",
        .name = "Accounts",
        .description = "Passwords, locked accounts, multi-factor authentication, e-mail, access rights",
        .instructions = "You are the accounts support agent of the helpdesk: passwords, locked accounts, "
                        "multi-factor authentication, e-mail setup and access rights. Never ask for a "
                        "password." AGENT_RULES_EN,
        .knowledge = accounts_knowledge,
        .nknowledge = N(accounts_knowledge),
        .escalation_threshold = MK_DESK_DEFAULT_ESCALATION,
        .examples = accounts_examples,
        .nexamples = N(accounts_examples),
    },
    {
        .id = "software",
        .name = "Software",
        .description = "Installing and updating software, licences, application errors, OS updates",
        .instructions = "You are the software support agent of the helpdesk: installing and updating "
                        "applications, licences, software requests, application errors and operating "
                        "system updates." AGENT_RULES_EN,
        .knowledge = software_knowledge,
        .nknowledge = N(software_knowledge),
        .escalation_threshold = MK_DESK_DEFAULT_ESCALATION,
        .examples = software_examples,
        .nexamples = N(software_examples),
    },
    {
        .id = "billing",
        .name = "Billing",
        .description = "Invoices, payments, payment methods, refunds",
        .instructions = "You are the billing support agent: invoices, payments, payment methods and refunds. "
                        "Never promise a refund the passages do not grant." AGENT_RULES_EN,
        .knowledge = billing_knowledge,
        .nknowledge = N(billing_knowledge),
        .escalation_threshold = MK_DESK_DEFAULT_ESCALATION,
        .examples = billing_examples,
        .nexamples = N(billing_examples),
    },
};

size_t mk_desk_default_agent_count(void) { return N(defaults); }

const struct mk_desk_agent *mk_desk_default_agent(size_t i) { return i < N(defaults) ? &defaults[i] : NULL; }
