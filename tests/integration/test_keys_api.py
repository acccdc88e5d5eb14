"""The admin API for API keys (/api/v1/admin/keys) through the real binary: create (the
key shown once), list without secrets, rotate, revoke; a key made by the API
authenticates a chat call, a revoked or rotated-out one gets 401 at once, non-admins
get 403, bad input a 400 naming the field, and every action lands in the audit chain."""
import json
import subprocess

import requests

from conftest import MAYAK_BIN, SLOW, create_key, two_group_config

API = "/api/v1/admin/keys"


def config(fake, extra="auth: {required: true}\n"):
    return two_group_config(fake.url, extra)


def cli_key(workdir, cfg_path, *args):
    return create_key(workdir, *args, config_path=cfg_path)


def auth(key):
    return {"Authorization": f"Bearer {key}"} if key else {}


def chat(m, key, model="default"):
    return requests.post(m.url + "/v1/chat/completions", headers=auth(key), timeout=30 * SLOW,
                         json={"model": model, "messages": [{"role": "user", "content": "hello"}]})


def call(m, method, path, key, headers=None, **kw):
    return requests.request(method, m.url + path, headers={**auth(key), **(headers or {})}, timeout=30 * SLOW, **kw)


def test_create_list_rotate_revoke(fake, mayak_factory, workdir):
    m = mayak_factory(config(fake))
    admin = cli_key(workdir, m.config_path, "--tenant", "ops", "--role", "admin")

    r = call(m, "POST", API, admin, json={
        "tenant": "acme", "role": "user", "name": "support bot", "models": ["default"],
        "rpm": 100, "tpm": 5000, "budget_day": 2.5, "budget_month": 40, "expires_in_days": 30})
    assert r.status_code == 201, r.text
    assert r.headers["Cache-Control"] == "no-store"
    made = r.json()
    key, kid = made["key"], made["id"]
    assert made["object"] == "api_key" and key.startswith(f"mk-{kid}_") and len(key) == 55
    assert made["tenant"] == "acme" and made["role"] == "user" and made["name"] == "support bot"
    assert made["models"] == ["default"] and made["rpm"] == 100 and made["tpm"] == 5000
    assert made["budget_day"] == 2.5 and made["budget_month"] == 40
    assert made["expires_at"] and made["revoked_at"] is None and made["status"] == "active"

    # The new key works, within its model allow-list.
    assert chat(m, key).status_code == 200
    assert chat(m, key, model="other").status_code == 403

    # Lists and reads never carry the secret (nor its hash).
    r = call(m, "GET", API + "?tenant=acme", admin)
    assert r.status_code == 200, r.text
    listed = r.json()
    assert listed["object"] == "list" and [k["id"] for k in listed["data"]] == [kid]
    assert key not in r.text and key.split("_")[1] not in r.text and "hash" not in r.text
    others = call(m, "GET", API + "?tenant=ops", admin).json()["data"]
    assert kid not in [k["id"] for k in others] and all(k["tenant"] == "ops" for k in others)
    r = call(m, "GET", f"{API}/mk-{kid}", admin)
    assert r.status_code == 200 and r.json()["id"] == kid and "key" not in r.json()

    # Rotation: a new secret once; the old key stops at once (no grace).
    r = call(m, "POST", f"{API}/{kid}/rotate", admin)
    assert r.status_code == 200, r.text
    rotated = r.json()
    new_key, new_id = rotated["key"], rotated["id"]
    assert new_id != kid and rotated["rotated_from"] == kid and new_key.startswith(f"mk-{new_id}_")
    assert rotated["tenant"] == "acme" and rotated["models"] == ["default"] and rotated["rpm"] == 100
    assert chat(m, key).status_code == 401
    assert chat(m, new_key).status_code == 200

    # Revocation.
    r = call(m, "DELETE", f"{API}/mk-{new_id}", admin)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "revoked" and r.json()["revoked_at"]
    assert chat(m, new_key).status_code == 401
    r = call(m, "DELETE", f"{API}/mk-{new_id}", admin)
    assert r.status_code == 404 and r.json()["error"]["code"] == "key_not_found"
    r = call(m, "POST", f"{API}/{new_id}/rotate", admin)
    assert r.status_code == 404 and r.json()["error"]["code"] == "key_not_found"

    assert call(m, "GET", API + "?tenant=acme", admin).json()["data"] == []
    every = call(m, "GET", API + "?tenant=acme&include_revoked=true", admin).json()["data"]
    assert sorted(k["id"] for k in every) == sorted([kid, new_id])
    assert all(k["status"] == "revoked" for k in every)

    # The CLI sees what the API made.
    res = subprocess.run([MAYAK_BIN, "keys", "show", kid, "--json", "--config", m.config_path], cwd=workdir,
                         capture_output=True, text=True, timeout=60 * SLOW)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["status"] == "revoked"

    # Every admin action is in the audit chain, by the admin, naming the key.
    m.stop()
    res = subprocess.run([MAYAK_BIN, "audit", "export", "--format", "jsonl", "--config", m.config_path],
                         cwd=workdir, capture_output=True, text=True, timeout=60 * SLOW)
    assert res.returncode == 0, res.stderr
    recs = [json.loads(l) for l in res.stdout.splitlines() if l.strip()]
    admin_id = admin[3:11]
    acts = {(x["action"], x["status"]) for x in recs if x["principal"] == admin_id}
    for act in [("admin.keys.create", 201), ("admin.keys.list", 200), ("admin.keys.get", 200),
                ("admin.keys.rotate", 200), ("admin.keys.revoke", 200), ("admin.keys.revoke", 404)]:
        assert act in acts, (act, acts)
    created = next(x for x in recs if x["action"] == "admin.keys.create")
    assert created["verdicts"]["admin"] == {"key_id": kid, "tenant": "acme", "role": "user"}
    rot = next(x for x in recs if x["action"] == "admin.keys.rotate" and x["status"] == 200)
    assert rot["verdicts"]["admin"]["key_id"] == kid and rot["verdicts"]["admin"]["new_key_id"] == new_id
    assert key not in res.stdout and new_key not in res.stdout


