"""Page skeletons (idp.web.skeleton): a filled skeleton is the page a full render gives,
byte for byte, whatever the per-request values hold."""

from __future__ import annotations

import pytest
from flask import session

from idp.flows import login
from idp.web.common import page_skeletons
from idp.web.skeleton import QUERY, TEXT, SkeletonCache

AWKWARD = 'a <b> & "c" \'d\' é€ +%20/?=#;'


# -- the cache itself ----------------------------------------------------------------
def test_fill_escapes_each_slot_by_its_encoder_and_renders_once():
    cache = SkeletonCache()
    renders = []

    def render(markers):
        renders.append(markers)
        return f'<a href="/x?q={markers["q"]}">{markers["t"]}</a><p>{markers["t"]}</p>'

    slots = {"q": QUERY, "t": TEXT}
    first = cache.page("k", slots, render).fill({"q": "a b&c/é", "t": "<i>&"})
    assert first == ('<a href="/x?q=a+b%26c/%C3%A9">&lt;i&gt;&amp;</a>'
                     "<p>&lt;i&gt;&amp;</p>")
    again = cache.page("k", slots, render).fill({"q": "z", "t": "y"})
    assert again == '<a href="/x?q=z">y</a><p>y</p>'
    assert len(renders) == 1 and len(cache) == 1


def test_a_value_function_is_called_only_when_the_page_shows_its_slot():
    cache = SkeletonCache()
    skeleton = cache.page("k", {"a": TEXT}, lambda m: f"[{m['a']}]")
    calls = []
    assert skeleton.fill({"a": lambda: calls.append(1) or "v", "b": lambda: 1 / 0}) == "[v]"
    assert calls == [1]


def test_a_slot_the_template_loses_is_refused():
    cache = SkeletonCache()
    with pytest.raises(ValueError, match="lost"):
        cache.page("k", {"kept": TEXT, "lost": TEXT},
                   lambda m: m["kept"] + m["lost"].upper())


# -- the login page -------------------------------------------------------------------
def _both_renders(app, svc, url, *, client_id=None, hint=None, return_to="/compte"):
    """The login page of one new flow, filled from its skeleton and rendered in full."""
    with app.test_request_context(url):
        app.preprocess_request()
        flow = login._new_flow(return_to, client_id=client_id, acr=None, login_hint=hint)
        svc.db.session.commit()
        fast = login._fresh_login_page(flow).get_data(as_text=True)
        form = login.LoginForm(formdata=None)
        form.email.data = hint or None
        full = login._render_login(flow, form, login.Refusal(None, 200)).get_data(as_text=True)
        svc.db.session.rollback()
        assert "_flashes" not in session
    return fast, full


@pytest.mark.parametrize("lang", ["fr", "en"])
@pytest.mark.parametrize("with_client", [False, True])
@pytest.mark.parametrize("hint", [None, AWKWARD])
def test_filled_login_page_is_the_full_render(app, svc, client_factory, lang, with_client,
                                              hint):
    names = ["Aide <logement> & « bourses » \"2026\"", "Autre démarche"]
    client_ids = [client_factory(name=name).client_id for name in names] if with_client \
        else [None, None]
    # The skeleton is rendered for another visitor first (another path, query, client,
    # hint and return_to): nothing of theirs may show in this visitor's page.
    _both_renders(app, svc, f"/login?lang={lang}&flow=other&q=first", client_id=client_ids[1],
                  hint=hint and "premiere@example.org", return_to="/compte/premier")
    url = f"/authorize?lang={lang}&client_id=x&state={AWKWARD}&redirect_uri=/{AWKWARD}"
    fast, full = _both_renders(app, svc, url, client_id=client_ids[0], hint=hint,
                               return_to="/authorize/resume/" + AWKWARD)
    assert fast == full
    assert len(svc.extras["page_skeletons"]) == 1  # the first visitor's skeleton served
    with app.app_context():
        assert page_skeletons()._nonce not in fast  # no marker left
    # The page shows the per-request values, escaped: what the comparison relies on.
    if hint:
        assert 'value="a &lt;b&gt; &amp; &#34;c&#34; &#39;d&#39; é€ +%20/?=#;"' in full
    if with_client:
        assert "Aide &lt;logement&gt; &amp;" in full
    assert "return_to=/authorize/resume/a+%3Cb%3E" in full


def test_each_visitor_gets_their_own_flow_and_token(app, svc):
    fast1, _ = _both_renders(app, svc, "/login")
    fast2, _ = _both_renders(app, svc, "/login")
    assert fast1 != fast2
    assert len(svc.extras["page_skeletons"]) == 1  # one shape, rendered once


def test_a_signed_in_visitor_gets_the_full_render(app, user, browser):
    """The skeleton has no account menu: a signed-in visitor's page is rendered in full."""
    browser.login(user.email)
    page = browser.get("/login?force=1")
    assert page.status_code == 200
    assert "Se déconnecter" in page.text


def test_a_waiting_notice_gets_the_full_render(app, svc):
    with app.test_request_context("/login"):
        app.preprocess_request()
        session["_flashes"] = [("info", "Votre mot de passe a été changé.")]
        flow = login._new_flow("/compte", client_id=None, acr=None, login_hint=None)
        page = login._fresh_login_page(flow).get_data(as_text=True)
        svc.db.session.rollback()
    assert "Votre mot de passe a été changé." in page


def test_templates_reloading_on_change_are_rendered_in_full(app, svc):
    """In development (debug mode) an edited template shows at the next page."""
    app.jinja_env.auto_reload = True
    fast, full = _both_renders(app, svc, "/login")
    assert fast == full
    assert "page_skeletons" not in svc.extras
