"""A démarche app: two procedures ("Demande d'aide au logement", "Aide aux études
supérieures") signing citizens in with compte-usager.

- sign-in through the provider (``clients/common/web.py``); a citizen without an account
  creates one on the provider's sign-in page and comes back here;
- the form prefilled from the claims, for the user or one of their relations
  (``relations`` scope); drafts saved and resumed;
- attachments (PNG, PDF, JPEG, DWG, size-limited, type read from the content), uploaded
  or picked from the citizen's wallet (the provider's page, then one document read with
  the short grant it gives);
- on submission: an administrative number, a confirmation page and e-mail (outbox), and
  a request filed in the citizen's account (hub API);
- an agent view (HTTP Basic, ``DEMARCHES_AGENT_PASSWORD``) that changes a status,
  writes to the citizen and notifies them, and applies the account deletions the
  provider reports.

This app must not import ``idp``: it talks to the provider over HTTP only.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlencode

from flask import (Flask, Response, abort, flash, redirect, render_template, request,
                   session, url_for)

from ..common import files, outbox
from ..common import settings as common_settings
from ..common.hub import HubClient, HubError
from ..common.web import check_csrf, current_login, login_required, setup, staff_area
from .models import Attachment, Cursor, Dossier, make_session, next_number, submitted, \
    user_dossiers
from .procedures import (PROCEDURES, TERRITORIES, Procedure, field_hint, field_label,
                         format_phone, prefill, shown_value, validate)

log = logging.getLogger("demarches")

SCOPE = "openid profile email phone address relations offline_access"
HUB_SCOPE = "requests:write notifications:write documents:read events:read"
MAX_ATTACHMENT = 10 * 1024 * 1024
STATUSES = {
    "submitted": "Déposée", "in_progress": "En cours d'instruction",
    "awaiting_citizen": "En attente de compléments", "accepted": "Acceptée",
    "rejected": "Refusée", "closed": "Clôturée",
}
DEFAULTS = {
    "ISSUER": "http://127.0.0.1:5000", "CLIENT_ID": "", "CLIENT_SECRET": "",
    "BASE_URL": "http://127.0.0.1:5001", "SECRET_KEY": "",
    "DATABASE_URL": "sqlite:///instance/demarches.sqlite3",
    "OUTBOX_DIR": "instance/demarches-outbox", "AGENT_PASSWORD": "",
    # FR or NC: the phone numbers typed without +33/+687, the currency (EUR, XPF).
    "REGION": "FR",
}


def create_app(config: dict[str, Any] | None = None) -> Flask:
    settings = common_settings.load("DEMARCHES_", DEFAULTS, config)
    base_url = settings["BASE_URL"]
    territory = TERRITORIES.get(str(settings["REGION"]).upper())
    if territory is None:
        raise RuntimeError(f"DEMARCHES_REGION must be one of {', '.join(TERRITORIES)}")
    app = Flask(__name__)
    setup(app, settings, SCOPE, cookie="demarches_session", after_login="home",
          max_upload=2 * MAX_ATTACHMENT + 1024 * 1024)
    db = make_session(settings["DATABASE_URL"])
    hub = HubClient(settings["ISSUER"], settings["CLIENT_ID"], settings["CLIENT_SECRET"],
                    HUB_SCOPE)
    app.extensions["demarches_db"] = db
    app.extensions["demarches_hub"] = hub

    @app.teardown_appcontext
    def _remove(_exc):
        db.remove()

    @app.context_processor
    def _globals():
        return {"procedures": PROCEDURES, "statuses": STATUSES,
                "format_phone": lambda e164: format_phone(e164, territory.region),
                "label": lambda f: field_label(f, territory),
                "hint": lambda f: field_hint(f, territory),
                "shown": lambda f, value: shown_value(f, value, territory),
                "format_size": lambda n: f"{max(1, round(n / 1024))} ko"}

    # -- helpers ---------------------------------------------------------------------
    def procedure_of(key: str) -> Procedure:
        procedure = PROCEDURES.get(key)
        if procedure is None:
            abort(404)
        return procedure

    def own_dossier(dossier_id: str) -> Dossier:
        dossier = db.get(Dossier, dossier_id[:36])
        login = current_login()
        if dossier is None or login is None or dossier.user_sub != login.sub:
            abort(404)
        return dossier

    def relations() -> list[dict[str, Any]]:
        return list(current_login().userinfo.get("relations") or [])

    def relation_label(relation: dict[str, Any] | None) -> str:
        if not relation:
            return "Moi-même"
        if relation.get("type") == "person":
            return f"{relation.get('given_name', '')} {relation.get('family_name', '')}".strip()
        return relation.get("name") or "Organisme"

    app.jinja_env.globals["relation_label"] = relation_label

    def dossier_link(dossier: Dossier) -> str:
        return base_url + url_for("dossier", dossier_id=dossier.id)

    def sync_to_hub(dossier: Dossier) -> bool:
        """File the submitted dossier in the citizen's account, once; False when the
        provider cannot be reached (the agent can try again)."""
        if dossier.hub_request_id:
            return True
        procedure = PROCEDURES[dossier.procedure]
        title = procedure.title
        if dossier.beneficiary:
            title += f" – pour {relation_label(dossier.beneficiary)}"
        try:
            created = hub.create_request(
                sub=dossier.user_sub, number=dossier.number, title=title,
                service=procedure.service, expected_days=procedure.expected_days,
                submitted_at=dossier.submitted_at.replace(tzinfo=timezone.utc).isoformat(),
                link=dossier_link(dossier))
        except HubError as exc:
            if exc.error != "conflict":
                log.warning("request %s not filed in the hub: %s", dossier.number, exc)
                return False
            created = next(r for r in hub.json("GET", "/requests",
                                               params={"sub": dossier.user_sub})["requests"]
                           if r["number"] == dossier.number)
        except Exception as exc:  # noqa: BLE001 - the provider down must not lose the dossier
            log.warning("request %s not filed in the hub: %s", dossier.number, exc)
            return False
        dossier.hub_request_id = created["id"]
        db.commit()
        return True

    def store_upload(dossier: Dossier, piece: str, upload) -> str | None:
        data = upload.read(MAX_ATTACHMENT + 1)
        kind, error = files.check(data, MAX_ATTACHMENT)
        if error:
            return error
        replace_attachment(dossier, piece, Attachment(
            piece=piece, filename=(upload.filename or f"piece.{kind}")[-200:], kind=kind,
            size=len(data), source="upload", content=data))
        return None

    def replace_attachment(dossier: Dossier, piece: str, attachment: Attachment) -> None:
        old = dossier.attachment(piece)
        if old is not None:
            dossier.attachments.remove(old)
        dossier.attachments.append(attachment)

    # -- citizen pages -----------------------------------------------------------------
    @app.get("/")
    def home():
        back = app.extensions["signin_logout_return"]()
        if back is not None:
            return back
        login = current_login()
        dossiers = user_dossiers(db, login.sub) if login else []
        return render_template("home.html", dossiers=dossiers)

    @app.get("/demarches/<key>")
    def procedure(key: str):
        return render_template("procedure.html", procedure=procedure_of(key))

    @app.post("/demarches/<key>/commencer")
    @login_required
    def start(key: str):
        check_csrf()
        proc = procedure_of(key)
        dossier = Dossier(procedure=proc.key, user_sub=current_login().sub,
                          values=prefill(current_login().userinfo, territory=territory))
        db.add(dossier)
        db.commit()
        return redirect(url_for("dossier", dossier_id=dossier.id))

    @app.route("/dossiers/<dossier_id>", methods=["GET", "POST"])
    @login_required
    def dossier(dossier_id: str):
        dossier = own_dossier(dossier_id)
        proc = PROCEDURES[dossier.procedure]
        if dossier.status != "draft":
            return render_template("confirmation.html", dossier=dossier, procedure=proc)
        errors: dict[str, str] = {}
        values = dict(dossier.values)
        status = 200
        if request.method == "POST":
            check_csrf()
            action = request.form.get("action", "save")
            values, errors = validate(proc, request.form, partial=action != "submit",
                                      territory=territory)
            chosen = request.form.get("beneficiary", "self")
            if chosen == "self":
                dossier.beneficiary = None
            else:
                found = next((r for r in relations() if r.get("id") == chosen), None)
                if found is not None and found != dossier.beneficiary:
                    dossier.beneficiary = found
                    values.update({k: v for k, v in prefill(current_login().userinfo, found)
                                   .items() if k in ("prenom", "nom")})
            for piece in proc.pieces:
                upload = request.files.get(f"piece-{piece.name}")
                if upload is not None and upload.filename:
                    error = store_upload(dossier, piece.name, upload)
                    if error:
                        errors[f"piece-{piece.name}"] = error
            dossier.values = values
            db.commit()
            if action.startswith("wallet:"):
                piece = action.split(":", 1)[1]
                if piece not in {p.name for p in proc.pieces}:
                    abort(400)
                state = secrets.token_urlsafe(16)
                session["wallet_pick"] = {"state": state, "dossier": dossier.id,
                                          "piece": piece}
                label = next(p.label for p in proc.pieces if p.name == piece)
                return redirect(settings["ISSUER"] + "/compte/porte-documents/choisir?" +
                                urlencode({"client_id": settings["CLIENT_ID"],
                                           "redirect_uri": base_url + url_for("wallet_return"),
                                           "state": state, "purpose": label}))
            if action.startswith("remove:"):
                old = dossier.attachment(action.split(":", 1)[1])
                if old is not None:
                    dossier.attachments.remove(old)
                    db.commit()
                return redirect(url_for("dossier", dossier_id=dossier.id) + "#pieces")
            if action == "submit":
                for piece in proc.pieces:
                    if piece.required and dossier.attachment(piece.name) is None \
                            and f"piece-{piece.name}" not in errors:
                        errors[f"piece-{piece.name}"] = f"Joignez « {piece.label} »."
                if not errors:
                    return submit(dossier, proc)
            if not errors:
                flash("Votre brouillon est enregistré. Vous pouvez le reprendre plus tard "
                      "depuis la page d'accueil de ce site.", "ok")
                return redirect(url_for("dossier", dossier_id=dossier.id))
            status = 400
        return render_template("dossier.html", dossier=dossier, procedure=proc, values=values,
                               errors=errors, relations=relations(),
                               login=current_login()), status

    def submit(dossier: Dossier, proc: Procedure):
        dossier.number = next_number(db, proc.prefix)
        dossier.status = "submitted"
        dossier.submitted_at = datetime.now(timezone.utc).replace(tzinfo=None)
        db.commit()
        email = dossier.values.get("email") or current_login().userinfo.get("email")
        outbox.write(settings["OUTBOX_DIR"], "email", email,
                     f"Votre demande {dossier.number} est enregistrée",
                     f"Bonjour,\n\nVotre demande « {proc.title} » est enregistrée sous le "
                     f"numéro {dossier.number}. Elle est transmise au service "
                     f"« {proc.service} », qui la traite en {proc.expected_days} jours en "
                     f"moyenne.\n\nSuivez son avancement dans votre compte usager, rubrique "
                     f"« Mes demandes » : {settings['ISSUER']}/compte/demandes\n\n"
                     f"Votre demande : {dossier_link(dossier)}\n")
        if not sync_to_hub(dossier):
            flash("Votre demande est enregistrée, mais son suivi n'apparaît pas encore dans "
                  "votre compte usager : il y sera ajouté dès que possible.", "error")
        return redirect(url_for("dossier", dossier_id=dossier.id))

    @app.post("/dossiers/<dossier_id>/supprimer")
    @login_required
    def delete_draft(dossier_id: str):
        check_csrf()
        dossier = own_dossier(dossier_id)
        if dossier.status != "draft":
            abort(400)
        db.delete(dossier)
        db.commit()
        flash("Le brouillon a été supprimé.", "ok")
        return redirect(url_for("home"))

    @app.get("/porte-documents/retour")
    @login_required
    def wallet_return():
        pending = session.pop("wallet_pick", None)
        state = request.args.get("state", "")
        if not pending or not hmac.compare_digest(state, pending["state"]):
            flash("Ce retour du porte-documents n'est pas reconnu. Recommencez.", "error")
            return redirect(url_for("home"))
        dossier = own_dossier(pending["dossier"])
        target = url_for("dossier", dossier_id=dossier.id) + "#pieces"
        grant = request.args.get("grant")
        if not grant:
            flash("Aucun document n'a été transmis depuis votre porte-documents.", "error")
            return redirect(target)
        try:
            described = hub.describe_document(grant)
            data = hub.download_document(grant)
        except HubError as exc:
            log.warning("wallet document not read: %s", exc)
            flash("Le document n'a pas pu être lu depuis votre porte-documents. "
                  "Recommencez.", "error")
            return redirect(target)
        kind, error = files.check(data, MAX_ATTACHMENT)
        if error:
            flash(error, "error")
            return redirect(target)
        replace_attachment(dossier, pending["piece"], Attachment(
            piece=pending["piece"], filename=f"{described['name']}.{kind}"[:200], kind=kind,
            size=len(data), source="wallet", content=data))
        db.commit()
        flash(f"Le document « {described['name']} » a été joint depuis votre porte-documents.",
              "ok")
        return redirect(target)

    # -- agent view --------------------------------------------------------------------
    staff_area(app, "/agent", "agent", settings.get("AGENT_PASSWORD") or "",
               "Identifiez-vous comme agent.")

    def apply_deletions() -> int:
        """The accounts deleted on the provider: their dossiers go."""
        cursor = db.get(Cursor, "events") or Cursor(name="events", value=0)
        db.add(cursor)
        try:
            page = hub.events(cursor.value)
        except Exception as exc:  # noqa: BLE001
            log.warning("events not read: %s", exc)
            return 0
        count = 0
        for item in page["events"]:
            if item["type"] == "user.deleted":
                for dossier in user_dossiers(db, item["sub"]):
                    db.delete(dossier)
                    count += 1
        cursor.value = page["last_id"]
        db.commit()
        return count

    @app.get("/agent")
    def agent_index():
        removed = apply_deletions()
        for dossier in submitted(db):
            if not dossier.hub_request_id:
                sync_to_hub(dossier)
        return render_template("agent_index.html", dossiers=submitted(db), removed=removed)

    def agent_dossier_of(dossier_id: str) -> Dossier:
        dossier = db.get(Dossier, dossier_id[:36])
        if dossier is None or dossier.status == "draft":
            abort(404)
        return dossier

    @app.route("/agent/dossiers/<dossier_id>", methods=["GET", "POST"])
    def agent_dossier(dossier_id: str):
        dossier = agent_dossier_of(dossier_id)
        proc = PROCEDURES[dossier.procedure]
        error = None
        if request.method == "POST":
            check_csrf()
            if not sync_to_hub(dossier):
                error = "Le compte usager ne répond pas : réessayez dans quelques minutes."
            elif request.form.get("action") == "status":
                new = request.form.get("status")
                comment = (request.form.get("comment") or "").strip()[:2000]
                if new not in STATUSES:
                    error = "Choisissez un état."
                else:
                    try:
                        hub.update_request(dossier.hub_request_id, status=new, comment=comment)
                        dossier.status = new
                        db.commit()
                        hub.notify(sub=dossier.user_sub, category="requests",
                                   title=f"Votre demande {dossier.number} : {STATUSES[new]}",
                                   body=comment or f"L'état de votre demande « {proc.title} » "
                                                   f"a changé.",
                                   link=dossier_link(dossier))
                        flash("L'état est changé et l'usager est prévenu.", "ok")
                        return redirect(url_for("agent_dossier", dossier_id=dossier.id))
                    except HubError as exc:
                        error = f"Le compte usager a refusé : {exc.description or exc.error}"
            elif request.form.get("action") == "message":
                body = (request.form.get("body") or "").strip()[:5000]
                if not body:
                    error = "Écrivez un message."
                else:
                    try:
                        hub.post_message(dossier.hub_request_id, body)
                        hub.notify(sub=dossier.user_sub, category="messages",
                                   title=f"Nouveau message sur votre demande {dossier.number}",
                                   body=body[:300], link=dossier_link(dossier))
                        flash("Le message est envoyé et l'usager est prévenu.", "ok")
                        return redirect(url_for("agent_dossier", dossier_id=dossier.id))
                    except HubError as exc:
                        error = f"Le compte usager a refusé : {exc.description or exc.error}"
        messages = []
        if dossier.hub_request_id:
            try:
                messages = hub.messages(dossier.hub_request_id)
            except Exception as exc:  # noqa: BLE001
                log.warning("messages not read: %s", exc)
        return render_template("agent_dossier.html", dossier=dossier, procedure=proc,
                               messages=messages, error=error), 400 if error else 200

    @app.get("/agent/pieces/<attachment_id>")
    def agent_attachment(attachment_id: str):
        attachment = db.get(Attachment, attachment_id[:36])
        if attachment is None:
            abort(404)
        return Response(attachment.content, mimetype=files.KINDS[attachment.kind], headers={
            "Content-Disposition": f'attachment; filename="piece.{attachment.kind}"'})

    return app