def test_rotation_with_grace_keeps_the_old_key_for_a_while(fake, mayak_factory, workdir):
    m = mayak_factory(config(fake))
    admin = cli_key(workdir, m.config_path, "--tenant", "ops", "--role", "admin")
    made = call(m, "POST", API, admin, json={"role": "developer"}).json()
    assert made["tenant"] == "ops"  # the caller's tenant unless named
    r = call(m, "POST", f"{API}/{made['id']}/rotate", admin, json={"grace_seconds": 3600})
    assert r.status_code == 200, r.text
    assert chat(m, made["key"]).status_code == 200
    assert chat(m, r.json()["key"]).status_code == 200
    old = call(m, "GET", f"{API}/{made['id']}", admin).json()
    assert old["status"] == "active" and old["expires_at"] and old["revoked_at"] is None


def test_only_admins_manage_keys(fake, mayak_factory, workdir):
    m = mayak_factory(config(fake))
    user = cli_key(workdir, m.config_path, "--tenant", "acme", "--role", "user")
    operator = cli_key(workdir, m.config_path, "--tenant", "acme", "--role", "operator")
    for key in (user, operator):
        for method, path in [("GET", API), ("POST", API), ("GET", API + "/mk-AAAAAAAA"),
                             ("POST", API + "/AAAAAAAA/rotate"), ("DELETE", API + "/AAAAAAAA")]:
            r = call(m, method, path, key, json={"role": "admin", "tenant": "acme"} if method == "POST" else None)
            assert r.status_code == 403, (method, path, r.text)
            assert r.json()["error"]["type"] == "permission_error"
    r = call(m, "POST", API, None, json={"role": "admin"})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    r = call(m, "GET", API, "mk-notakey_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx")
    assert r.status_code == 401


def test_loopback_without_a_key_is_not_an_admin(fake, mayak_factory):
    m = mayak_factory(config(fake, extra=""))
    assert chat(m, None).status_code == 200  # the anonymous local developer may chat...
    r = call(m, "POST", API, None, json={"role": "admin"})
    assert r.status_code == 403, r.text  # ...but not mint keys


