"""Properties of the cron params, dispatch keys and correlation ids."""

from hypothesis import given
from hypothesis import strategies as st

from cron import keys
from cron.views import correlation_id, parse_params
from tests.properties.strategies import BOUNDED, any_text, nasty_text


@BOUNDED
@given(value=st.one_of(st.none(), nasty_text, any_text.map(lambda text: "abc" + text),
                       st.just("ok-id\n"), st.just("x" * 129)))
def test_correlation_id__kept_only_when_wholly_valid(value):
    """A header is kept only when the whole value is 1-128 of [A-Za-z0-9._:-] (no trailing
    newline slips through ``$``); otherwise a new UUID4."""
    kept = keys.correlation_id_or_none(value)
    assert kept is None or (kept == value and keys.CORRELATION_ID.fullmatch(value)
                            and "\n" not in kept)
    generated = correlation_id({"X-Correlation-Id": value} if value is not None else {})
    assert 0 < len(generated) <= 128 and keys.CORRELATION_ID.fullmatch(generated)


@BOUNDED
@given(first=st.dictionaries(nasty_text, nasty_text, max_size=4),
       second=st.dictionaries(nasty_text, nasty_text, max_size=4))
def test_params_hash__total_and_equal_only_for_equal_params(first, second):
    """Any params hash (lone surrogates included) to 16 hex; equal hashes mean equal params."""
    one, two = keys.params_hash(first), keys.params_hash(second)
    assert len(one) == 16 and int(one, 16) >= 0
    if one == two:
        assert first == second


@BOUNDED
@given(query=st.lists(st.tuples(nasty_text, nasty_text), max_size=5),
       allowed=st.frozensets(st.sampled_from(["dryRun", "clientId", "staleDays"])))
def test_parse_params__only_allowed_non_empty_values(query, allowed):
    """Params are the allowed names with non-empty values; every other name is reported."""
    from django.http import QueryDict

    data = QueryDict(mutable=True)
    for name, value in query:
        data.appendlist(name, value)
    params, unknown = parse_params(data, allowed)
    assert set(params) <= allowed and all(value != "" for value in params.values())
    assert unknown == {name for name, _ in query if name not in allowed}
