"""`idp purge`: expired rows go, live ones stay."""

from __future__ import annotations

import datetime as dt
import json

from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import func, select, update

from idp.cli import main
from idp.persistence import consumables
from idp.persistence.models import Consumable, Grant, SsoSession, utcnow
from tests.oidc.test_code_flow import exchange, sign_in


def test_purge_deletes_only_what_expired(app, svc, browser, rp, user):
    result, verifier, _ = sign_in(browser, rp, user, scope="openid offline_access")
    assert exchange(browser, rp, result["code"], verifier).status_code == 200
    with app.app_context():
        session = svc.db.session
        old = utcnow() - dt.timedelta(days=400)
        consumables.issue_bearer(session, "email_link", 60)  # live
        consumables.issue_bearer(session, "email_link", -400 * 86400)  # stale
        session.commit()
        session.execute(update(SsoSession).values(expires_at=old))
        session.commit()
        before = session.scalar(select(func.count()).select_from(Consumable))
    output = CliRunner().invoke(main, ["purge"], obj=ScriptInfo(create_app=lambda: app))
    assert output.exit_code == 0, output.output
    counts = json.loads(output.output)
    assert counts["consumables"] == 1 and counts["sso_sessions"] == 1
    assert counts["grants"] == 0  # the grant is recent
    with app.app_context():
        session = svc.db.session
        assert session.scalar(select(func.count()).select_from(Consumable)) == before - 1
        assert session.scalar(select(func.count()).select_from(Grant)) == 1
