#!/usr/bin/env python3
"""gen_ru_ids: synthetic Russian identifiers embedded in Russian sentences, for the
PII detector's evaluation (bench/guard/eval_pii) and as test material.

Writes JSON lines: {"text": ..., "spans": [{"type", "start", "end", "valid",
"format", "context"}]} with start/end as character (code point) offsets into text.
"valid": false marks a deliberately wrong sample (a broken check digit, a wrong
length or shape) that the detector must NOT report as that type; such spans are
negatives in the evaluation.

The check digits are computed here from the public algorithms (INN, SNILS, OGRN,
OGRNIP, Luhn, the bank-account key against a BIK, IBAN mod 97), independently of
the C code under test. Standard library only; deterministic for a given --seed.

    python3 bench/guard/gen_ru_ids.py --count 2000 --seed 1 > /tmp/ru_ids.jsonl
"""
import argparse
import json
import random
import sys

R = random.Random()


def digits(n, first_nonzero=False):
    s = [str(R.randrange(10)) for _ in range(n)]
    if first_nonzero and s[0] == "0":
        s[0] = str(R.randrange(1, 10))
    return "".join(s)


def inn_digit(d, w):
    return str(sum(int(a) * b for a, b in zip(d, w)) % 11 % 10)


def inn10():
    d = "%02d" % R.randrange(1, 100) + digits(7)
    return d + inn_digit(d, [2, 4, 10, 3, 5, 9, 4, 6, 8])


def inn12():
    d = "%02d" % R.randrange(1, 100) + digits(8)
    d += inn_digit(d, [7, 2, 4, 10, 3, 5, 9, 4, 6, 8])
    return d + inn_digit(d, [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8])


def snils_check(d9):
    s = sum(int(c) * (9 - i) for i, c in enumerate(d9))
    if s < 100:
        return "%02d" % s
    if s in (100, 101):
        return "00"
    s %= 101
    return "00" if s == 100 else "%02d" % s


def snils():
    while True:
        d = digits(9)
        if int(d) > 1001998:
            return d + snils_check(d)


def ogrn():
    d = R.choice("15") + digits(11)
    return d + str(int(d) % 11 % 10)


def ogrnip():
    d = "3" + digits(13)
    return d + str(int(d) % 13 % 10)


def luhn_digit(body):
    total = 0
    for i, c in enumerate(reversed(body)):
        x = int(c)
        if i % 2 == 0:
            x *= 2
            if x > 9:
                x -= 9
        total += x
    return str((10 - total % 10) % 10)


def card():
    prefix = R.choice(["4", "51", "52", "53", "54", "55", "2200", "2202", "2204", "6762"])
    n = 16
    body = prefix + digits(n - 1 - len(prefix))
    return body + luhn_digit(body)


def account_with_bik():
    bik = "04" + "%02d" % R.randrange(1, 99) + digits(2) + "%03d" % R.randrange(50, 999)
    acc = R.choice(["40702", "40817", "40802", "40703"]) + R.choice(["810", "643"])
    rest = digits(11)
    base = bik[6:9] + acc + "0" + rest
    w = [7, 1, 3] * 8
    s = sum((int(c) * w[i]) % 10 for i, c in enumerate(base))
    # The key digit has weight 3: choose it so the whole sum is 0 mod 10 (3 * 7 = 21).
    key = str((10 - s % 10) * 7 % 10)
    account = acc + key + rest
    assert account_key_ok(account, bik)
    return account, bik


def account_key_ok(account, bik):
    base = bik[6:9] + account
    w = [7, 1, 3] * 8
    return sum((int(c) * w[i]) % 10 for i, c in enumerate(base)) % 10 == 0


def break_last(d, ok):
    """Changes the last digit so the checksum fails."""
    for _ in range(20):
        x = d[:-1] + str((int(d[-1]) + R.randrange(1, 10)) % 10)
        if not ok(x):
            return x
    return None


