"""The document wallet ("Porte-documents"): the user's documents, their type checked
from their content, and the short-lived grants through which an app reads the one
document the user picked for it."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets

from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ..persistence.models import Client, DocumentGrant, User, WalletDocument, utcnow
from . import HubError
from .storage import EncryptedStore

KINDS = {"png": "image/png", "pdf": "application/pdf", "jpg": "image/jpeg",
         "dwg": "image/vnd.dwg"}
KIND_LABELS = {"png": "PNG", "pdf": "PDF", "jpg": "JPEG", "dwg": "DWG"}
# AutoCAD drawings start with their version, "AC10" and two digits (AC1009 to AC1032).
_DWG = re.compile(rb"^AC10[0-9]{2}")


class WalletError(ValueError):
    """A document refused, with the French message shown next to the field."""


def detect_kind(data: bytes) -> str | None:
    """The document's type from its first bytes (its name and declared type are not
    trusted): png, pdf, jpg, dwg, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if _DWG.match(data):
        return "dwg"
    return None


def format_size(size: int) -> str:
    if size >= 1024 * 1024:
        megabytes = size / (1024 * 1024)
        text = f"{megabytes:.0f}" if megabytes == int(megabytes) else f"{megabytes:.1f}"
        return text.replace(".", ",") + " Mo"
    return f"{max(1, round(size / 1024))} ko"


def check_document(data: bytes, max_bytes: int) -> str:
    """The kind of an acceptable document; a WalletError in French otherwise."""
    if not data:
        raise WalletError(_l("Le fichier est vide. Choisissez un autre fichier."))
    if len(data) > max_bytes:
        raise WalletError(_l("Le fichier dépasse la taille maximale de %(size)s. "
                             "Réduisez-le (par exemple en le numérisant en noir et blanc) "
                             "et recommencez.", size=format_size(max_bytes)))
    kind = detect_kind(data)
    if kind is None:
        raise WalletError(_l("Ce fichier n'est pas au format PNG, PDF, JPEG ou DWG (son "
                             "contenu a été vérifié, pas seulement son nom). Choisissez un "
                             "fichier dans l'un de ces formats."))
    return kind


def user_documents(session: Session, user_id: str) -> list[WalletDocument]:
    return list(session.scalars(select(WalletDocument).where(
        WalletDocument.user_id == user_id).order_by(WalletDocument.created_at.desc())))


def add_document(session: Session, store: EncryptedStore, user: User, *, name: str,
                 document_date: dt.date | None, data: bytes, max_bytes: int,
                 max_documents: int) -> WalletDocument:
    kind = check_document(data, max_bytes)
    held = session.scalar(select(func.count()).select_from(WalletDocument).where(
        WalletDocument.user_id == user.id))
    if held >= max_documents:
        raise WalletError(_l("Votre porte-documents contient déjà %(count)s documents, le "
                             "maximum. Supprimez-en un pour en ajouter un autre.",
                             count=max_documents))
    document = WalletDocument(user_id=user.id, name=name, document_date=document_date,
                              kind=kind, size=len(data), storage_key=secrets.token_urlsafe(24),
                              sha256=hashlib.sha256(data).hexdigest())
    store.put(document.storage_key, data)
    session.add(document)
    session.flush()
    return document


def read_document(store: EncryptedStore, document: WalletDocument) -> bytes:
    data = store.get(document.storage_key)
    if hashlib.sha256(data).hexdigest() != document.sha256:
        raise HubError("server_error", "the stored file does not match", 500)
    return data


def delete_document(session: Session, store: EncryptedStore, document: WalletDocument) -> None:
    session.execute(delete(DocumentGrant).where(DocumentGrant.document_id == document.id))
    session.delete(document)
    session.flush()
    store.delete(document.storage_key)


def own_document(session: Session, user_id: str, document_id: str) -> WalletDocument | None:
    document = session.get(WalletDocument, document_id)
    return document if document is not None and document.user_id == user_id else None


# -- grants -----------------------------------------------------------------------------
def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def grant_document(session: Session, user: User, document: WalletDocument, client: Client,
                   ttl: int) -> str:
    """Let ``client`` read ``document`` for ``ttl`` seconds; the bearer value to give it."""
    if document.user_id != user.id:
        raise HubError("forbidden", "not the user's document", 403)
    value = secrets.token_urlsafe(32)
    session.add(DocumentGrant(digest=_digest(value), document_id=document.id,
                              client_id=client.client_id, user_id=user.id,
                              expires_at=utcnow() + dt.timedelta(seconds=ttl)))
    return value


def granted_document(session: Session, client: Client, value: str
                     ) -> tuple[DocumentGrant, WalletDocument]:
    """The document a grant gives ``client``; refused when unknown, another app's,
    expired, or its user disabled."""
    if not isinstance(value, str) or not 20 <= len(value) <= 100:
        raise HubError("invalid_grant", "unknown document grant", 404)
    grant = session.scalar(select(DocumentGrant).where(DocumentGrant.digest == _digest(value)))
    if grant is None or grant.client_id != client.client_id:
        raise HubError("invalid_grant", "unknown document grant", 404)
    if grant.expires_at <= utcnow():
        raise HubError("expired_grant", "this document grant has expired: ask the user to "
                       "pick the document again", 410)
    document = session.get(WalletDocument, grant.document_id)
    user = session.get(User, grant.user_id)
    if document is None or user is None or user.disabled:
        raise HubError("invalid_grant", "unknown document grant", 404)
    return grant, document


def document_as_dict(document: WalletDocument) -> dict:
    return {"name": document.name, "type": document.kind,
            "content_type": KINDS[document.kind], "size": document.size,
            "date": document.document_date.isoformat() if document.document_date else None,
            "sha256": document.sha256}


def purge_expired_grants(session: Session) -> int:
    return session.execute(delete(DocumentGrant).where(
        DocumentGrant.expires_at < utcnow() - dt.timedelta(days=1))).rowcount
