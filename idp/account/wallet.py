"""Porte-documents: the user's documents (added, named, dated, downloaded, deleted), and
the page where the user picks one for a démarche app, which then may read that one
document for a few minutes (``/api/documents/...``)."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Response, abort, flash, g, redirect, request, url_for
from flask_babel import gettext as _

from ..hub import wallet as hub_wallet
from ..hub.context import wallet_store
from ..persistence.models import Client
from ..services import audit, services
from ..web.auth import login_required
from . import bp
from .common import format_when, page, ui_locale
from .forms import ButtonForm
from .hub_forms import DocumentForm

UPLOAD_ENDPOINTS = ("account.wallet", "account.pick_document")
# Room for the form's other fields and the multipart framing around the file.
UPLOAD_OVERHEAD = 1024 * 1024


@bp.url_value_preprocessor
def _allow_uploads(endpoint, _values):
    # Before any hook reads the form (the CSRF check does): the app-wide limit is 1 MiB.
    if endpoint in UPLOAD_ENDPOINTS and request.method == "POST":
        request.max_content_length = 2 * services().settings.hub.wallet_max_bytes \
            + UPLOAD_OVERHEAD


def _add_from_form(form: DocumentForm):
    """The document of a valid form, added; None with the error on the file field."""
    svc = services()
    upload = form.file.data
    data = upload.read(svc.settings.hub.wallet_max_bytes + 1)
    try:
        document = hub_wallet.add_document(
            svc.db.session, wallet_store(svc), g.user, name=form.name.data.strip(),
            document_date=form.document_date.data, data=data,
            max_bytes=svc.settings.hub.wallet_max_bytes,
            max_documents=svc.settings.hub.wallet_max_documents)
    except hub_wallet.WalletError as exc:
        form.file.errors = [*form.file.errors, str(exc)]
        return None
    audit("wallet.document_added", user_id=g.user.id, kind=document.kind, size=document.size)
    return document


def _documents_context():
    svc = services()
    locale = ui_locale()
    return {"documents": hub_wallet.user_documents(svc.db.session, g.user.id),
            "kind_labels": hub_wallet.KIND_LABELS, "format_size": hub_wallet.format_size,
            "max_size": hub_wallet.format_size(svc.settings.hub.wallet_max_bytes),
            "when": lambda v: format_when(v, locale)}


@bp.route("/porte-documents", methods=["GET", "POST"])
@login_required
def wallet():
    form = DocumentForm()
    status = 200
    if request.method == "POST":
        if form.validate_on_submit() and _add_from_form(form) is not None:
            services().db.session.commit()
            flash(_("Le document « %(name)s » a été ajouté à votre porte-documents.",
                    name=form.name.data.strip()), "success")
            return redirect(url_for("account.wallet"))
        status = 400
    return page("account/wallet.html", status, section="account.wallet", form=form,
                button_form=ButtonForm(), **_documents_context())


def _own_document(document_id: str):
    document = hub_wallet.own_document(services().db.session, g.user.id, document_id[:36])
    if document is None:
        abort(404)
    return document


@bp.route("/porte-documents/<document_id>")
@login_required
def wallet_download(document_id: str):
    document = _own_document(document_id)
    data = hub_wallet.read_document(wallet_store(services()), document)
    response = Response(data, mimetype=hub_wallet.KINDS[document.kind])
    response.headers["Content-Disposition"] = f'attachment; filename="document.{document.kind}"'
    return response


@bp.route("/porte-documents/<document_id>/supprimer", methods=["POST"])
@login_required
def wallet_delete(document_id: str):
    if not ButtonForm().validate_on_submit():
        abort(400)
    svc = services()
    document = _own_document(document_id)
    name = document.name
    hub_wallet.delete_document(svc.db.session, wallet_store(svc), document)
    audit("wallet.document_deleted", user_id=g.user.id)
    svc.db.session.commit()
    flash(_("Le document « %(name)s » a été supprimé.", name=name), "success")
    return redirect(url_for("account.wallet"))


# -- picking a document for a démarche app ------------------------------------------------
def _pick_request() -> tuple[Client, str, str]:
    """The app asking, its return address (one of its registered redirect URIs) and its
    state; 400 when they do not check out."""
    db = services().db.session
    source = request.form if request.method == "POST" else request.args
    client_id = (source.get("client_id") or "")[:64]
    redirect_uri = (source.get("redirect_uri") or "")[:1000]
    state = (source.get("state") or "")[:200]
    client = db.get(Client, client_id) if client_id else None
    if client is None or not client.check_redirect_uri(redirect_uri):
        abort(400)
    return client, redirect_uri, state


def _back(redirect_uri: str, **params: str) -> Response:
    joiner = "&" if "?" in redirect_uri else "?"
    return redirect(redirect_uri + joiner + urlencode({k: v for k, v in params.items() if v}))


@bp.route("/porte-documents/choisir", methods=["GET", "POST"])
@login_required
def pick_document():
    svc = services()
    db = svc.db.session
    client, redirect_uri, state = _pick_request()
    purpose = (request.values.get("purpose") or "")[:200]
    form = DocumentForm()
    error = None
    status = 200
    if request.method == "POST":
        if not ButtonForm().validate_on_submit():
            abort(400)
        decision = request.form.get("decision")
        if decision == "cancel":
            return _back(redirect_uri, error="access_denied", state=state)
        document = None
        if decision == "upload":
            if form.validate():
                document = _add_from_form(form)
        else:
            document = hub_wallet.own_document(db, g.user.id,
                                               (request.form.get("document") or "")[:36])
            if document is None:
                error = _("Choisissez un document, ou ajoutez-en un.")
        if document is not None:
            value = hub_wallet.grant_document(db, g.user, document, client,
                                              svc.settings.hub.document_grant_ttl)
            audit("wallet.document_shared", user_id=g.user.id, client_id=client.client_id,
                  document=document.id)
            db.commit()
            return _back(redirect_uri, grant=value, state=state)
        status = 400
    return page("account/wallet_pick.html", status, section="account.wallet", client=client,
                redirect_uri=redirect_uri, state=state, purpose=purpose, form=form,
                error=error, ttl_minutes=max(1, svc.settings.hub.document_grant_ttl // 60),
                **_documents_context())
