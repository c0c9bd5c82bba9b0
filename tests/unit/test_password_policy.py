"""Unit tests of the password policy (idp.security.password_policy)."""

from __future__ import annotations

import pytest

from idp.security import password_policy as pp
from idp.security.password_policy import check_password, describe_policy, is_common

STRONG = "marmotte cerf-volant tisane"


def test_strong_passphrase_accepted():
    assert check_password(STRONG, min_length=12) == []


def test_below_configured_minimum_refused():
    errors = check_password("zqvx kwmt rp", min_length=12)  # 12 characters
    assert errors == []
    errors = check_password("zqvx kwmt r", min_length=12)  # 11 characters
    assert len(errors) == 1
    assert "au moins 12 caractères" in errors[0]


def test_min_length_below_8_is_a_programming_error():
    with pytest.raises(ValueError):
        check_password(STRONG, min_length=7)
    with pytest.raises(ValueError):
        describe_policy(6)


def test_eight_characters_only_with_mfa():
    password = "zq7!vr2k"  # 8 characters, not in the list
    assert not is_common(password)
    assert check_password(password, min_length=8, mfa_enabled=True) == []
    errors = check_password(password, min_length=8, mfa_enabled=False)
    assert errors and "au moins 12 caractères" in errors[0]


def test_effective_min_length():
    assert pp.effective_min_length(8, mfa_enabled=True) == 8
    assert pp.effective_min_length(8, mfa_enabled=False) == 12
    assert pp.effective_min_length(10, mfa_enabled=False) == 12
    assert pp.effective_min_length(14, mfa_enabled=False) == 14
    assert pp.effective_min_length(14, mfa_enabled=True) == 14


def test_length_counted_in_code_points_after_nfkc():
    # "é" as e + combining acute is two code points before NFKC, one after.
    decomposed = "cafe\u0301" * 2 + "zqxv"  # 12 code points once composed
    assert len(decomposed) == 14
    assert len(pp.normalise(decomposed)) == 12
    assert check_password(decomposed, min_length=12) == []
    assert check_password(decomposed[:-1], min_length=12)  # 11: too short


def test_no_composition_rules_lowercase_letters_and_spaces_only():
    assert check_password("les sept collines bleues", min_length=12) == []


def test_unicode_and_emoji_accepted():
    assert check_password("Été 🌞 à Nouméa, vent d'est", min_length=12) == []


def test_64_and_more_characters_accepted():
    password = ("une longue phrase de passe " * 4)[:64]
    assert len(password) == 64
    assert check_password(password, min_length=12) == []
    password_100 = "x7 " * 33 + "z"
    assert check_password(password_100, min_length=12) == []


def test_max_length_must_accept_64():
    with pytest.raises(ValueError):
        check_password(STRONG, min_length=12, max_length=63)


def test_above_max_length_refused_not_truncated():
    base = "q" * 127 + "w"  # 128: accepted, it is the maximum
    assert check_password(base, min_length=12) == []
    too_long = "q" * 200
    errors = check_password(too_long, min_length=12)
    assert errors and "ne doit pas dépasser 128" in errors[0]
    # Two 200-character passwords sharing their first 128 characters are not
    # silently truncated into the same accepted password: both are refused.
    other = "q" * 128 + "r" * 72
    assert check_password(other, min_length=12)
    # A larger configured maximum accepts them, whole.
    assert check_password(too_long, min_length=12, max_length=256) == []
    # Huge inputs are refused before normalisation.
    assert check_password("a" * 100_000, min_length=12)


@pytest.mark.parametrize("password", ["123456789012", "password1234", "PASSWORD1234",
                                      "qwertyuiop123", "iloveyou1234"])
def test_common_passwords_refused(password):
    assert is_common(password)
    errors = check_password(password, min_length=12)
    assert any("courants" in e for e in errors)


def test_common_list_check_can_be_disabled():
    assert check_password("password1234", min_length=12, check_common_list=False) == []


def test_short_common_password_known_to_is_common():
    assert is_common("123456")
    assert is_common("Dragon")
    assert not is_common(STRONG)


def test_common_list_size():
    assert len(pp.common_passwords()) >= 100_000
    assert pp.common_passwords() is pp.common_passwords()  # loaded once


def test_email_containment_refused():
    email = "jean.dupond@example.org"
    for password in ("xx jean.dupond@example.org xx", "Jean.Dupond-2024-xyz",
                     "Dupond est top!", "JEAN.DUPOND forever"):
        errors = check_password(password, min_length=12, email=email)
        assert any("adresse e-mail" in e for e in errors), password
    assert check_password(STRONG, min_length=12, email=email) == []


def test_names_count_as_whole_words_of_four_letters_or_more():
    # A name is not looked for inside other words, nor when shorter than 4 letters.
    assert check_password("un aligot bien chaud", min_length=12, names=["Ali", "Martin"]) == []
    assert check_password("le hobbit est roux", min_length=12, names=["Bob"]) == []
    # A passphrase may hold a word that is someone's name, if the rest is long enough...
    assert check_password("mot de passe sans script", min_length=12,
                          names=["Sans", "Martin"]) == []
    # ...but the name cannot make up the password.
    for password in ("sans script 2024", "Martin Sans 2024!", "sansmartin1987"):
        errors = check_password(password, min_length=12, names=["Sans", "Martin"])
        assert any("nom" in e for e in errors), password
    # The words of an address's local part follow the same rule.
    assert check_password("un aligot bien chaud sous la pluie", min_length=12,
                          email="pluie.dupond@example.org") == []


@pytest.mark.parametrize("password", ["azertyuiop123", "AZERTY123456", "qwerty2024!",
                                      "poiuytreza99", "qsdfghjklm1234", "wxcvbn123456",
                                      "soleil2024!!", "Bonjour123456", "motdepasse2024",
                                      "nouvellecaledonie1", "123456789012", "azerty 1234 azerty"])
def test_keyboard_walks_and_common_words_with_digits_refused(password):
    assert is_common(password), password
    errors = check_password(password, min_length=12)
    assert any("courants" in e for e in errors), password


def test_passphrases_with_common_words_are_not_walks():
    for password in ("soleil sur la plage de Nouméa", "azerty est un clavier français",
                     "correct horse battery staple"):
        assert not is_common(password), password


def test_short_local_part_ignored():
    assert check_password("ab c'est ma phrase", min_length=12, email="ab@example.org") == []


def test_name_containment_refused_case_and_accent_insensitive():
    names = ["Hélène", "Lefèvre-Dubois"]
    for password in ("helene et le soleil", "HÉLÈNE2024!!xyz", "chez lefevre dubois!",
                     "famille DUBOIS 1987", "lefevredubois1999"):
        errors = check_password(password, min_length=12, names=names)
        assert any("nom" in e for e in errors), password
    assert check_password(STRONG, min_length=12, names=names) == []


def test_names_shorter_than_3_ignored():
    assert check_password("le chat de yu est roux", min_length=12, names=["Yu"]) == []


def test_several_errors_reported_together():
    errors = check_password("jean", min_length=12, names=["Jean"])
    assert len(errors) == 3  # too short, common, contains the name


def test_describe_policy():
    text = describe_policy(12)
    assert text.startswith("Au moins 12 caractères")
    assert "courants" in text and "e-mail" in text
    assert describe_policy(8).startswith("Au moins 12 caractères")
    assert describe_policy(8, mfa_enabled=True).startswith("Au moins 8 caractères")