def valid_inn(d):
    if len(d) == 10:
        return inn_digit(d[:9], [2, 4, 10, 3, 5, 9, 4, 6, 8]) == d[9]
    return (inn_digit(d[:10], [7, 2, 4, 10, 3, 5, 9, 4, 6, 8]) == d[10]
            and inn_digit(d[:11], [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8]) == d[11])


def valid_snils(d):
    return snils_check(d[:9]) == d[9:]


def valid_luhn(d):
    return luhn_digit(d[:-1]) == d[-1]


def fmt_snils(d):
    return R.choice([d, "%s-%s-%s %s" % (d[0:3], d[3:6], d[6:9], d[9:]),
                     "%s-%s-%s-%s" % (d[0:3], d[3:6], d[6:9], d[9:])])


def fmt_card(d):
    return R.choice([d, " ".join(d[i:i + 4] for i in range(0, 16, 4)),
                     "-".join(d[i:i + 4] for i in range(0, 16, 4))])


def phone():
    code = R.choice(["9", "4", "3", "8"]) + digits(2)
    num = digits(7)
    forms = [
        "+7 (%s) %s-%s-%s" % (code, num[:3], num[3:5], num[5:]),
        "+7%s%s" % (code, num),
        "8 (%s) %s-%s-%s" % (code, num[:3], num[3:5], num[5:]),
        "8-%s-%s-%s-%s" % (code, num[:3], num[3:5], num[5:]),
        "+7 %s %s %s %s" % (code, num[:3], num[3:5], num[5:]),
        "8%s%s" % (code, num),
        "8 %s %s-%s-%s" % (code, num[:3], num[3:5], num[5:]),
    ]
    return R.choice(forms)


def passport():
    series = "%02d" % R.randrange(1, 99) + "%02d" % R.randrange(0, 25)
    number = digits(6)
    # (words before the identifier, the identifier): the span starts at the series.
    forms = [
        ("", "%s %s %s" % (series[:2], series[2:], number)),
        ("", "%s %s" % (series, number)),
        ("серия ", "%s номер %s" % (series, number)),
        ("серия ", "%s № %s" % (series, number)),
        ("", "%s № %s" % (series, number)),
    ]
    return R.choice(forms)


# Sentences: "{X}" is the identifier; the context word is part of the template.
CTX = {
    "INN": ["Мой ИНН {X}, проверьте, пожалуйста.", "ИНН организации: {X}.",
            "Укажите в договоре ИНН {X} и КПП.", "Для налоговой: ИНН {X}"],
    "SNILS": ["СНИЛС {X}, прошу обновить данные.", "Мой номер СНИЛС: {X}",
              "Страховой номер {X} указан в анкете."],
    "PASSPORT": ["Паспорт {X}, выдан ОВД района в 2015 году.", "Данные паспорта: {X}.",
                 "Прилагаю паспорт {X} для проверки."],
    "OGRN": ["ОГРН {X}, юридический адрес в Москве.", "Компания зарегистрирована, ОГРН: {X}."],
    "OGRNIP": ["ОГРНИП {X}, индивидуальный предприниматель.", "ИП Сидоров, ОГРНИП {X}."],
    "CARD": ["Списали деньги с карты {X}, верните, пожалуйста.", "Номер карты {X}, срок 12/27.",
             "Оплатил картой {X} вчера."],
    "ACCOUNT": ["Р/с {X} в банке, БИК {B}.", "Расчётный счёт {X}, БИК {B}",
                "Переведите на счёт {X} (БИК {B})."],
    "PHONE": ["Перезвоните мне по телефону {X}.", "Мой номер {X}, звоните после 18:00.",
              "тел. {X}", "Связаться можно по {X} в рабочее время."],
}
NOCTX = [
    "Вот данные: {X}. Что с заявкой?", "Проверьте {X} и ответьте.", "Добрый день! {X}",
    "Клиент прислал {X} в чат.", "{X} — это верно?",
]
FILLER = [
    "Заказ №5821 от 12.03.2024 на сумму 15 400,50 руб. ещё не доставлен.",
    "Трек-номер посылки RA123456789RU, версия приложения 4.12.1.",
    "Звонок был в 14:35, ожидание 3 минуты.",
    "В 2023 году тариф стоил 990 рублей, а сейчас 1290.",
    "Код подтверждения 482913 не пришёл.",
    "Артикул товара 00123-45, количество 3 шт.",
]


