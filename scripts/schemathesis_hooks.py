"""Schemathesis hooks for momentline (loaded by scripts/schemathesis through SCHEMATHESIS_HOOKS).

The document marks every phone number a request carries with the format `e164`: the E.164
form its `pattern` states, of a number its country's numbering plan has. No pattern can say
which numbers exist, so Schemathesis is told here how to make real ones; without this it
would make `+10000`-like strings that the server rightly refuses (400 `invalid_field`), and
no request would get past the number to the rest of the API.
"""

import schemathesis
from hypothesis import strategies as st

# Numbers momentline's numbering plans (the `phonenumber` crate) take: in the countries the
# server allows by default (US, CA), and in others, which it refuses with 403.
KNOWN_NUMBERS = [
    "+14155552671",
    "+12125550123",
    "+16135550199",
    "+16045550123",
    "+442079460958",
    "+4930123456",
    "+61293744000",
    "+81312345678",
    "+33142685300",
    "+5511987654321",
    "+919876543210",
    "+8613812345678",
]

# North American area codes whose every exchange from 200 to 999 (but the N11 service
# codes) is a number.
AREA_CODES = ["212", "206", "213", "303", "305", "312", "415", "416", "512", "514", "604", "613", "617", "646"]


def _north_american(area: str, exchange: int, line: int) -> str:
    return f"+1{area}{exchange:03d}{line:04d}"


north_american = st.builds(
    _north_american,
    st.sampled_from(AREA_CODES),
    st.integers(min_value=200, max_value=999).filter(lambda exchange: exchange % 100 != 11),
    st.integers(min_value=0, max_value=9999),
)

schemathesis.openapi.format("e164", st.one_of(st.sampled_from(KNOWN_NUMBERS), north_american))
