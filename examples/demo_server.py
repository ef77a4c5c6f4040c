"""The main job through a real `modelyard server`: same calls, over HTTP, with tokens.

Starts `modelyard server` over ./demo-server-yard (SQLite + blobs; the first run
makes its admin), has the admin make a writer token for user "ci", then runs the
demo (train, log, register, alias, load by alias, predict, serve) as "ci" with
MODELYARD_URI=http://127.0.0.1:<port>. Ends by protecting @champion and printing
the audit log the admin sees. `make clean` removes the yard.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import demo

import modelyard as my
from modelyard.store.rest.admin import server_admin

SERVER_YARD = Path("demo-server-yard")
ADMIN_TOKEN = SERVER_YARD / "admin-token"  # kept beside the demo yard, for the demo only


def main() -> None:
    cli = str(Path(sys.executable).with_name("modelyard"))
    if not ADMIN_TOKEN.exists():
        made = subprocess.run(
            [cli, "server", "init-admin", "--yard", str(SERVER_YARD)],
            check=True,
            capture_output=True,
            text=True,
        )
        ADMIN_TOKEN.write_text(made.stdout.strip())
        ADMIN_TOKEN.chmod(0o600)
    server = subprocess.Popen(
        [cli, "server", "--yard", str(SERVER_YARD), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = _wait_for_url(server)
        print(f"server  {url} over {SERVER_YARD}/ (modelyard server)")
        os.environ["MODELYARD_TOKEN"] = ADMIN_TOKEN.read_text()
        admin = server_admin(my.set_yard(url))
        if "ci" not in [u["name"] for u in admin.list_users()]:
            admin.create_user("ci", "writer")
        writer = admin.create_token("ci", name="demo", expires_in_days=1)
        print(f"token   made a writer token for 'ci' ({writer['info']['token_id']})")
        os.environ["MODELYARD_TOKEN"] = writer["token"]
        demo.main(url)
        ci = server_admin(my.get_yard())
        ci.protect_alias("iris", "champion")
        print("protect models:/iris@champion: only 'manage' may move it now")
        os.environ["MODELYARD_TOKEN"] = ADMIN_TOKEN.read_text()
        events = server_admin(my.set_yard(url)).audit(actor="ci", max_results=5)
        print("audit   (newest first, as the admin sees it)")
        for e in events:
            print(f"        {e['actor']:<4} {e['action']:<16} {e['target']}")
        ci.revoke_token(writer["info"]["token_id"])
    finally:
        server.terminate()
        server.wait(timeout=30)


def _wait_for_url(server: subprocess.Popen[str]) -> str:
    assert server.stderr is not None
    for line in server.stderr:
        found = re.search(r"serving .* on (http://\S+)", line)
        if found:
            # keep reading its log, or a full pipe would stop the server
            threading.Thread(target=server.stderr.read, daemon=True).start()
            return found.group(1)
    raise SystemExit("the server did not start")


if __name__ == "__main__":
    main()
