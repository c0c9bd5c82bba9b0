"""« Actualités de la Région »: news published by theme, sent to the theme's
subscribers by the channel each chose (e-mail or SMS, written to this app's outbox),
each message with the signed unsubscribe link the provider gives.

Citizens sign in with compte-usager (already signed in there: no password asked, single
sign-on); the editors' page (``/redaction``) is behind HTTP Basic
(``ACTUALITES_EDITOR_PASSWORD``). This app must not import ``idp``.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from flask import Flask, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import DateTime, Integer, String, Text, create_engine, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, scoped_session, \
    sessionmaker

from ..common import outbox
from ..common import settings as common_settings
from ..common.hub import HubClient, HubError
from ..common.web import check_csrf, setup, staff_area

log = logging.getLogger("actualites")
SCOPE = "openid profile email"
HUB_SCOPE = "subscriptions:read"
DEFAULTS = {
    "ISSUER": "http://127.0.0.1:5000", "CLIENT_ID": "", "CLIENT_SECRET": "",
    "BASE_URL": "http://127.0.0.1:5002", "SECRET_KEY": "",
    "DATABASE_URL": "sqlite:///instance/actualites.sqlite3",
    "OUTBOX_DIR": "instance/actualites-outbox", "EDITOR_PASSWORD": "",
}


class Base(DeclarativeBase):
    pass


class Article(Base):
    __tablename__ = "articles"

    id: Mapped[str] = mapped_column(String(36), primary_key=True,
                                    default=lambda: str(uuid.uuid4()))
    theme_id: Mapped[str] = mapped_column(String(64))
    theme_name: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    sent_to: Mapped[int] = mapped_column(Integer, default=0)
    published_at: Mapped[dt.datetime] = mapped_column(
        DateTime, default=lambda: dt.datetime.now(dt.timezone.utc).replace(tzinfo=None))


def send_article(folder: str, article: Article, subscriber: dict[str, Any], app_url: str) -> None:
    link = f"{app_url}/articles/{article.id}"
    unsubscribe = subscriber["unsubscribe_url"]
    if subscriber["channel"] == "sms" and subscriber.get("phone_number"):
        outbox.write(folder, "sms", subscriber["phone_number"], "",
                     f"{article.theme_name} : {article.title[:80]} {link} "
                     f"Désabonnement : {unsubscribe}")
    elif subscriber.get("email"):
        outbox.write(folder, "email", subscriber["email"],
                     f"{article.theme_name} : {article.title}",
                     f"{article.title}\n\n{article.body}\n\nLire en ligne : {link}\n\n"
                     f"Vous recevez ce message car vous êtes abonné au thème "
                     f"« {article.theme_name} » dans votre compte usager.\n"
                     f"Se désabonner : {unsubscribe}\n")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    settings = common_settings.load("ACTUALITES_", DEFAULTS, config)
    base_url = settings["BASE_URL"]
    app = Flask(__name__)
    setup(app, settings, SCOPE, cookie="actualites_session", after_login="home")
    engine = create_engine(settings["DATABASE_URL"])
    Base.metadata.create_all(engine)
    db = scoped_session(sessionmaker(engine, expire_on_commit=False))
    hub = HubClient(settings["ISSUER"], settings["CLIENT_ID"], settings["CLIENT_SECRET"],
                    HUB_SCOPE)

    @app.teardown_appcontext
    def _remove(_exc):
        db.remove()

    @app.get("/")
    def home():
        back = app.extensions["signin_logout_return"]()
        if back is not None:
            return back
        articles = list(db.scalars(select(Article).order_by(Article.published_at.desc())
                                   .limit(20)))
        return render_template("home.html", articles=articles)

    @app.get("/articles/<article_id>")
    def article(article_id: str):
        found = db.get(Article, article_id[:36])
        if found is None:
            abort(404)
        return render_template("article.html", article=found)

    staff_area(app, "/redaction", "redaction", settings.get("EDITOR_PASSWORD") or "",
               "Identifiez-vous.")

    @app.route("/redaction", methods=["GET", "POST"])
    def editor():
        errors: dict[str, str] = {}
        values = {"theme": "", "title": "", "body": ""}
        try:
            themes = hub.themes()
        except HubError as exc:
            log.warning("themes not read: %s", exc)
            themes = []
        status = 200
        if request.method == "POST":
            check_csrf()
            values = {k: (request.form.get(k) or "").strip() for k in values}
            theme = next((t for t in themes if t["id"] == values["theme"]), None)
            if theme is None:
                errors["theme"] = "Choisissez un thème."
            if not values["title"] or len(values["title"]) > 200:
                errors["title"] = "Saisissez un titre (200 caractères au plus)."
            if not values["body"] or len(values["body"]) > 5000:
                errors["body"] = "Saisissez le texte (5 000 caractères au plus)."
            if not errors:
                try:
                    subscribers = hub.subscribers(theme["id"])
                except HubError as exc:
                    log.warning("subscribers not read: %s", exc)
                    errors["theme"] = "Le compte usager ne répond pas : réessayez plus tard."
                else:
                    item = Article(theme_id=theme["id"], theme_name=theme["name"],
                                   title=values["title"], body=values["body"],
                                   sent_to=len(subscribers))
                    db.add(item)
                    db.commit()
                    for subscriber in subscribers:
                        send_article(settings["OUTBOX_DIR"], item, subscriber, base_url)
                    flash(f"Article publié et envoyé à {len(subscribers)} abonné(s).", "ok")
                    return redirect(url_for("article", article_id=item.id))
            status = 400
        return render_template("editor.html", themes=themes, values=values,
                               errors=errors), status

    return app