def test_bad_input_is_a_400_naming_the_field(fake, mayak_factory, workdir):
    m = mayak_factory(config(fake))
    admin = cli_key(workdir, m.config_path, "--tenant", "ops", "--role", "admin")
    cases = [
        ({"role": "root"}, "role"),
        ({"rol": "user"}, "rol"),
        ({"tenant": "a b"}, "tenant"),
        ({"tenant": 5}, "tenant"),
        ({"rpm": -1}, "rpm"),
        ({"rpm": 1.5}, "rpm"),
        ({"tpm": 2 ** 40}, "tpm"),
        ({"models": "default"}, "models"),
        ({"models": ["a,b"]}, "models"),
        ({"models": [""]}, "models"),
        ({"budget_day": -2}, "budget_day"),
        ({"budget": 1, "budget_day": 2}, "budget"),
        ({"budget_month": "lots"}, "budget_month"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"expires_at": "2030-02-31"}, "expires_at"),
        ({"expires_at": "tomorrow"}, "expires_at"),
        ({"expires_in_days": 0}, "expires_in_days"),
        ({"expires_in_days": 1, "expires_at": "2099-01-01"}, "expires_"),
        ({"name": "a\u0001b"}, "name"),
        ({"name": "x" * 200}, "name"),
    ]
    for body, field in cases:
        r = call(m, "POST", API, admin, json=body)
        assert r.status_code == 400, (body, r.text)
        err = r.json()["error"]
        assert err["type"] == "invalid_request_error" and field in err["message"], (body, err)
    for raw in (b"{nope", b"[1,2]", b""):
        r = call(m, "POST", API, admin, data=raw, headers={"Content-Type": "application/json"})
        assert r.status_code == 400, (raw, r.text)
    r = call(m, "POST", f"{API}/AAAAAAAA/rotate", admin, json={"grace_seconds": -1})
    assert r.status_code == 400 and "grace_seconds" in r.json()["error"]["message"]
    r = call(m, "POST", f"{API}/AAAAAAAA/rotate", admin, json={"grace": 5})
    assert r.status_code == 400 and "grace" in r.json()["error"]["message"]
    for path in (f"{API}/short", f"{API}/AAAAAAAA/extra", f"{API}/mk-AAAAAAA%21"):
        assert call(m, "GET", path, admin).status_code == 404, path
    assert call(m, "DELETE", f"{API}/AAAAAAAA/rotate", admin).status_code == 404
    assert call(m, "POST", f"{API}/AAAAAAAA", admin, json={}).status_code == 404
    assert call(m, "GET", f"{API}/AAAAAAAA", admin).json()["error"]["code"] == "key_not_found"
    assert call(m, "PUT", API, admin, json={}).status_code == 405
    assert call(m, "GET", API + "?include_revoked=maybe", admin).status_code == 400
    assert call(m, "GET", API + "?tenant=%00", admin).status_code == 400
    # Nothing was created by any of it: the admin's own key is the only one.
    every = call(m, "GET", API + "?include_revoked=true", admin).json()["data"]
    assert [k["id"] for k in every] == [admin[3:11]]


def test_on_postgresql(fake, mayak_factory, workdir):
    """Rotation runs in a transaction: on PostgreSQL a failed statement would abort it,
    so the key store must never rely on one (mk_keys.c). The whole life cycle there."""
    import pytest
    from pg_server import PgServer, find_bindir
    if not find_bindir():
        pytest.fail("PostgreSQL server binaries are missing: run scripts/install-deps.sh --test")
    with PgServer() as pg:
        url = pg.url("postgres")
        m = mayak_factory(config(fake, extra=f"auth: {{required: true}}\nstore: {{url: '{url}'}}\n"))
        admin = cli_key(workdir, m.config_path, "--tenant", "ops", "--role", "admin", "--store", url)
        made = call(m, "POST", API, admin, json={"tenant": "acme", "models": ["default"]}).json()
        assert chat(m, made["key"]).status_code == 200
        r = call(m, "POST", f"{API}/{made['id']}/rotate", admin, json={"grace_seconds": 600})
        assert r.status_code == 200, r.text
        second = r.json()
        r = call(m, "POST", f"{API}/{second['id']}/rotate", admin)
        assert r.status_code == 200, r.text
        third = r.json()
        assert chat(m, made["key"]).status_code == 200  # still in its grace period
        assert chat(m, second["key"]).status_code == 401
        assert chat(m, third["key"]).status_code == 200
        assert call(m, "DELETE", f"{API}/{third['id']}", admin).status_code == 200
        assert call(m, "POST", f"{API}/{third['id']}/rotate", admin).status_code == 404
        assert chat(m, third["key"]).status_code == 401
        live = [k["id"] for k in call(m, "GET", API + "?tenant=acme", admin).json()["data"]]
        assert live == [made["id"]]
        m.stop()
