"""idp/static/js/fragment-code.js: codes in a link's fragment fill the form, then leave
the address bar (run with node on a stand-in for the page)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "idp/static/js/fragment-code.js"

PAGE = """
const [script, hash, typed] = process.argv.slice(2);
const fields = [{name: "code", value: typed}, {name: "other", value: ""}];
let replaced = null;
global.window = {
  location: {hash: hash, pathname: "/mot-de-passe-perdu/code", search: "?flow=F"},
  history: {replaceState: (state, title, url) => { replaced = url; }},
};
global.document = {
  querySelectorAll: (selector) => fields.map((field) => ({
    getAttribute: (name) => field.name,
    get value() { return field.value; },
    set value(v) { field.value = v; },
  })),
};
require(script);
process.stdout.write(JSON.stringify({values: fields.map((f) => f.value), replaced}));
"""


def run(tmp_path, hash_: str, typed: str = "") -> dict:
    page = tmp_path / "page.js"
    page.write_text(PAGE, encoding="utf-8")
    result = subprocess.run(["node", str(page), str(SCRIPT), hash_, typed],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def test_the_fragment_fills_the_field_and_leaves_the_address_bar(tmp_path):
    result = run(tmp_path, "#code=T3A8XQ")
    assert result["values"] == ["T3A8XQ", ""]
    assert result["replaced"] == "/mot-de-passe-perdu/code?flow=F"


def test_a_typed_value_is_kept_and_no_fragment_changes_nothing(tmp_path):
    assert run(tmp_path, "#code=T3A8XQ", typed="ABCDEF")["values"] == ["ABCDEF", ""]
    assert run(tmp_path, "") == {"values": ["", ""], "replaced": None}
