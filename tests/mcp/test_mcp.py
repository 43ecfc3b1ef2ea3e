#!/usr/bin/env python3
"""The MCP plugin with real MCP clients: the Python `mcp` SDK (2.3.0) over Streamable HTTP,
in its legacy (initialize, session, 2025-11-25) and its stateless (2026-07-28) modes, and
over stdio (`ferrobase mcp`); the npm `@modelcontextprotocol/sdk` (js_client.mjs); the
official PocketBase JS SDK watches the records and realtime events the tools make
(sdk_watch.mjs).

    python3 tests/mcp/test_mcp.py BIN        (tests/mcp/run.sh sets up the venv)

Set UPDATE_CONTRACT=1 to rewrite tools.json (the pinned tools/list) after a deliberate change.
"""
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "../../target/debug/ferrobase"))
EMAIL, PASSWORD = "mcp-admin@example.com", "Mcp-Passw0rd-1"
WRITE_TOOLS = {"create_collection", "update_collection", "delete_collection", "create_record",
               "update_record", "delete_record", "import_schema"}
READ_TOOLS = {"list_collections", "get_collection", "check_filter", "list_records", "get_record",
              "get_settings", "export_schema"}

failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None, token=None, headers=None):
    h = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    if token:
        h["Authorization"] = token
    req = urllib.request.Request(url, data=data, method=method, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None), dict(r.headers)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = raw.decode(errors="replace")
        return e.code, parsed, dict(e.headers)


def result_json(r):
    """The structured content of a tool result."""
    return r.structured_content if r.structured_content is not None else json.loads(r.content[0].text)


def client(url, token, mode):
    hc = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    return Client(streamable_http_client(url, http_client=hc), mode=mode)


