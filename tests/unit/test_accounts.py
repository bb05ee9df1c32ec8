"""Account rules (email normalization, password policy) and the plan table."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amazon_pilot.domain import accounts, plans
from amazon_pilot.domain.accounts import InvalidEmail, normalize_email, password_problem
from amazon_pilot.platform.settings import SettingsError, load_settings

_local = st.text(alphabet=string.ascii_letters + string.digits + "+_-", min_size=1, max_size=30)
_label = st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=15)
_domain = st.lists(_label, min_size=1, max_size=3).map(".".join).map(lambda d: d + ".com")
emails = st.builds(lambda local, domain: f"{local}@{domain}", _local, _domain)


@given(emails, st.sampled_from(["", " ", "\t", "  "]))
def test_normalized_email_is_lower_case_trimmed_and_stable(email: str, pad: str) -> None:
    normalized = normalize_email(pad + email + pad)
    assert normalized == email.lower()
    assert normalize_email(normalized) == normalized  # idempotent
    assert normalize_email(email.upper()) == normalized  # case never makes a second account


@given(st.text(max_size=60).filter(lambda s: s.count("@") != 1))
def test_an_address_needs_exactly_one_at_sign(raw: str) -> None:
    with pytest.raises(InvalidEmail):
        normalize_email(raw)


@given(st.text(max_size=80))
def test_normalize_email_either_returns_a_plausible_address_or_raises(raw: str) -> None:
    try:
        normalized = normalize_email(raw)
    except InvalidEmail as exc:
        assert exc.field == "email" and exc.message
        return
    local, domain = normalized.split("@")
    assert local and "." in domain and normalized == normalized.strip().lower()
    assert len(normalized) <= accounts.EMAIL_MAX_LENGTH


@pytest.mark.parametrize("raw", ["a@b", "a@@b.com", "@b.com", "a@.com", "a@b..com",
                                 "a b@c.com", ".a@b.com", "a.@b.com", "a@-b.com", "a@b.123",
                                 "x" * 250 + "@b.com"])
def test_malformed_addresses_are_refused(raw: str) -> None:
    with pytest.raises(InvalidEmail):
        normalize_email(raw)


@given(st.text(max_size=accounts.PASSWORD_MIN_LENGTH - 1))
def test_short_passwords_are_refused_with_the_length_rule(password: str) -> None:
    assert password_problem(password) == "password must be at least 10 characters long"


@given(st.sampled_from([string.ascii_lowercase, string.ascii_uppercase, string.digits,
                        string.punctuation]).flatmap(
    lambda alphabet: st.text(alphabet=alphabet, min_size=10, max_size=80)))
def test_passwords_of_a_single_character_class_are_refused(password: str) -> None:
    problem = password_problem(password)
    assert problem is not None and "two kinds" in problem


@given(st.text(alphabet=string.ascii_lowercase, min_size=5, max_size=60),
       st.text(alphabet=string.digits + string.ascii_uppercase + "!#$ ", min_size=5,
               max_size=60).filter(lambda s: s.strip()))
def test_long_mixed_passwords_are_accepted(letters: str, others: str) -> None:
    assert password_problem(letters + others) is None


@given(st.text(min_size=accounts.PASSWORD_MIN_LENGTH, max_size=300))
def test_password_rules_agree_with_their_definition(password: str) -> None:
    problem = password_problem(password)
    expected_ok = (len(password) <= accounts.PASSWORD_MAX_LENGTH and password.strip() != ""
                   and len(accounts.character_classes(password)) >= 2)
    assert (problem is None) == expected_ok


def test_hashes_are_argon2id_and_verify() -> None:
    digest = accounts.hash_password("Correct horse 9")
    assert digest.startswith("$argon2id$")
    assert accounts.verify_password(digest, "Correct horse 9")
    assert not accounts.verify_password(digest, "correct horse 9")
    assert not accounts.verify_password("not a hash", "Correct horse 9")


def test_plan_table_and_env_overrides() -> None:
    base = load_settings({})
    assert [base.plan(p).requests_per_minute for p in plans.PLAN_NAMES] == [60, 300, 1200]
    assert [base.plan(p).tracked_products for p in plans.PLAN_NAMES] == [20, 500, 10_000]
    assert [base.plan(p).competitor_groups for p in plans.PLAN_NAMES] == [5, 100, 1000]
    overridden = load_settings({"RATE_LIMIT_PRO": "7", "COMPETITOR_GROUPS_FREE": "2"})
    assert overridden.plan("pro").requests_per_minute == 7
    assert overridden.plan("free").competitor_groups == 2
    assert overridden.plan("free").requests_per_minute == 60
    # a typo in a limit stops the cold start, naming the variable, instead of a default
    with pytest.raises(SettingsError, match="RATE_LIMIT_PRO must be an integer"):
        load_settings({"RATE_LIMIT_PRO": "nonsense"})
    with pytest.raises(SettingsError, match="TRACKED_PRODUCTS_FREE must be at least 1"):
        load_settings({"TRACKED_PRODUCTS_FREE": "0"})
    # an unknown plan name never gets more than the free plan
    assert base.plan("platinum") == base.plan("free")
    with pytest.raises(plans.UnknownPlan):
        plans.plan("platinum")


def test_domain_modules_stay_free_of_infrastructure() -> None:
    import ast
    from pathlib import Path

    for module in (accounts, plans):
        tree = ast.parse(Path(module.__file__ or "").read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, ast.Import | ast.ImportFrom)
                    for alias in (node.names if isinstance(node, ast.Import)
                                  else [ast.alias(node.module or "")])}
        assert not imported & {"fastapi", "sqlalchemy", "boto3", "starlette"}, module.__name__