def sample(kind, valid):
    """Returns (text_of_identifier, type, format, extra) or None."""
    if kind == "INN10" or kind == "INN12":
        d = inn10() if kind == "INN10" else inn12()
        if not valid:
            d = break_last(d, valid_inn)
        return d, "INN", kind.lower(), {}
    if kind == "SNILS":
        d = snils()
        if not valid:
            d = break_last(d, valid_snils)
        return fmt_snils(d), "SNILS", "snils", {}
    if kind == "OGRN":
        d = ogrn()
        if not valid:
            d = break_last(d, lambda x: int(x[:12]) % 11 % 10 == int(x[12]))
        return d, "OGRN", "ogrn", {}
    if kind == "OGRNIP":
        d = ogrnip()
        if not valid:
            d = break_last(d, lambda x: int(x[:14]) % 13 % 10 == int(x[14]))
        return d, "OGRNIP", "ogrnip", {}
    if kind == "CARD":
        d = card()
        if not valid:
            d = break_last(d, valid_luhn)
        return fmt_card(d), "CARD", "card", {}
    if kind == "ACCOUNT":
        a, b = account_with_bik()
        if not valid:
            a = break_last(a, lambda x: account_key_ok(x, b))
        return a, "ACCOUNT", "account", {"B": b}
    if kind == "PHONE":
        p = phone()
        if not valid:
            # one digit short: not a Russian phone number
            i = max(i for i, c in enumerate(p) if c.isdigit())
            p = p[:i] + p[i + 1:]
        return p, "PHONE", "phone", {}
    if kind == "PASSPORT":
        lead, p = passport()
        if not valid:
            p = p[:-1]  # a five-digit number: not a passport
        return p, "PASSPORT", "passport", {"lead": lead}
    return None


KINDS = ["INN10", "INN12", "SNILS", "OGRN", "OGRNIP", "CARD", "ACCOUNT", "PHONE", "PASSPORT"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=2000, help="sentences to write")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--invalid-share", type=float, default=0.3,
                    help="share of deliberately invalid identifiers")
    a = ap.parse_args()
    R.seed(a.seed)
    out = sys.stdout
    for _ in range(a.count):
        kind = R.choice(KINDS)
        valid = R.random() >= a.invalid_share
        s = sample(kind, valid)
        if s is None or s[0] is None:
            continue
        ident, typ, fmt, extra = s
        # Formats that carry their own context ("серия ... номер") and half of the
        # rest get a context sentence; others appear with no hint at all.
        with_ctx = typ in ("ACCOUNT",) or R.random() < 0.6 or extra.get("lead")
        tpl = R.choice(CTX[typ]) if with_ctx else R.choice(NOCTX)
        if "{B}" in tpl and "B" not in extra:
            tpl = tpl.replace("{B}", "044525225")
        pre = R.choice(FILLER) + " " if R.random() < 0.5 else ""
        post = " " + R.choice(FILLER) if R.random() < 0.5 else ""
        head, tail = tpl.split("{X}")
        head += extra.pop("lead", "")
        for k, v in extra.items():
            head = head.replace("{%s}" % k, v)
            tail = tail.replace("{%s}" % k, v)
        text = pre + head + ident + tail + post
        start = len(pre + head)
        rec = {"text": text, "spans": [{"type": typ, "start": start, "end": start + len(ident),
                                         "valid": valid, "format": fmt,
                                         "context": bool(with_ctx)}]}
        out.write(json.dumps(rec, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