async def scripted_session(url, token, mode, su, base, user, watcher_out):
    tag = mode.replace("-", "")
    projects = f"projects_{tag}"
    async with client(url, token, mode) as c:
        want = "2025-11-25" if mode == "legacy" else "2026-07-28"
        check(c.protocol_version == want, f"[{mode}] protocol {c.protocol_version}")
        tools = {t.name: t for t in (await c.list_tools()).tools}
        check(set(tools) == READ_TOOLS | WRITE_TOOLS, f"[{mode}] every tool is listed")
        check(all(t.output_schema and t.output_schema.get("type") == "object" for t in tools.values()),
              f"[{mode}] every tool declares an object outputSchema")
        check(tools["delete_collection"].annotations.destructive_hint is True
              and tools["list_records"].annotations.read_only_hint is True,
              f"[{mode}] annotations")

        st = result_json(await c.call_tool("get_settings", {}))
        check("meta" in st and "password" not in json.dumps(st.get("smtp", {})), f"[{mode}] get_settings, without secrets")

        # a collection with a relation to users and an owner rule
        owner_rule = "owner = @request.auth.id"
        r = await c.call_tool("create_collection", {"definition": {
            "name": projects, "type": "base",
            "fields": [{"name": "title", "type": "text", "required": True},
                       {"name": "owner", "type": "relation", "collectionId": "_pb_users_auth_",
                        "maxSelect": 1, "required": True}],
            "listRule": owner_rule, "viewRule": owner_rule, "createRule": "@request.auth.id != ''",
            "updateRule": owner_rule, "deleteRule": owner_rule}})
        check(not r.is_error, f"[{mode}] create_collection {projects}")
        coll = result_json(r)
        title_id = next(f["id"] for f in coll["fields"] if f["name"] == "title")

        bad = await c.call_tool("create_collection", {"definition": {"name": "bad name!", "fields": []}})
        check(bad.is_error and '"name"' in bad.content[0].text and "validation" in bad.content[0].text,
              f"[{mode}] a bad collection is an isError result with the field named")

        r = await c.call_tool("create_record", {"collection": projects,
                                                "data": {"title": "Launch", "owner": user["id"]}})
        check(not r.is_error, f"[{mode}] create_record")
        rec = result_json(r)
        check("<untrusted-data>" in r.content[0].text, f"[{mode}] record data is fenced as untrusted")

        r = await c.call_tool("list_records", {"collection": projects, "filter": 'title ~ "Laun"'})
        page = result_json(r)
        check(page["totalItems"] == 1 and page["items"][0]["id"] == rec["id"], f"[{mode}] list_records with a filter")
        r = await c.call_tool("check_filter", {"collection": projects, "filter": "nosuch = 1"})
        check(result_json(r)["valid"] is False, f"[{mode}] check_filter explains a bad filter")

        # the owner sees it through the JS SDK (rule enforced: another user would not)
        st, lst, _ = http("GET", f"{base}/api/collections/{projects}/records", token=user["token"])
        check(st == 200 and lst["totalItems"] == 1, f"[{mode}] the JS-SDK-visible REST list shows the record to its owner")

        # rename a field, data kept (same field id)
        patch = {"fields": [{"id": title_id, "name": "name", "type": "text", "required": True},
                            *[f for f in coll["fields"] if f["name"] not in ("title",)]]}
        r = await c.call_tool("update_collection", {"collection": projects, "patch": patch})
        dry = result_json(r)
        check(dry["dryRun"] and dry["changes"]["renamedFields"] == [{"from": "title", "to": "name"}]
              and not dry["changes"]["destructive"], f"[{mode}] a rename's dry run")
        r = await c.call_tool("update_collection", {"collection": projects, "patch": patch, "dryRun": False})
        check(not r.is_error, f"[{mode}] the rename is applied")
        r = await c.call_tool("get_record", {"collection": projects, "id": rec["id"]})
        check(result_json(r).get("name") == "Launch", f"[{mode}] the data is kept through the rename: {result_json(r)}")

        # a destructive change: refused without the token, done with it
        coll = result_json(await c.call_tool("get_collection", {"collection": projects}))
        drop = {"fields": [f for f in coll["fields"] if f["name"] != "name"]}
        r = await c.call_tool("update_collection", {"collection": projects, "patch": drop, "dryRun": False})
        check(r.is_error and "confirmToken" in r.content[0].text, f"[{mode}] dropping a field with data is refused without a token")
        dry = result_json(await c.call_tool("update_collection", {"collection": projects, "patch": drop}))
        check(dry["changes"]["destructive"] and dry["changes"]["dataLoss"] == [{"field": "name", "recordsWithData": 1}]
              and dry.get("confirmToken"), f"[{mode}] its dry run names the data lost and gives a token")
        other = {"fields": drop["fields"], "listRule": None}
        r = await c.call_tool("update_collection", {"collection": projects, "patch": other, "dryRun": False,
                                                   "confirmToken": dry["confirmToken"]})
        check(r.is_error, f"[{mode}] the token is bound to its exact change")
        r = await c.call_tool("update_collection", {"collection": projects, "patch": drop, "dryRun": False,
                                                   "confirmToken": dry["confirmToken"]})
        check(not r.is_error, f"[{mode}] with the token the field is dropped")

        r = await c.call_tool("delete_record", {"collection": projects, "id": rec["id"]})
        tok = result_json(r)["confirmToken"]
        r = await c.call_tool("delete_record", {"collection": projects, "id": rec["id"], "dryRun": False,
                                                "confirmToken": tok})
        check(not r.is_error, f"[{mode}] delete_record with its token")
        r = await c.call_tool("delete_collection", {"collection": projects, "dryRun": False})
        check(r.is_error, f"[{mode}] delete_collection needs a token")
    return projects


