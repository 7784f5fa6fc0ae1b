"""HTML of the lineage view: small functions over the documents of :mod:`._views`.

Every value is escaped with :func:`html.escape`; every link is relative to the
page's ``<base href>`` (the app's ``root_path``), so the app works mounted
under any prefix. The graph is drawn by ``static/lineage.js`` from the same
document the ``api/`` routes return; the tables here work without JavaScript.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from html import escape
from typing import Any
from urllib.parse import quote

SEARCH_FIELDS = {
    "digest": "digest (hex, blake3:... or sha256:...)",
    "source": "source URI (GLOB: https://example.org/*)",
    "license": "license (SPDX, GLOB: CC-BY-*)",
    "run": "run id",
}


def e(value: object) -> str:
    """e escapes ``value`` for HTML text and attributes ('' for None)."""
    return "" if value is None else escape(str(value), quote=True)


# The stylesheet's id tells cytoscape.js its container rule is already there (style.css),
# so it does not inject a <style> element, which the Content-Security-Policy forbids.


def page(base: str, title: str, body: str, *, graph: bool = False, form: str = "") -> str:
    """page wraps ``body`` in the site layout; ``base`` is the app's root path + '/'."""
    scripts = (
        '<script src="static/vendor/cytoscape.min.js" defer></script>\n'
        '<script src="static/lineage.js" defer></script>\n'
        if graph
        else ""
    )
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<base href="{e(base)}">
<title>{e(title)} · provgate lineage</title>
<link rel="stylesheet" href="static/style.css" id="__________cytoscape_stylesheet">
{scripts}</head>
<body>
<header><a class="brand" href="./">provgate lineage</a>
{form or search_form()}
</header>
<main>
{body}
</main>
</body>
</html>
"""


def search_form(by: str = "digest", q: str = "") -> str:
    options = "".join(
        f'<option value="{e(k)}"{" selected" if k == by else ""}>{e(label)}</option>'
        for k, label in SEARCH_FIELDS.items()
    )
    return (
        '<form class="search" action="search" method="get" role="search">'
        f'<select name="by" aria-label="search by">{options}</select>'
        f'<input name="q" value="{e(q)}" maxlength="512" required placeholder="search records"'
        ' aria-label="search text">'
        "<button>Search</button></form>"
    )


def record_link(log_index: int, text: str | None = None) -> str:
    return f'<a href="records/{log_index}">{e(text if text is not None else log_index)}</a>'


def nodes_table(nodes: Iterable[Mapping[str, Any]], *, status: bool = False) -> str:
    head = "<th>record</th><th>kind</th><th>name</th><th>source / license</th>"
    if status:
        head = "<th>side</th>" + head + "<th>status</th>"
    rows = []
    for n in nodes:
        i = int(n["log_index"])
        origin = " · ".join(e(x) for x in (n.get("source_uri"), n.get("license")) if x)
        cells = (
            f"<td>{record_link(i)}</td><td>{e(n['kind'])}</td><td>{e(n['name'])}</td>"
            f"<td>{origin}</td>"
        )
        attrs = f'id="node-{i}"'
        if status:
            st = str(n["status"])
            reasons = "".join(f"<li>{e(r)}</li>" for r in n.get("reasons", []))
            checks = ", ".join(f"{e(k)} {e(v)}" for k, v in sorted(n.get("checks", {}).items()))
            cells = (
                f"<td>{e(n['side'])}</td>{cells}"
                f'<td><span class="status {e(st)}">{e(st)}</span>'
                f'<div class="checks">{checks}</div>'
                f"{f'<ul class=reasons>{reasons}</ul>' if reasons else ''}</td>"
            )
            attrs += f' class="node {e(st)}" data-status="{e(st)}"'
        rows.append(f"<tr {attrs}>{cells}</tr>")
    if not rows:
        return '<p class="empty">No records.</p>'
    return (
        f'<table class="nodes"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def home_page(base: str, recent: list[dict[str, Any]], size: int) -> str:
    body = (
        f"<h1>Lineage</h1><p>The ledger holds {size} record(s). Open a record to see where it"
        " came from and what was made from it, each node verified against the ledger.</p>"
        f"<h2>Latest records</h2>{nodes_table(recent)}"
    )
    return page(base, "Lineage", body)


def search_page(base: str, by: str, q: str, results: list[dict[str, Any]], note: str) -> str:
    body = (
        f"<h1>Search: {e(SEARCH_FIELDS[by].split(' (')[0])} = <code>{e(q)}</code></h1>"
        f"<p>{e(note)}</p>{nodes_table(results)}"
    )
    return page(base, f"Search {q}", body, form=search_form(by, q))


def lineage_page(base: str, title: str, api: str, doc: Mapping[str, Any]) -> str:
    """lineage_page is the page of one target: graph, nodes, sources, statement, proof."""
    ok = bool(doc["ok"])
    verdict = (
        '<p class="verdict ok">Chain of custody verifies.</p>'
        if ok
        else '<p class="verdict failing">Chain of custody does NOT verify: see the failing'
        " nodes below.</p>"
    )
    general = "".join(f"<li>{e(p)}</li>" for p in doc["problems"])
    extra = ""
    if doc.get("unverified_sinks"):
        extra = f"<p>{e(doc['unverified_sinks'])} downstream branch(es) left unchecked.</p>"
    sources = [{**s, "kind": "ingest"} for s in doc["sources"]]
    records = "".join(_record_section(r) for r in doc["records"])
    cp = doc["checkpoint"]
    cp_state = (
        f"verified: tree size {e(cp['size'])}, root {e(cp['root_hash'])}"
        if cp["verified"]
        else "NOT verified"
    )
    body = f"""<h1>{e(title)}</h1>
