"""Mes relations: the persons (children, spouse, parents...) and organisations
(associations, companies) the user acts for.

Relying parties read them through the ``relations`` scope, as the structured claim
``relations``, only when the user consented to that scope (registered below, at import).
"""

from __future__ import annotations

from typing import Any

from flask import abort, flash, g, redirect, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..oidc.claims import register_scope
from ..persistence.models import User
from ..persistence.models.relations import Relation
from ..services import audit, services
from ..web.auth import login_required
from . import bp
from .common import page
from .forms import IDENTIFIER_TYPES, RELATIONSHIPS, ButtonForm, OrganisationForm, PersonForm
from .identifiers import IdentifierError, normalize_identifier

MAX_RELATIONS = 100
KINDS = {"personne": "person", "organisme": "organisation"}


def user_relations(session: Session, user_id: str) -> list[Relation]:
    return list(session.scalars(select(Relation).where(Relation.user_id == user_id).order_by(
        Relation.kind.desc(), Relation.created_at)))


def relation_as_dict(relation: Relation) -> dict[str, Any]:
    """The claim value of one relation (also used by the data export)."""
    if relation.kind == "person":
        item = {"id": relation.id, "type": "person", "relationship": relation.relationship,
                "given_name": relation.given_name, "family_name": relation.family_name}
        if relation.birthdate:
            item["birthdate"] = relation.birthdate.isoformat()
        return item
    item = {"id": relation.id, "type": "organisation", "name": relation.organisation_name,
            "role": relation.role}
    if relation.identifier_type and relation.identifier:
        item[relation.identifier_type] = relation.identifier
    return item


def relations_claim(session: Session, user: User) -> dict[str, Any]:
    return {"relations": [relation_as_dict(r) for r in user_relations(session, user.id)]}


register_scope("relations", ("relations",), relations_claim)


# -- pages -------------------------------------------------------------------------------
def _own(relation_id: str) -> Relation:
    relation = services().db.session.get(Relation, relation_id)
    if relation is None or relation.user_id != g.user.id:
        abort(404)
    return relation


@bp.route("/relations")
@login_required
def relations():
    items = user_relations(services().db.session, g.user.id)
    return page("account/relations.html", section="account.relations",
                persons=[r for r in items if r.kind == "person"],
                organisations=[r for r in items if r.kind == "organisation"],
                relationship_labels=dict(RELATIONSHIPS),
                identifier_labels={"siret": "SIRET", "ridet": "RIDET"},
                form=ButtonForm())


def _form_for(kind: str, relation: Relation | None):
    cls = PersonForm if kind == "person" else OrganisationForm
    return cls(obj=relation if request.method == "GET" else None)


def _save(form, kind: str, relation: Relation) -> bool:
    """Copy a valid form into ``relation``; False (errors on the form) otherwise."""
    if kind == "organisation":
        try:
            identifier = normalize_identifier(form.identifier_type.data, form.identifier.data)
        except IdentifierError as exc:
            form.identifier.errors.append(_(str(exc)))
            return False
        relation.organisation_name = form.organisation_name.data.strip()
        relation.identifier_type = form.identifier_type.data
        relation.identifier = identifier
        relation.role = form.role.data.strip()
    else:
        relation.relationship = form.relationship.data
        relation.given_name = form.given_name.data.strip()
        relation.family_name = form.family_name.data.strip()
        relation.birthdate = form.birthdate.data
    return True


@bp.route("/relations/<kind_slug>/ajouter", methods=["GET", "POST"])
@login_required
def add_relation(kind_slug: str):
    kind = KINDS.get(kind_slug)
    if kind is None:
        abort(404)
    db = services().db.session
    form = _form_for(kind, None)
    error = None
    if request.method == "POST" and form.validate_on_submit():
        count = db.scalar(select(func.count()).select_from(Relation).where(
            Relation.user_id == g.user.id))
        if count >= MAX_RELATIONS:
            error = _("Vous avez atteint le nombre maximal de relations (%(max)s). Supprimez "
                      "celles qui ne servent plus.", max=MAX_RELATIONS)
        else:
            relation = Relation(user_id=g.user.id, kind=kind)
            if _save(form, kind, relation):
                db.add(relation)
                db.flush()
                audit("relation.created", user_id=g.user.id, relation_id=relation.id, kind=kind)
                db.commit()
                flash(_("La relation a été ajoutée."), "success")
                return redirect(url_for("account.relations"))
    status = 400 if request.method == "POST" else 200
    return page("account/relation_form.html", status, section="account.relations", form=form,
                kind=kind, relation=None, error=error, identifier_types=IDENTIFIER_TYPES)


@bp.route("/relations/<relation_id>/modifier", methods=["GET", "POST"])
@login_required
def edit_relation(relation_id: str):
    relation = _own(relation_id)
    db = services().db.session
    form = _form_for(relation.kind, relation)
    if request.method == "POST" and form.validate_on_submit():
        if _save(form, relation.kind, relation):
            audit("relation.updated", user_id=g.user.id, relation_id=relation.id,
                  kind=relation.kind)
            db.commit()
            flash(_("La relation a été modifiée."), "success")
            return redirect(url_for("account.relations"))
    status = 400 if request.method == "POST" else 200
    return page("account/relation_form.html", status, section="account.relations", form=form,
                kind=relation.kind, relation=relation, error=None,
                identifier_types=IDENTIFIER_TYPES)


@bp.route("/relations/<relation_id>/supprimer", methods=["POST"])
@login_required
def delete_relation(relation_id: str):
    relation = _own(relation_id)
    if not ButtonForm().validate_on_submit():
        abort(400)
    db = services().db.session
    audit("relation.deleted", user_id=g.user.id, relation_id=relation.id, kind=relation.kind)
    db.delete(relation)
    db.commit()
    flash(_("La relation a été supprimée."), "success")
    return redirect(url_for("account.relations"))
