"""A static accessibility check of one HTML page, with the standard library only.

``problems(html)`` lists what the page does wrong against the project's rules (the ones a
parser can see: no layout, no colours, no screen reader); ``assert_accessible(html, name)``
fails a test with that list. See docs/accessibility.md for what this does and does not
cover. Any test can use it on a page it already has:

    from tests.a11y import assert_accessible
    assert_accessible(response.data, "my page")
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

LANGS = ("fr", "en")
ERROR_TITLES = ("Erreur", "Error")  # a form sent back with errors says so in its <title>
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
        "source", "track", "wbr"}
FIELDS = ("input", "select", "textarea")
NOT_A_FIELD = ("hidden", "submit", "button", "image", "reset")
# The autocomplete tokens a field of this kind may carry (WCAG 1.3.5, HTML autofill).
AUTOCOMPLETE = {
    "email": {"email", "username"},
    "password": {"current-password", "new-password"},
    "one-time-code": {"one-time-code"},
}
AUTOFILL_TOKENS = {
    "on", "off", "name", "honorific-prefix", "given-name", "additional-name", "family-name",
    "honorific-suffix", "nickname", "username", "new-password", "current-password",
    "one-time-code", "organization-title", "organization", "street-address", "address-line1",
    "address-line2", "address-line3", "address-level4", "address-level3", "address-level2",
    "address-level1", "country", "country-name", "postal-code", "bday", "bday-day",
    "bday-month", "bday-year", "sex", "tel", "tel-national", "email", "url", "language",
}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str | None]
    parent: Node | None = None
    children: list[Node | str] = field(default_factory=list)

    def get(self, name: str, default=None):
        value = self.attrs.get(name, default)
        return "" if value is None and name in self.attrs else value

    def text(self) -> str:
        parts = [c if isinstance(c, str) else c.text() for c in self.children]
        return " ".join(" ".join(parts).split())

    def iter(self):
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.iter()

    def ancestors(self):
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    def classes(self) -> set[str]:
        return set((self.get("class") or "").split())

    def __str__(self) -> str:
        shown = " ".join(f'{k}="{v}"' if v is not None else k for k, v in self.attrs.items()
                         if k in ("id", "name", "type", "href", "class", "src"))
        return f"<{self.tag}{' ' + shown if shown else ''}>"


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.stack[-1])
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag, attrs):
        self.stack[-1].children.append(Node(tag, dict(attrs), self.stack[-1]))

    def handle_endtag(self, tag):
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data):
        self.stack[-1].children.append(data)


def parse(html: str | bytes) -> Node:
    builder = _TreeBuilder()
    builder.feed(html.decode() if isinstance(html, bytes) else html)
    builder.close()
    return builder.root


def _is_field(node: Node) -> bool:
    return node.tag in FIELDS and (node.tag != "input" or
                                   (node.get("type") or "text").lower() not in NOT_A_FIELD)


def _field_kind(node: Node) -> str | None:
    """email, password or one-time-code: the fields whose autocomplete is checked."""
    kind = (node.get("type") or "text").lower()
    name = (node.get("name") or "").lower()
    if kind == "password":
        return "password"
    if kind not in ("text", "email"):
        return None
    if kind == "email" or name.endswith("email"):
        return "email"
    if name == "code":
        return "one-time-code"
    return None


def problems(html: str | bytes) -> list[str]:
    """Everything this page does against the rules, one sentence each (empty: all good)."""
    doc = parse(html)
    nodes = list(doc.iter())
    found: list[str] = []
    by_id: dict[str, Node] = {}
    for node in nodes:
        if node.get("id") is not None:
            if node.get("id") in by_id:
                found.append(f"id {node.get('id')!r} used twice ({node})")
            by_id.setdefault(node.get("id"), node)

    def refs(node: Node, attr: str) -> list[Node]:
        targets = []
        for ref in (node.get(attr) or "").split():
            if ref in by_id:
                targets.append(by_id[ref])
            else:
                found.append(f"{node} {attr} points at missing id {ref!r}")
        return targets

    # -- the document ------------------------------------------------------------------
    html_el = next((n for n in nodes if n.tag == "html"), None)
    if html_el is None or html_el.get("lang") not in LANGS:
        found.append(f"<html lang> missing or not one of {LANGS}: "
                     f"{html_el.get('lang') if html_el else None!r}")
    title = next((n for n in nodes if n.tag == "title"), None)
    if title is None or not title.text():
        found.append("no <title> text")
    h1s = [n for n in nodes if n.tag == "h1"]
    if len(h1s) != 1:
        found.append(f"{len(h1s)} <h1> instead of one: {[h.text() for h in h1s]}")
    for node in h1s:
        if not node.text():
            found.append("empty <h1>")
    level = 0
    for node in nodes:
        if re.fullmatch(r"h[1-6]", node.tag):
            new = int(node.tag[1])
            if new > level + 1 and level:
                found.append(f"heading jumps from h{level} to h{new}: {node.text()!r}")
            level = new
    for node in nodes:
        if node.tag == "meta" and node.get("name") == "viewport":
            content = (node.get("content") or "").replace(" ", "").lower()
            if "user-scalable=no" in content or "maximum-scale=1" in content:
                found.append(f"the viewport forbids zooming: {content}")
    links = [n for n in nodes if n.tag == "a" and n.get("href") is not None]
    if not links or links[0].get("href") != "#contenu":
        found.append("the first link is not the skip link to #contenu")
    main = [n for n in nodes if n.tag == "main"]
    if len(main) != 1 or main[0].get("id") != "contenu":
        found.append("no single <main id=\"contenu\">")

    # -- content security policy: no inline code or style --------------------------------
    for node in nodes:
        if node.tag == "script" and (node.get("src") is None or node.text()):
            found.append("inline <script> (the CSP forbids it)")
        if node.tag == "style":
            found.append("<style> element (the CSP forbids inline styles)")
        if node.get("style") is not None:
            found.append(f"style= attribute on {node} (the CSP forbids it)")
        for name in node.attrs:
            if name.startswith("on"):
                found.append(f"{name}= handler on {node} (the CSP forbids it)")
        if (node.get("href") or "").strip().lower().startswith("javascript:"):
            found.append(f"javascript: link {node}")

    # -- names of links, buttons, images --------------------------------------------------
    for node in nodes:
        named = node.get("aria-label") or node.get("aria-labelledby")
        if node.tag == "a" and node.get("href") is not None and not (node.text() or named):
            found.append(f"link without text {node}")
        if node.tag == "button" and not (node.text() or named):
            found.append(f"button without text {node}")
        if node.tag == "input" and (node.get("type") or "").lower() in ("submit", "button") \
                and not (node.get("value") or named):
            found.append(f"button without text {node}")
        if node.tag == "img" and node.get("alt") is None:
            found.append(f"image without alt {node}")
        tabindex = node.get("tabindex")
        if tabindex and tabindex.lstrip("-").isdigit() and int(tabindex) > 0:
            found.append(f"positive tabindex on {node}")
        refs(node, "aria-describedby")
        for target in refs(node, "aria-labelledby"):
            if not target.text():
                found.append(f"{node} labelled by an empty element")

    # -- form fields ----------------------------------------------------------------------
    labelled = {n.get("for"): n for n in nodes if n.tag == "label" and n.get("for")}
    for target, label in labelled.items():
        if target not in by_id:
            found.append(f"<label for={target!r}> points at no element")
        elif not label.text():
            found.append(f"empty <label for={target!r}>")
    fields = [n for n in nodes if _is_field(n)]
    for node in fields:
        wrapped = any(a.tag == "label" for a in node.ancestors())
        if not (node.get("id") in labelled and node.get("id") or wrapped
                or node.get("aria-label") or node.get("aria-labelledby")):
            found.append(f"field without a label {node}")
        kind = _field_kind(node)
        autocomplete = (node.get("autocomplete") or "").split()
        if kind and not set(autocomplete) & AUTOCOMPLETE[kind]:
            found.append(f"{kind} field {node} has autocomplete={autocomplete or None}, "
                         f"wanted one of {sorted(AUTOCOMPLETE[kind])}")
        for token in autocomplete:
            if token not in AUTOFILL_TOKENS and not token.startswith(("section-", "shipping",
                                                                       "billing")):
                found.append(f"unknown autocomplete token {token!r} on {node}")
        if (node.get("type") or "").lower() == "radio":
            fieldset = next((a for a in node.ancestors() if a.tag == "fieldset"), None)
            legend = fieldset and next((c for c in fieldset.children
                                        if isinstance(c, Node) and c.tag == "legend"), None)
            if legend is None or not legend.text():
                found.append(f"radio button {node} outside a fieldset with a legend")

    # -- errors: announced, and linked to their field ---------------------------------------
    def described_text(node: Node) -> str:
        texts = [t.text() for t in refs(node, "aria-describedby")]
        group = next((a for a in node.ancestors() if a.tag == "fieldset"), None)
        if (node.get("type") or "").lower() in ("radio", "checkbox") and group is not None:
            texts += [t.text() for t in refs(group, "aria-describedby")]
        return " ".join(texts)

    def check_field_error(node: Node, message: str | None) -> None:
        radio = (node.get("type") or "").lower() == "radio"
        if node.tag == "fieldset":
            pass
        elif not radio and node.get("aria-invalid") != "true":
            found.append(f"field in error {node} lacks aria-invalid=\"true\"")
        described = described_text(node)
        if not described:
            found.append(f"field in error {node} has no aria-describedby message")
        elif message and " ".join(message.split()) not in described:
            found.append(f"field in error {node}: its description {described!r} does not "
                         f"hold the message {message!r}")

    summaries = [n for n in nodes if "error-summary" in n.classes()]
    for summary in summaries:
        if summary.get("role") != "alert":
            found.append(f"error summary {summary} without role=\"alert\"")
        for link in (n for n in summary.iter() if n.tag == "a"):
            href = link.get("href") or ""
            target = by_id.get(href[1:]) if href.startswith("#") else None
            if target is None:
                found.append(f"error summary link {href!r} points at no element")
                continue
            if not _is_field(target):  # a fieldset or a message does not take the focus
                found.append(f"error summary link {href!r} points at {target}, not a field")
                continue
            text = link.text()
            check_field_error(target, text.split(":", 1)[1].strip() if ":" in text else None)
    for node in nodes:
        if "field-error" in node.classes():
            if node.tag == "fieldset":
                check_field_error(node, None)
            else:
                for inner in (n for n in node.iter() if _is_field(n)):
                    check_field_error(inner, None)
        if "error-message" in node.classes() and not any(
                node.get("id") in (n.get("aria-describedby") or "").split() for n in nodes) \
                and node.get("role") != "alert":
            found.append(f"error message {node.text()!r} tied to no field (aria-describedby)")
        if _is_field(node) and node.get("aria-invalid") == "true":
            if not summaries:
                found.append(f"field in error {node} but no error summary on the page")
            if title is not None and not title.text().startswith(ERROR_TITLES):
                found.append(f"a field is in error but the title does not begin with one of "
                             f"{ERROR_TITLES}: {title.text()!r}")
            check_field_error(node, None)
    return list(dict.fromkeys(found))


def assert_accessible(html: str | bytes, name: str = "page") -> None:
    found = problems(html)
    assert not found, f"{name}: {len(found)} accessibility problem(s):\n  " + "\n  ".join(found)
