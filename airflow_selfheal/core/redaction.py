"""
Secret redaction for everything that leaves the process: incidents, pages, Slack messages, audit records.

:func:`redact` scrubs free text and :func:`redact_obj` scrubs nested dicts, lists and tuples. Both are pure,
idempotent (``redact(redact(text)) == redact(text)``) and linear in the size of the input: no pattern nests
quantifiers, repetitions are bounded character classes, and shape patterns start with a literal the regex engine
can search for, so a multi-megabyte log costs a few scans.

**Marker scheme.** A secret is replaced by :data:`REDACTED` (``***REDACTED***``) when the text says what it is,
through a label (``password=``, ``"token": ...``, ``Authorization: Bearer``), its place in a URL
(``snowflake://user:***REDACTED***@host``) or because the caller named the value (``extra_secrets``). A secret
found only by its shape carries its kind, ``***REDACTED:<kind>***``, so a reader knows what was there:

=====================  ======================================================================
kind                   shape
=====================  ======================================================================
``private_key``        ``-----BEGIN ... PRIVATE KEY-----`` through ``-----END ... PRIVATE KEY-----``
``slack_webhook``      the path of ``https://hooks.slack.com/services/T.../B.../...``
``slack_token``        ``xoxa-``, ``xoxb-``, ``xoxp-``, ``xoxr-``, ``xoxs-``, ``xoxe-``, ``xapp-``
``aws_access_key``     ``AKIA`` / ``ASIA`` followed by 16 upper-case letters or digits
``github_token``       ``ghp_``, ``gho_``, ``ghu_``, ``ghs_``, ``ghr_``, ``github_pat_``
``api_key``            ``sk-`` followed by at least 20 characters (OpenAI, Anthropic)
``jwt``                ``eyJ...`` ``.`` ``eyJ...`` ``.`` signature
=====================  ======================================================================

Labels are matched anywhere in an identifier, so ``SNOWFLAKE_PASSWORD=`` and ``db_password:`` count, but the
label must be followed by ``=`` or ``:``; ``password was incorrect`` is left alone. The labels are
``password``, ``passwd``, ``pwd``, ``passphrase``, ``secret``, ``token``, ``api_key``, ``private_key``,
``access_key``, ``routing_key``, ``integration_key`` and ``webhook_url`` (``_`` or ``-`` or nothing between the
words), and ``authorization``, whose scheme word (``Bearer``, ``Basic``...) is kept. An unquoted value runs to
whitespace, a quote, ``,``, ``;`` or ``&``; a quoted value runs to its closing quote, or to the end of the line
when the quote is never closed. A bare ``Bearer <token>`` is redacted too, and a bare ``Basic <base64>`` when it
decodes to ``user:password`` or holds a digit, ``+``, ``/`` or ``=``, so "Basic authentication" survives.

.. code-block:: python

    redact("connecting to snowflake://etl:hunter2@acct with token=t0k")
    # 'connecting to snowflake://etl:***REDACTED***@acct with token=***REDACTED***'
    redact_obj({"password": "pw1", "dsn": "postgres://u:p4ss@db/x"})
    # {'password': '***REDACTED***', 'dsn': 'postgres://u:***REDACTED***@db/x'}
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote

REDACTED = "***REDACTED***"
# Extra secrets of one or two characters are skipped: replacing every "a" or "42" would shred the text and
# tell a reader exactly which short strings were secret.
MIN_EXTRA_SECRET_LENGTH = 3
# redact() repeats its pass until the text stops changing; adversarial text needs at most a few.
MAX_PASSES = 5

_MARKER = re.compile(r"\*\*\*REDACTED(?::[a-z_]{1,32})?\*\*\*")


def _kind(kind: str) -> str:
    return f"***REDACTED:{kind}***"


# ---------------------------------------------------------------------------------------------------------------
# Patterns. redact() runs known values, private keys and Slack webhooks first, then the labelled rules, then the
# shape rules, so a labelled value gets the plain marker.
# ---------------------------------------------------------------------------------------------------------------

_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY[A-Z ]{0,10}-----"
    # An unterminated block (a log cut mid-key) is redacted to the end rather than leaked.
    r".*?(?:-----END [A-Z0-9 ]{0,40}PRIVATE KEY[A-Z ]{0,10}-----|\Z)",
    re.DOTALL,
)
# The labelled rules are written in lower case and run over ``text.lower()``; spans map back to the original
# text (see _sub_lowered). An IGNORECASE alternation would be tried at every position and cost ten times more.
_AUTHORIZATION = re.compile(
    r"(?P<prefix>authorization[\"']?[ \t]{0,16}[:=][ \t]{0,16}[\"']?"
    r"(?:(?:bearer|basic|token|digest|negotiate|ntlm|apikey|api-key|key|aws4-hmac-sha256)[ \t]{1,16})?)"
    r"(?P<value>[^\s\"']{1,8192})"
)
_LABEL_WORDS = (
    r"(?:passw(?:or)?d|pwd|passphrase|secret|token|api[_-]?key|private[_-]?key|access[_-]?key"
    r"|routing[_-]?key|integration[_-]?key|webhook[_-]?url)"
)
_LABELLED_VALUE = re.compile(
    rf"(?P<prefix>{_LABEL_WORDS}[\"']?[ \t]{{0,16}}[:=][ \t]{{0,16}})"
    # A double-quoted value ends at the first quote not escaped by a backslash (JSON), or at the end of the line.
    r"(?P<value>\"[^\r\n]*?(?<!\\)\"|\"[^\r\n]*|'[^'\r\n]*'?|[^\s\"',;&]{1,8192})"
)
# "://" first so the regex engine searches for the literal; the scheme before it is kept untouched. A user name
# already redacted by shape (an AWS key as the user of s3://...) ends in a marker whose ":" is not the separator.
_URL_CREDENTIALS = re.compile(
    r"(?P<prefix>://[^\s:/@?#]{0,256}(?<!\*\*\*REDACTED):)(?P<value>[^\s/?#]{1,512})@"
)
# Shape rules start with a literal and check the word boundary behind it, which lets the engine jump from one
# occurrence of the literal to the next instead of trying the pattern at every position.
_BEARER = re.compile(r"(?P<prefix>Bearer(?<!\wBearer)[ \t]{1,16})(?P<value>[A-Za-z0-9._~+/=-]{1,8192})")
_BASIC = re.compile(
    r"(?P<prefix>Basic(?<!\wBasic)[ \t]{1,16})(?P<value>[A-Za-z0-9+/]{4,8192}={0,2})(?![A-Za-z0-9+/=])"
)
_SLACK_WEBHOOK = re.compile(
    r"(?P<prefix>https?://hooks\.slack(?:-gov)?\.com/(?:services|workflows|triggers)/)[A-Za-z0-9_/+-]{1,512}"
)
_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"x(?<!\wx)(?:ox[abprse]|app)-[A-Za-z0-9-]{1,255}"), "slack_token"),
    (re.compile(r"A(?<!\wA)(?:KIA|SIA)[0-9A-Z]{16}(?![0-9A-Za-z_])"), "aws_access_key"),
    (re.compile(r"gh(?<!\wgh)[pousr]_[A-Za-z0-9]{20,255}"), "github_token"),
    (re.compile(r"github_pat_(?<!\wgithub_pat_)[A-Za-z0-9_]{20,255}"), "github_token"),
    (re.compile(r"sk-(?<![\w-]sk-)[A-Za-z0-9_-]{20,512}"), "api_key"),
    (
        re.compile(r"eyJ(?<!\weyJ)[A-Za-z0-9_-]{1,8192}\.eyJ[A-Za-z0-9_-]{1,16384}\.[A-Za-z0-9_-]{0,8192}"),
        "jwt",
    ),
)

# Dict keys whose values are secret as a whole, after camelCase and separators are folded to snake_case.
_SECRET_KEY = re.compile(
    r"(?:^|_)(?:passw(?:or)?d|pwd|passphrase|secret|token|api_?key|private_key|authorization"
    r"|routing_key|integration_key|webhook_url|client_secret|access_key)$"
)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_KEY_SEPARATORS = re.compile(r"[^a-z0-9]+")


# ---------------------------------------------------------------------------------------------------------------
# Replacement helpers
# ---------------------------------------------------------------------------------------------------------------


def _is_marker(value: str) -> bool:
    return _MARKER.fullmatch(value) is not None


def _replace_value(whole: str, prefix: str, value: str) -> str:
    """Keep the label or URL prefix and replace the value, keeping its quotes; a marker is left as it is."""
    quote_char = value[0] if value[:1] in ('"', "'") else ""
    if quote_char:
        closed = len(value) >= 2 and value.endswith(quote_char)
        inner = value[1:-1] if closed else value[1:]
        if not inner or _is_marker(inner):
            return whole
        return f"{prefix}{quote_char}{REDACTED}{quote_char if closed else ''}"
    if _is_marker(value):
        return whole
    return f"{prefix}{REDACTED}"


def _redact_value(match: re.Match[str]) -> str:
    return _replace_value(match.group(0), match.group("prefix"), match.group("value"))


def _sub_lowered(pattern: re.Pattern[str], text: str) -> str:
    """Apply a lower-case labelled pattern to ``text`` case-insensitively through ``text.lower()``."""
    lowered = text.lower()
    if len(lowered) != len(text):
        # Some characters lower to two (e.g. "İ"), which would shift the spans; fall back to IGNORECASE.
        return re.compile(pattern.pattern, re.IGNORECASE).sub(_redact_value, text)
    pieces: list[str] = []
    last = 0
    for match in pattern.finditer(lowered):
        start, end = match.span()
        prefix_start, prefix_end = match.span("prefix")
        value_start, value_end = match.span("value")
        pieces.append(text[last:start])
        pieces.append(
            _replace_value(text[start:end], text[prefix_start:prefix_end], text[value_start:value_end])
        )
        last = end
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def _redact_url_credentials(match: re.Match[str]) -> str:
    if _is_marker(match.group("value")):
        return match.group(0)
    return f"{match.group('prefix')}{REDACTED}@"


def _redact_basic(match: re.Match[str]) -> str:
    """Redact ``Basic <base64>`` only when it looks like credentials, so "Basic authentication" survives."""
    value = match.group("value")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if b":" in decoded or any(char.isdigit() or char in "+/=" for char in value):
        return f"{match.group('prefix')}{REDACTED}"
    return match.group(0)


def _replace_with(kind: str) -> Callable[[re.Match[str]], str]:
    marker = _kind(kind)

    def replace(match: re.Match[str]) -> str:
        prefix = match.groupdict().get("prefix") or ""
        return f"{prefix}{marker}"

    return replace


def _secret_variants(extra_secrets: Iterable[str]) -> list[str]:
    """The known values plus the forms they take in a URL or a JSON string, longest first."""
    variants: set[str] = set()
    for secret in extra_secrets:
        if not isinstance(secret, str) or len(secret) < MIN_EXTRA_SECRET_LENGTH:
            continue
        variants.add(secret)
        variants.add(quote(secret, safe=""))
        variants.add(json.dumps(secret)[1:-1])
    return sorted(
        (variant for variant in variants if len(variant) >= MIN_EXTRA_SECRET_LENGTH), key=len, reverse=True
    )


def _redact_known(text: str, secrets: list[str]) -> str:
    present = [secret for secret in secrets if secret in text]
    if not present:
        return text
    # Existing markers are matched first and kept, so a secret such as "RED" cannot shred them.
    pattern = re.compile(
        f"(?P<marker>{_MARKER.pattern})|" + "|".join(re.escape(secret) for secret in present)
    )
    return pattern.sub(lambda match: match.group(0) if match.group("marker") else REDACTED, text)


# ---------------------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------------------


def redact(text: str, *, extra_secrets: Iterable[str] = ()) -> str:
    """
    Replace the secrets in ``text`` with redaction markers.

    .. code-block:: python

        redact("AIRFLOW_CONN_SF=snowflake://etl:pw1@acct", extra_secrets=["pw1"])
        # 'AIRFLOW_CONN_SF=snowflake://etl:***REDACTED***@acct'

    :param text: any text: a log, an error message, compiled SQL, a JSON document.
    :param extra_secrets: exact values known to be secret (e.g. the connection password), replaced wherever
        they occur, even inside words, together with their URL-encoded and JSON-escaped forms. Values shorter
        than :data:`MIN_EXTRA_SECRET_LENGTH` characters are skipped because replacing them would shred the text.
    :return: the text with every secret replaced; idempotent.
    """
    if not isinstance(text, str):
        text = str(text)
    secrets = _secret_variants(extra_secrets)
    # One pass can expose a new match: a value replaced by a marker no longer holds the "/" that stopped a URL
    # rule, say. Real logs settle in one pass; repeating until nothing changes makes redaction idempotent.
    for _ in range(MAX_PASSES):
        redacted = _redact_once(text, secrets)
        if redacted == text:
            break
        text = redacted
    return text


def _redact_once(text: str, secrets: list[str]) -> str:
    text = _redact_known(text, secrets)
    text = _PRIVATE_KEY.sub(_kind("private_key"), text)
    text = _SLACK_WEBHOOK.sub(_replace_with("slack_webhook"), text)
    text = _sub_lowered(_AUTHORIZATION, text)
    text = _URL_CREDENTIALS.sub(_redact_url_credentials, text)
    text = _sub_lowered(_LABELLED_VALUE, text)
    text = _BEARER.sub(_redact_value, text)
    text = _BASIC.sub(_redact_basic, text)
    for pattern, kind in _SHAPES:
        text = pattern.sub(_kind(kind), text)
    return text


def is_secret_key(key: str) -> bool:
    """
    Whether a mapping key names a secret, e.g. ``password``, ``SNOWFLAKE_PASSWORD``, ``apiKey``, ``x-api-key``.

    :param key: the key as written; camelCase, dashes, dots and spaces are folded to snake_case first.
    :return: True when the key ends in one of the secret words.
    """
    folded = _KEY_SEPARATORS.sub("_", _CAMEL_BOUNDARY.sub("_", key).lower())
    return _SECRET_KEY.search(folded.strip("_")) is not None


def redact_obj(value: Any, *, extra_secrets: Iterable[str] = ()) -> Any:
    """
    Redact a JSON-like value recursively: strings through :func:`redact`, secret-named keys wholesale.

    The value of a key for which :func:`is_secret_key` holds is replaced by :data:`REDACTED` whatever its type,
    except None, which reveals nothing. Mappings come back as dicts, lists as lists, tuples as tuples; other
    values (numbers, booleans, None) are returned as they are.

    :param value: a string, mapping, list, tuple or scalar.
    :param extra_secrets: exact values known to be secret; see :func:`redact`.
    :return: a redacted copy; the input is not modified.
    """
    secrets = tuple(extra_secrets)
    return _redact_obj(value, secrets)


def _redact_obj(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        return redact(value, extra_secrets=secrets)
    if isinstance(value, Mapping):
        redacted: dict[Any, Any] = {}
        for key, item in value.items():
            secret_key = isinstance(key, str) and is_secret_key(key)
            new_key = redact(key, extra_secrets=secrets) if isinstance(key, str) else key
            redacted[new_key] = REDACTED if secret_key and item is not None else _redact_obj(item, secrets)
        return redacted
    if isinstance(value, list):
        return [_redact_obj(item, secrets) for item in value]
    if isinstance(value, tuple):
        return tuple(_redact_obj(item, secrets) for item in value)
    return value


def truncate(text: str, limit: int, *, marker_fmt: str = "\n…[truncated {n} characters]…\n") -> str:
    r"""
    Cut ``text`` to at most ``limit`` characters, keeping its head (40%) and tail (60%).

    dbt prints the failing node's error at the end of a log and the connector prints its cause at the start,
    so both ends are kept and the middle, usually progress lines, is dropped.

    .. code-block:: python

        truncate("a" * 100 + "b" * 100, 80)
        # 20 "a", then "\n…[truncated 150 characters]…\n", then 30 "b": 80 characters

    :param text: the text.
    :param limit: the maximum length of the result, marker included; must not be negative.
    :param marker_fmt: the marker put where the middle was cut; ``{n}`` becomes the number of characters cut.
    :return: ``text`` unchanged when it fits; otherwise head + marker + tail. When ``limit`` is too small to
        hold the marker, the first ``limit`` characters.
    """
    if limit < 0:
        raise ValueError(f"limit must not be negative, got {limit}")
    if len(text) <= limit:
        return text
    # The marker for the largest possible count is at least as long as the real one, so the result fits.
    budget = limit - len(marker_fmt.format(n=len(text)))
    if budget <= 0:
        return text[:limit]
    head = budget * 2 // 5
    tail = budget - head
    cut = len(text) - head - tail
    return text[:head] + marker_fmt.format(n=cut) + (text[-tail:] if tail else "")
