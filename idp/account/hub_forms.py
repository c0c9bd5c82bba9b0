"""Forms of the hub's pages of "Mon compte" (requests, wallet)."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import TextAreaField
from wtforms.validators import DataRequired, Length, StopValidation

from ..web.forms import BaseForm
from .forms import DateField, _text


class ReplyForm(BaseForm):
    body = TextAreaField(_l("Votre réponse"), validators=[
        DataRequired(message=_l("Écrivez votre message.")),
        Length(max=5000, message=_l("Le message est trop long (5 000 caractères au plus)."))],
        render_kw={"rows": 5})


class RequiredFile:
    field_flags = {"required": True}

    def __call__(self, form, field):
        if not field.data or not getattr(field.data, "filename", ""):
            raise StopValidation(_l("Choisissez un fichier."))


class DocumentForm(BaseForm):
    file = FileField(_l("Fichier"), validators=[RequiredFile()],
                     render_kw={"accept": ".png,.pdf,.jpg,.jpeg,.dwg"})
    name = _text(_l("Nom du document"), required=_l("Donnez un nom au document."),
                 max_length=200, too_long=_l("Le nom est trop long (200 caractères au plus)."))
    document_date = DateField(_l("Date du document (facultatif)"))
