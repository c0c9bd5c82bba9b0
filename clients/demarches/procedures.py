"""The procedures this app handles: their fields (with French labels and checks), the
documents to attach, the service in charge and its usual delay."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]{2,}$")
POSTAL_RE = re.compile(r"^\d{5}$")
PHONE_RE = re.compile(r"^\+?[0-9 .()-]{6,20}$")


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "text"  # text | email | tel | postal | choice | integer | money
    required: bool = True
    hint: str = ""
    choices: tuple[tuple[str, str], ...] = ()
    low: int = 0
    high: int = 0
    autocomplete: str = ""
    group: str = "demandeur"


@dataclass(frozen=True)
class Piece:
    name: str
    label: str
    required: bool = True
    hint: str = ""


@dataclass(frozen=True)
class Procedure:
    key: str
    title: str
    prefix: str
    service: str
    expected_days: int
    summary: str
    fields: tuple[Field, ...]
    pieces: tuple[Piece, ...]
    groups: dict[str, str] = field(default_factory=dict)

    def field(self, name: str) -> Field:
        return next(f for f in self.fields if f.name == name)


IDENTITY = (
    Field("prenom", "Prénom", autocomplete="given-name"),
    Field("nom", "Nom", autocomplete="family-name"),
    Field("email", "Adresse e-mail", kind="email", autocomplete="email"),
    Field("telephone", "Téléphone", kind="tel", required=False, hint="Facultatif.",
          autocomplete="tel"),
    Field("adresse", "Adresse", autocomplete="street-address"),
    Field("code_postal", "Code postal", kind="postal", hint="5 chiffres, par exemple 75001.",
          autocomplete="postal-code"),
    Field("commune", "Commune", autocomplete="address-level2"),
)

PROCEDURES = {
    "aide-logement": Procedure(
        key="aide-logement", title="Demande d'aide au logement", prefix="AL",
        service="Direction de l'habitat et du logement", expected_days=30,
        summary="Une aide pour payer le loyer de votre résidence principale.",
        fields=IDENTITY + (
            Field("situation", "Votre situation", kind="choice", group="logement", choices=(
                ("locataire", "Locataire"), ("colocataire", "Colocataire"),
                ("foyer", "Résident d'un foyer ou d'une résidence"))),
            Field("personnes", "Nombre de personnes dans le logement", kind="integer",
                  low=1, high=20, group="logement"),
            Field("loyer", "Loyer mensuel, charges comprises (en euros)", kind="money",
                  hint="Par exemple 540.", group="logement"),
        ),
        pieces=(Piece("domicile", "Justificatif de domicile (bail ou quittance de loyer)"),
                Piece("revenus", "Dernier avis d'imposition", required=False,
                      hint="Facultatif : il accélère l'instruction.")),
        groups={"demandeur": "Le demandeur", "logement": "Le logement"}),
    "aide-etudes": Procedure(
        key="aide-etudes", title="Aide aux études supérieures", prefix="AES",
        service="Direction de l'enseignement supérieur", expected_days=45,
        summary="Une bourse pour les étudiants inscrits dans l'enseignement supérieur.",
        fields=IDENTITY + (
            Field("etablissement", "Établissement d'inscription", group="etudes"),
            Field("formation", "Formation suivie", hint="Par exemple : Licence de droit.",
                  group="etudes"),
            Field("annee", "Année d'études après le baccalauréat", kind="integer", low=1,
                  high=8, group="etudes"),
            Field("boursier", "Bénéficiez-vous d'une autre bourse ?", kind="choice",
                  choices=(("non", "Non"), ("oui", "Oui")), group="etudes"),
        ),
        pieces=(Piece("scolarite", "Certificat de scolarité de l'année en cours"),
                Piece("notes", "Relevé de notes de l'année précédente", required=False,
                      hint="Facultatif.")),
        groups={"demandeur": "L'étudiant ou l'étudiante", "etudes": "Les études"}),
}


def format_phone(e164: str | None) -> str:
    """``+33612345678`` → ``06 12 34 56 78``; other numbers are left as they are."""
    if not e164:
        return ""
    if re.fullmatch(r"\+33\d{9}", e164):
        digits = "0" + e164[3:]
        return " ".join(digits[i:i + 2] for i in range(0, 10, 2))
    return e164


def prefill(userinfo: dict[str, Any], beneficiary: dict[str, Any] | None = None
            ) -> dict[str, str]:
    """The form's values from the claims; a relation the user acts for gives the names."""
    address = userinfo.get("address") or {}
    values = {
        "prenom": userinfo.get("given_name") or "", "nom": userinfo.get("family_name") or "",
        "email": userinfo.get("email") or "",
        "telephone": format_phone(userinfo.get("phone_number")),
        "adresse": address.get("street_address") or "",
        "code_postal": address.get("postal_code") or "",
        "commune": address.get("locality") or "",
    }
    if beneficiary and beneficiary.get("type") == "person":
        values["prenom"] = beneficiary.get("given_name") or ""
        values["nom"] = beneficiary.get("family_name") or ""
    return values


def validate(procedure: Procedure, form, *, partial: bool) -> tuple[dict[str, str],
                                                                       dict[str, str]]:
    """(values, errors by field) in French; ``partial`` (a draft): only what is filled
    is checked."""
    values = {f.name: (form.get(f.name) or "").strip()[:300] for f in procedure.fields}
    errors: dict[str, str] = {}
    for f in procedure.fields:
        value = values[f.name]
        if not value:
            if f.required and not partial:
                errors[f.name] = (f"Choisissez une réponse pour « {f.label} »."
                                  if f.kind == "choice" else f"Renseignez le champ « {f.label} ».")
            continue
        if f.kind == "email" and not EMAIL_RE.match(value):
            errors[f.name] = "Saisissez une adresse e-mail valide, par exemple nom@exemple.fr."
        elif f.kind == "postal" and not POSTAL_RE.match(value):
            errors[f.name] = "Le code postal compte 5 chiffres, par exemple 75001."
        elif f.kind == "tel" and not PHONE_RE.match(value):
            errors[f.name] = "Saisissez un numéro de téléphone valide, par exemple 06 12 34 56 78."
        elif f.kind == "choice" and value not in dict(f.choices):
            errors[f.name] = f"Choisissez une réponse pour « {f.label} »."
        elif f.kind == "integer" and not (value.isdigit() and f.low <= int(value) <= f.high):
            errors[f.name] = f"Indiquez un nombre entre {f.low} et {f.high}."
        elif f.kind == "money":
            try:
                amount = float(value.replace(",", ".").replace(" ", ""))
                if not 0 < amount < 100_000:
                    raise ValueError
            except ValueError:
                errors[f.name] = "Indiquez un montant en euros, par exemple 540."
    return values, errors