<p class="target">target <code>{e(doc["target"])}</code> → record(s)
{", ".join(record_link(i) for i in doc["roots"])}</p>
{verdict}
{f'<ul class="reasons">{general}</ul>' if general else ""}{extra}
<section id="graph-section"><h2>Lineage graph</h2>
<p class="legend"><span class="status ok">ok</span> <span class="status failing">failing</span>
<span class="status unchecked">unchecked</span> · arrows point from input to output;
the target is outlined.</p>
<div id="graph" data-api="{e(api)}" aria-label="lineage graph"></div>
<p id="graph-status" class="empty"></p></section>
<section id="sources"><h2>Sources</h2>{nodes_table(sources)}</section>
<section id="nodes"><h2>Nodes</h2>{nodes_table(doc["nodes"], status=True)}</section>
{records}
<section id="checkpoint"><h2>Checkpoint</h2><p>{cp_state}</p>
<pre>{e(cp["note"] or "the ledger has no checkpoint")}</pre></section>
"""
    return page(base, title, body, graph=True)


def _record_section(rec: Mapping[str, Any]) -> str:
    i = int(rec["log_index"])
    if rec.get("statement") is not None:
        statement = f"<pre>{e(json.dumps(rec['statement'], indent=2, ensure_ascii=False))}</pre>"
    else:
        statement = f'<p class="failing">{e(rec.get("error"))}</p>'
    keys = ", ".join(f"<code>{e(k)}</code>" for k in rec.get("keyids", []))
    proof = rec.get("inclusion_proof")
    proof_html = (
        f"<pre>{e(json.dumps(proof, indent=2))}</pre>"
        if proof is not None
        else f"<p>{e(rec.get('proof_error'))}</p>"
    )
    return (
        f'<section class="record" id="record-{i}"><h2>Signed statement of record {i}</h2>'
        f"<p>signed by key(s) {keys or 'none'}; shown as stored (decoded, not trusted: the"
        f" status above says whether it verifies)</p>{statement}"
        f"<h3>Inclusion proof (RFC 9162)</h3>{proof_html}</section>"
    )


def error_page(base: str, status: int, message: str) -> str:
    body = f'<h1>Error {status}</h1><p class="error">{e(message)}</p><p><a href="./">Back</a></p>'
    return page(base, f"Error {status}", body)


def quoted(text: str) -> str:
    """quoted percent-encodes a query value for a relative link."""
    return quote(text, safe="")
