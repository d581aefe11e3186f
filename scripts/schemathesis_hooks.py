"""Schemathesis hooks for momentline (loaded by scripts/schemathesis through SCHEMATHESIS_HOOKS).

The document marks every phone number a request carries with the format `e164`: the E.164
form its `pattern` states, of a number its country's numbering plan has. No pattern can say
which numbers exist, so Schemathesis is told here how to make real ones; without this it
would make `+10000`-like strings that the server rightly refuses (400 `invalid_field`), and
no request would get past the number to the rest of the API.

Twilio's webhooks are signed as Twilio signs them (`X-Twilio-Signature`, with the
TWILIO_AUTH_TOKEN and MOMENTLINE_PUBLIC_URL the server has), so their forms reach the
server's parsing and the inbound flow; the checks still send them unsigned and wrongly signed,
and expect 401.

Run as a program (`python3 schemathesis_hooks.py seed BASE_URL KEY`, with those two variables
set), it gives the artist a conversation and Moments before the run: it connects a number,
replies "yes" as the number through the Twilio webhook, and texts a text, a link and a photo
(served from this machine for the server to fetch); it prints the name of the photo's file as
the server keeps it.
"""

import base64
import hashlib
import hmac
import http.server
import json
import os
import struct
import sys
import threading
import time
import urllib.parse
import urllib.request
import zlib

import requests
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


def twilio_signature(token: str, url: str, params: list[tuple[str, str]]) -> str:
    """Base64 of HMAC-SHA1 over the URL, then each name and value, sorted by name and value."""
    signed = url + "".join(name + value for name, value in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), signed.encode(), hashlib.sha1).digest()).decode()


def form_as_sent(body: object) -> list[tuple[str, str]]:
    """The parameters the server reads from `body` as the transport form-encodes it."""
    if isinstance(body, dict):
        # What `requests` sends for a mapping, values that are not text included.
        encoded = requests.models.RequestEncodingMixin._encode_params(body)
    elif isinstance(body, (str, bytes)):
        encoded = body
    else:
        return []
    if isinstance(encoded, bytes):
        encoded = encoded.decode("utf-8", errors="replace")
    return urllib.parse.parse_qsl(encoded, keep_blank_values=True)


class TwilioSignature:
    """Signs each Twilio webhook request over the form it carries; no other request."""

    def get(self, case, context):
        if not case.operation.path.startswith("/webhooks/twilio"):
            return None
        return os.environ["TWILIO_AUTH_TOKEN"]

    def set(self, case, token, context):
        url = os.environ["MOMENTLINE_PUBLIC_URL"] + case.formatted_path
        case.headers = case.headers or {}
        case.headers["X-Twilio-Signature"] = twilio_signature(token, url, form_as_sent(case.body))


@schemathesis.hook
def after_load_schema(context, schema):
    # Ahead of the artists' keys (the auth file's), which every other request carries.
    schema.auth.providers.insert(0, TwilioSignature())


def _call(method: str, url: str, data: bytes, headers: dict[str, str]) -> dict:
    request = urllib.request.Request(url, data=data or None, headers=headers, method=method)
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null") if "json" in response.headers.get("content-type", "") else {}


def _text(base: str, sender: str, sid: str, text: str, photo: str | None = None) -> None:
    params = [("MessageSid", sid), ("From", sender), ("To", "+18445550001"), ("Body", text)]
    if photo is None:
        params.append(("NumMedia", "0"))
    else:
        params += [("NumMedia", "1"), ("MediaUrl0", photo), ("MediaContentType0", "image/png")]
    url = os.environ["MOMENTLINE_PUBLIC_URL"] + "/webhooks/twilio"
    signature = twilio_signature(os.environ["TWILIO_AUTH_TOKEN"], url, params)
    headers = {"content-type": "application/x-www-form-urlencoded", "x-twilio-signature": signature}
    _call("POST", base + "/webhooks/twilio", urllib.parse.urlencode(params).encode(), headers)


def _png() -> bytes:
    """A one-pixel PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x80\x00")) + chunk(b"IEND", b"")


class _Photo(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = _png()
        self.send_response(200)
        self.send_header("content-type", "image/png")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def seed(base: str, key: str) -> None:
    """A verified number with a text, a link and a photo Moment, and the texts between them."""
    sender = "+14155550100"
    api = {"x-api-key": key, "content-type": "application/json"}
    photos = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Photo)
    threading.Thread(target=photos.serve_forever, daemon=True).start()
    photo = f"http://127.0.0.1:{photos.server_address[1]}/photo.png"
    _call("POST", base + "/api/phones", json.dumps({"phone_number": sender}).encode(), api)
    _text(base, sender, "SMseed0000000000000000000000000001", "yes")
    _text(base, sender, "SMseed0000000000000000000000000002", "A first Moment\nprice: 2")
    _text(base, sender, "SMseed0000000000000000000000000003", "Look https://example.com/studio")
    _text(base, sender, "SMseed0000000000000000000000000004", "Studio wall", photo)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = _call("GET", base + "/api/moments", b"", {"x-api-key": key})
        created = [m for m in listed.get("moments", []) if m.get("state") == "created"]
        kept = [m["media"]["url"] for m in created if (m.get("media") or {}).get("url")]
        if len(created) >= 3 and kept:
            photos.shutdown()
            print(kept[0].rsplit("/", 1)[-1])
            return
        time.sleep(0.2)
    sys.exit(f"seed: three Moments, one with its photo kept, were not created within 30 s: {listed}")


if __name__ == "__main__" and sys.argv[1:2] == ["seed"]:
    seed(sys.argv[2], sys.argv[3])
