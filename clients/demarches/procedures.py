"""The procedures this app handles: their fields (with French labels and checks), the
documents to attach, the service in charge and its usual delay."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]{2,}$")
POSTAL_RE = re.compile(r"^\d{5}$")
MAX_ADDRESS_LINES = 5
NBSP = "\u00a0"


@dataclass(frozen=True)
class Territory:
    """What differs between the territories the app serves: the phone numbers typed
    without a country code, the currency, the examples given in hints."""
    region: str
    currency: str
    currency_label: str
    currency_symbol: str
    decimals: int
    max_amount: int
    amount_example: str
    postal_example: str
    phone_example: str

    def format_amount(self, value: str | None) -> str:
        """``"540.5"`` → ``"540,50 €"``; ``"65000"`` → ``"65 000 F CFP"`` (no decimals)."""
        amount = parse_amount(value or "")
        if amount is None:
            return value or ""
        text = f"{amount:,.{self.decimals}f}".replace(",", NBSP).replace(".", ",")
        return f"{text}{NBSP}{self.currency_symbol}"


TERRITORIES = {
    "FR": Territory(region="FR", currency="EUR", currency_label="euros", currency_symbol="€",
                    decimals=2, max_amount=100_000, amount_example="540", postal_example="75001",
                    phone_example="06 12 34 56 78"),
    # New Caledonia pays in CFP francs (XPF), which have no cents.
    "NC": Territory(region="NC", currency="XPF", currency_label="francs CFP (XPF)",
                    currency_symbol=f"F{NBSP}CFP", decimals=0, max_amount=12_000_000,
                    amount_example="65000", postal_example="98800",
                    phone_example="71 22 33"),
}


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "text"  # text | address | email | tel | postal | choice | integer | money
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
    # Several lines (street, district, PO box), kept as typed (OIDC Core §5.1.1).
    Field("adresse", "Adresse", kind="address", autocomplete="street-address",
          hint="Sur plusieurs lignes si besoin : rue, quartier, boîte postale."),
    Field("code_postal", "Code postal", kind="postal", autocomplete="postal-code"),
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
            Field("loyer", "Loyer mensuel, charges comprises", kind="money",
                  group="logement"),
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


def format_phone(e164: str | None, region: str = "FR") -> str:
    """A number as people of ``region`` write it: ``+33612345678`` → ``06 12 34 56 78`` in
    France, ``+687712233`` → ``71 22 33`` in New Caledonia; a number of another territory
    keeps its country code (``+33 6 12 34 56 78``); what does not parse is left as it is."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    if not phonenumbers.is_valid_number(number):
        return e164
    same = phonenumbers.region_code_for_number(number) == region
    style = (phonenumbers.PhoneNumberFormat.NATIONAL if same
             else phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    # libphonenumber writes New Caledonian numbers with dots; people write spaces.
    return phonenumbers.format_number(number, style).replace(".", " ")


def field_label(f: Field, territory: Territory) -> str:
    return f"{f.label}, en {territory.currency_label}" if f.kind == "money" else f.label


def field_hint(f: Field, territory: Territory) -> str:
    """The hint, with the territory's examples where the field has one."""
    if f.kind == "postal":
        return f"5 chiffres, par exemple {territory.postal_example}."
    if f.kind == "money":
        cents = "" if territory.decimals else ", sans centimes"
        return f"Par exemple {territory.amount_example}{cents}."
    if f.kind == "tel":
        return f"{f.hint} Par exemple {territory.phone_example}.".strip()
    return f.hint


def shown_value(f: Field, value: str | None, territory: Territory) -> str:
    """A saved answer as the summaries show it (an address keeps its lines: CSS pre-line)."""
    if not value:
        return "–"
    if f.kind == "choice":
        return dict(f.choices).get(value, value)
    if f.kind == "money":
        return territory.format_amount(value)
    return value


def parse_amount(value: str) -> float | None:
    try:
        return float(value.replace(",", ".").replace(" ", "").replace(NBSP, ""))
    except ValueError:
        return None


def clean_address(value: str) -> str:
    """The lines typed, each trimmed, empty ones dropped, at most MAX_ADDRESS_LINES."""
    lines = [line.strip() for line in value.splitlines() if line.strip()]
    return "\n".join(lines[:MAX_ADDRESS_LINES])


def phone_is_valid(value: str, territory: Territory) -> bool:
    try:
        number = phonenumbers.parse(value, territory.region)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number)


def prefill(userinfo: dict[str, Any], beneficiary: dict[str, Any] | None = None,
            territory: Territory = TERRITORIES["FR"]) -> dict[str, str]:
    """The form's values from the claims; a relation the user acts for gives the names."""
    address = userinfo.get("address") or {}
    values = {
        "prenom": userinfo.get("given_name") or "", "nom": userinfo.get("family_name") or "",
        "email": userinfo.get("email") or "",
        "telephone": format_phone(userinfo.get("phone_number"), territory.region),
        "adresse": address.get("street_address") or "",
        "code_postal": address.get("postal_code") or "",
        "commune": address.get("locality") or "",
    }
    if beneficiary and beneficiary.get("type") == "person":
        values["prenom"] = beneficiary.get("given_name") or ""
        values["nom"] = beneficiary.get("family_name") or ""
    return values


def validate(procedure: Procedure, form, *, partial: bool,
             territory: Territory = TERRITORIES["FR"]) -> tuple[dict[str, str],
                                                                dict[str, str]]:
    """(values, errors by field) in French; ``partial`` (a draft): only what is filled
    is checked."""
    values = {f.name: (form.get(f.name) or "").strip()[:300] for f in procedure.fields}
    errors: dict[str, str] = {}
    for f in procedure.fields:
        value = values[f.name]
        if f.kind == "address":
            value = values[f.name] = clean_address(value)
        if not value:
            if f.required and not partial:
                errors[f.name] = (f"Choisissez une réponse pour « {f.label} »."
                                  if f.kind == "choice" else f"Renseignez le champ « {f.label} ».")
            continue
        if f.kind == "email" and not EMAIL_RE.match(value):
            errors[f.name] = "Saisissez une adresse e-mail valide, par exemple nom@exemple.fr."
        elif f.kind == "postal" and not POSTAL_RE.match(value):
            errors[f.name] = (f"Le code postal compte 5 chiffres, par exemple "
                              f"{territory.postal_example}.")
        elif f.kind == "tel" and not phone_is_valid(value, territory):
            errors[f.name] = ("Saisissez un numéro de téléphone valide, par exemple "
                              f"{territory.phone_example}.")
        elif f.kind == "choice" and value not in dict(f.choices):
            errors[f.name] = f"Choisissez une réponse pour « {f.label} »."
        elif f.kind == "integer" and not (value.isdigit() and f.low <= int(value) <= f.high):
            errors[f.name] = f"Indiquez un nombre entre {f.low} et {f.high}."
        elif f.kind == "money":
            amount = parse_amount(value)
            whole = amount is not None and (territory.decimals or amount == int(amount))
            if amount is None or not 0 < amount < territory.max_amount or not whole:
                cents = "" if territory.decimals else ", sans centimes"
                errors[f.name] = (f"Indiquez un montant en {territory.currency_label}{cents}, "
                                  f"par exemple {territory.amount_example}.")
    return values, errors
