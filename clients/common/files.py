"""Attachments: the type is read from the content (magic bytes), not from the name."""

from __future__ import annotations

import re

KINDS = {"png": "image/png", "pdf": "application/pdf", "jpg": "image/jpeg",
         "dwg": "image/vnd.dwg"}
_DWG = re.compile(rb"^AC10[0-9]{2}")


def detect_kind(data: bytes) -> str | None:
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if _DWG.match(data):
        return "dwg"
    return None


def check(data: bytes, max_bytes: int) -> tuple[str | None, str | None]:
    """(kind, None) for an acceptable file; (None, the French reason) otherwise."""
    if not data:
        return None, "Le fichier est vide. Choisissez un autre fichier."
    if len(data) > max_bytes:
        return None, (f"Le fichier dépasse la taille maximale de {max_bytes // (1024 * 1024)} Mo. "
                      "Réduisez-le et recommencez.")
    kind = detect_kind(data)
    if kind is None:
        return None, ("Ce fichier n'est pas au format PNG, PDF, JPEG ou DWG (son contenu a été "
                      "vérifié). Choisissez un fichier dans l'un de ces formats.")
    return kind, None
