"""Browser tests of the support desk's web pages (tests/e2e/run.mjs).

Starts mayak on the embedded defaults (local responder, demo knowledge base), creates
an operator key and an admin key with the CLI, then runs the playwright-core script,
which drives Debian's chromium through the chat page, the widget, the operator
console and the admin page. Screenshots go to tests/artifacts/e2e/.

Missing node, chromium or the npm packages FAIL this test (they are part of
`scripts/install-deps.sh --test`), so a machine without them never passes quietly.
"""
import os
import shutil
import subprocess

import requests

from conftest import MAYAK_BIN, SLOW, SOURCE_DIR

E2E_DIR = os.path.join(SOURCE_DIR, "tests", "e2e")
CHROMIUM = os.environ.get("MAYAK_CHROMIUM", "/usr/bin/chromium")


def create_key(workdir, role):
    out = subprocess.run([MAYAK_BIN, "keys", "create", "--tenant", "local", "--role", role, "--name", f"e2e {role}"],
                         cwd=workdir, capture_output=True, text=True, timeout=60 * SLOW)
    assert out.returncode == 0, out.stderr
    key = out.stdout.strip().splitlines()[-1].strip()
    assert key.startswith("mk-"), out.stdout
    return key


def test_desk_in_a_real_browser(mayak_factory, workdir):
    node = shutil.which("node")
    assert node, "node is not installed (scripts/install-deps.sh --test)"
    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing (apt-get install chromium)"
    assert os.path.isdir(os.path.join(E2E_DIR, "node_modules", "playwright-core")), \
        "tests/e2e/node_modules is missing: run scripts/install-deps.sh --test (npm ci in tests/e2e)"

    # Keys first (the CLI opens the same database the server will), then the server.
    operator_key = create_key(workdir, "operator")
    admin_key = create_key(workdir, "admin")
    m = mayak_factory()
    assert requests.get(m.url + "/", timeout=5).status_code == 200

    artifacts = os.path.join(SOURCE_DIR, "tests", "artifacts", "e2e")
    os.makedirs(artifacts, exist_ok=True)
    env = dict(os.environ, MAYAK_URL=m.url, MAYAK_OPERATOR_KEY=operator_key, MAYAK_ADMIN_KEY=admin_key,
               MAYAK_ARTIFACTS=artifacts, MAYAK_CHROMIUM=CHROMIUM, MAYAK_E2E_SLOW=str(SLOW))
    run = subprocess.run([node, "run.mjs"], cwd=E2E_DIR, env=env, capture_output=True, text=True,
                         timeout=300 * SLOW)
    print(run.stdout)
    assert run.returncode == 0, f"browser tests failed:\n{run.stdout}\n{run.stderr}\n--- mayak log ---\n" \
                                f"{m.proc.output()[-4000:]}"
    assert "0 failed" in run.stdout

    # What the browser did is in the store and in /metrics.
    metrics = m.metrics()
    assert 'mayak_desk_ratings_total{agent=' in metrics
    assert 'mayak_desk_escalations_total{agent=' in metrics
    assert 'mayak_desk_first_response_seconds_count{responder="operator"}' in metrics