async def realtime_check(url, token, base, user):
    """A JS SDK client subscribed to a collection sees the records an MCP tool creates."""
    name = "watched_notes"
    async with client(url, token, "legacy") as c:
        await c.call_tool("create_collection", {"definition": {
            "name": name, "type": "base", "fields": [{"name": "body", "type": "text"}],
            "listRule": "", "viewRule": ""}})
        watcher = subprocess.Popen(["node", os.path.join(HERE, "sdk_watch.mjs"), base, name],
                                   stdout=subprocess.PIPE, text=True)
        try:
            line = watcher.stdout.readline()
            check(line.strip() == "subscribed", "the JS SDK subscribed")
            r = await c.call_tool("create_record", {"collection": name, "data": {"body": "from mcp"}})
            created = result_json(r)
            line = watcher.stdout.readline()
            ev = json.loads(line) if line.strip() else {}
            check(ev.get("action") == "create" and ev.get("record", {}).get("id") == created["id"]
                  and ev["record"].get("body") == "from mcp", "the JS SDK got the realtime event of the MCP create")
            fetched = json.loads(watcher.stdout.readline() or "{}")
            check(fetched.get("body") == "from mcp", "the JS SDK reads the record")
        finally:
            watcher.kill()


async def main():
    tmp = tempfile.mkdtemp(prefix="fb-mcp-")
    data = os.path.join(tmp, "fb_data")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = f"{base}/mcp"
    subprocess.run([BIN, "superuser", "upsert", EMAIL, PASSWORD, "--dir", data], check=True,
                   capture_output=True)
    log = open(os.path.join(tmp, "server.log"), "wb")
    server = subprocess.Popen([BIN, "serve", "--http", f"127.0.0.1:{port}", "--dir", data],
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(300):
            try:
                if http("GET", f"{base}/api/health")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        _, auth, _ = http("POST", f"{base}/api/collections/_superusers/auth-with-password",
                          {"identity": EMAIL, "password": PASSWORD})
        su = auth["token"]
        http("POST", f"{base}/api/collections/users/records",
             {"email": "owner@example.com", "password": "Owner-Passw0rd", "passwordConfirm": "Owner-Passw0rd"})
        _, ua, _ = http("POST", f"{base}/api/collections/users/auth-with-password",
                        {"identity": "owner@example.com", "password": "Owner-Passw0rd"})
        user = {"id": ua["record"]["id"], "token": ua["token"]}

        def mint(*args):
            out = subprocess.run([BIN, "mcp-token", *args, "--dir", data], check=True,
                                 capture_output=True, text=True)
            return out.stdout.strip()

        rw, ro = mint("assistant"), mint("reader", "--read-only")
        check(rw.startswith("fbmcp_") and ro.startswith("fbmcp_"), "mcp-token prints new tokens")

        # --- access, before rmcp sees anything
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}}
        acc = {"Accept": "application/json, text/event-stream"}
        st, body, hdrs = http("POST", url, init, headers=acc)
        www = {k.lower(): v for k, v in hdrs.items()}.get("www-authenticate", "")
        check(st == 401 and "Bearer" in www, "no token: 401 with WWW-Authenticate")
        st, _, _ = http("POST", url, init, token="Bearer fbmcp_not-a-token", headers=acc)
        check(st == 401, "an unknown MCP token: 401")
        st, _, _ = http("POST", url, init, token=f"Bearer {user['token']}", headers=acc)
        check(st == 401, "a non-superuser auth token: 401")
        st, _, _ = http("POST", url, init, token=f"Bearer {su}", headers={**acc, "Host": "evil.example"})
        check(st == 403, "a bad Host: 403 (DNS rebinding)")
        st, _, _ = http("POST", url, init, token=f"Bearer {su}", headers={**acc, "Origin": "http://evil.example"})
        check(st == 403, "a bad Origin: 403")

        # --- scripted sessions, both protocol modes, as the superuser and with an MCP token
        await scripted_session(url, su, "legacy", su, base, user, None)
        await scripted_session(url, rw, "auto", su, base, user, None)

        # --- the pinned tools/list
        async with client(url, su, "legacy") as c:
            listed = (await c.list_tools()).tools
        contract = sorted(({"name": t.name, "title": t.annotations.title if t.annotations else None,
                            "description": t.description, "inputSchema": t.input_schema,
                            "outputSchema": t.output_schema,
                            "annotations": t.annotations.model_dump(by_alias=True, exclude_none=True) if t.annotations else None}
                           for t in listed), key=lambda t: t["name"])
        pinned_path = os.path.join(HERE, "tools.json")
        if os.environ.get("UPDATE_CONTRACT") == "1":
            with open(pinned_path, "w") as f:
                json.dump(contract, f, indent=2, sort_keys=True)
                f.write("\n")
            print(f"wrote {pinned_path}")
        pinned = json.load(open(pinned_path)) if os.path.exists(pinned_path) else None
        same = json.loads(json.dumps(contract, sort_keys=True)) == pinned
        check(same, "tools/list matches tools.json (the contract; UPDATE_CONTRACT=1 rewrites it)")
        if not same:
            print(json.dumps(contract, indent=2, sort_keys=True)[:3000])

        # --- resources and prompts
        async with client(url, su, "legacy") as c:
            res = {r.uri for r in (await c.list_resources()).resources}
            check(res == {"ferrobase://collections", "ferrobase://docs/filter-grammar"}, f"resources listed: {res}")
            tpl = [t.uri_template for t in (await c.list_resource_templates()).resource_templates]
            check(tpl == ["ferrobase://collections/{name}"], "the collection schema template")
            idx = json.loads((await c.read_resource("ferrobase://collections")).contents[0].text)
            check(any(x["name"] == "projects_legacy" for x in idx["collections"]), "the collection index resource")
            one = json.loads((await c.read_resource("ferrobase://collections/projects_legacy")).contents[0].text)
            check(one["name"] == "projects_legacy" and one["listRule"] == "owner = @request.auth.id", "a schema resource")
            g = (await c.read_resource("ferrobase://docs/filter-grammar")).contents[0].text
            check("@request.auth.id" in g, "the grammar resource")
            prompts = {p.name for p in (await c.list_prompts()).prompts}
            check(prompts == {"design_collection", "write_api_rule"}, f"prompts listed: {prompts}")
            pr = await c.get_prompt("write_api_rule", {"collection": "projects_legacy", "who": "only the owner edits"})
            check("only the owner edits" in pr.messages[0].content.text, "a prompt with its arguments")

        # --- read-only token: no write tools listed, and refused when called anyway
        async with client(url, ro, "legacy") as c:
            names = {t.name for t in (await c.list_tools()).tools}
            check(names == READ_TOOLS, "a read-only token lists only the read tools")
            r = await c.call_tool("create_record", {"collection": "users", "data": {}})
            check(r.is_error and "Read-only" in r.content[0].text, "a read-only token cannot call a write tool")
            r = await c.call_tool("list_collections", {})
            check(not r.is_error, "a read-only token reads")

        # --- realtime: the JS SDK sees what MCP tools do
        await realtime_check(url, su, base, user)

        # --- a second client: the npm MCP SDK
        js = subprocess.run(["node", os.path.join(HERE, "js_client.mjs"), url, rw], capture_output=True,
                            text=True, timeout=120)
        seen = json.loads(js.stdout.strip().splitlines()[-1]) if js.returncode == 0 and js.stdout.strip() else {}
        if not seen:
            print("npm SDK client stderr:", "\n".join(l for l in js.stderr.splitlines() if "INFO" not in l)[-2500:])
        check(set(seen.get("tools", [])) == READ_TOOLS | WRITE_TOOLS, "npm SDK: every tool listed")
        check(seen.get("createdError") is False and seen.get("record", {}).get("body") == "hello from js"
              and seen.get("total") == 1, "npm SDK: creates a collection and a record, lists it")
        check(seen.get("refused") is True and seen.get("deleted") == "js_notes",
              "npm SDK: refused a deletion without the token, done with it")

        # --- revoking: delete the token's record, the next request is refused at once
        st, toks, _ = http("GET", f"{base}/api/collections/mcp_tokens/records?filter=name%3D%22reader%22", token=su)
        check(st == 200 and toks["totalItems"] == 1 and ro not in json.dumps(toks)
              and toks["items"][0]["tokenHash"] != ro,
              "tokens are listed to superusers; only a hash of each is stored")
        http("DELETE", f"{base}/api/collections/mcp_tokens/records/{toks['items'][0]['id']}", token=su)
        st, _, _ = http("POST", url, init, token=f"Bearer {ro}", headers=acc)
        check(st == 401, "a revoked token stops working at once")

        # --- stdio
        params = StdioServerParameters(command=BIN, args=["mcp", "--dir", data])
        async with Client(params, mode="legacy") as c:
            names = {t.name for t in (await c.list_tools()).tools}
            check(names == READ_TOOLS | WRITE_TOOLS, "stdio: every tool")
            cols = result_json(await c.call_tool("list_collections", {}))["collections"]
            check(any(x["name"] == "watched_notes" for x in cols), "stdio: sees the collections made over HTTP")
        params = StdioServerParameters(command=BIN, args=["mcp", "--read-only", "--dir", data])
        async with Client(params, mode="legacy") as c:
            names = {t.name for t in (await c.list_tools()).tools}
            check(names == READ_TOOLS, "stdio --read-only: only the read tools")
        # --- schema export and import, dry run first
        async with client(url, su, "legacy") as c:
            exp = result_json(await c.call_tool("export_schema", {}))
            names = {x["name"] for x in exp["collections"]}
            check(exp["format"] == "portable" and {"users", "watched_notes", "mcp_tokens"} <= names,
                  "export_schema (portable)")
            extra = {"name": "imported_things", "type": "base", "fields": [{"name": "label", "type": "text"}]}
            dry = result_json(await c.call_tool("import_schema", {"collections": exp["collections"] + [extra]}))
            acts = {p["collection"]: p["action"] for p in dry["plan"]}
            check(dry["dryRun"] and not dry["destructive"] and acts.get("imported_things") == "create"
                  and acts.get("users") == "update", f"import_schema dry run: one new collection, nothing lost: {json.dumps(dry)[:1500]}")
            r = await c.call_tool("import_schema", {"collections": exp["collections"] + [extra], "dryRun": False})
            check(not r.is_error and not (await c.call_tool("get_collection", {"collection": "imported_things"})).is_error,
                  f"import_schema applies: {r.content[0].text[:500]}")
            keep = [x for x in exp["collections"] if x["name"] in ("users", "mcp_tokens")] + [extra]
            dry = result_json(await c.call_tool("import_schema", {"collections": keep, "deleteMissing": True}))
            gone = {p["collection"] for p in dry["plan"] if p["action"] == "delete"}
            check(dry["destructive"] and "watched_notes" in gone and dry.get("confirmToken"),
                  "import with deleteMissing: its dry run names what would go")
            r = await c.call_tool("import_schema", {"collections": keep, "deleteMissing": True, "dryRun": False})
            check(r.is_error, "...refused without the token")
            r = await c.call_tool("import_schema", {"collections": keep, "deleteMissing": True, "dryRun": False,
                                                   "confirmToken": dry["confirmToken"]})
            cols = {x["name"] for x in result_json(await c.call_tool("list_collections", {}))["collections"]}
            check(not r.is_error and "watched_notes" not in cols and "imported_things" in cols,
                  f"...and done with it: {r.content[0].text[:300] if r.is_error else cols}")
    finally:
        server.terminate()
        server.wait(timeout=15)
        if failures:
            print(open(os.path.join(tmp, "server.log"), errors="replace").read()[-3000:])
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"mcp: {len(failures)} failed" if failures else "mcp: all passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    asyncio.run(main())
