r"""
Secret redaction for everything that leaves the process: incidents, pages, Slack messages, audit records.

:func:`redact` scrubs free text and :func:`redact_obj` scrubs nested dicts, lists and tuples; both are pure and
idempotent (``redact(redact(text)) == redact(text)``). :func:`secrets_of_connection` collects the secret fields of
a connection, to pass as ``extra_secrets``. Redaction finds a secret in three ways, applied in this order:

1. **Known values** (``extra_secrets``: a connection's password, private key, tokens...), wherever they occur,
   even inside words, case-insensitively (a database upper-cases what it quotes back), and in the forms that
   quoting gives them: URL-encoded (also twice, or as a form), JSON-escaped (up to three times, as JSON logs of
   JSON documents nest), backslash-escaped, ``repr``-ed, with SQL-doubled quotes, shell-quoted. Each line of a
   multi-line value (a PEM key) at least :data:`MIN_SECRET_LINE_LENGTH` long counts on its own too, and so does
   the last path segment of a URL-valued one (a webhook's token).
2. **Labels**: the value after a word that says it is secret.

   * Labels are ``password``, ``passwd``, ``pwd``, ``passphrase``, ``secret``, ``secret_key``, ``token``,
     ``api_key``, ``private_key``, ``private_key_content``, ``access_key``, ``access_key_id``,
     ``routing_key``, ``integration_key``, ``service_key``, ``webhook``, ``webhook_url``, ``webhook_token``,
     ``credentials``, and any ``DBT_ENV_SECRET_*`` name. A label may end a longer identifier
     (``SNOWFLAKE_PASSWORD``, ``aws_secret_access_key``) but must end it, so ``password_reset_at = ...`` and
     ``password was incorrect`` are left alone.
   * The syntaxes are ``label=value``, ``label: value`` (YAML, HTTP headers), ``"label": "value"`` (JSON, also
     escaped inside another JSON string), ``label := value``, ``label => value``, ``<label>value</label>``,
     ``--label value`` and ``--label=value`` (CLI), ``-pvalue`` on a command line that names a user
     (``mysql -u etl -phunter2``), ``IDENTIFIED BY 'value'``, and a value wrapped onto the next line
     (``password:`` at the end of a line, the value at the start of the next, or a YAML block scalar).
   * An unquoted value runs to whitespace, a quote, ``,``, ``;``, ``&`` or a JSON escape (``\"``, ``\n``), so
     redacting a JSON document as text keeps it JSON. A quoted value runs to its closing quote, past
     backslash-escaped and SQL-doubled quotes, or to the end of the line when it is never closed; a quote
     escaped once more (JSON inside a JSON string) counts as a quote. A value that opens a structure (``{"``,
     ``[{``) is left to the labels inside it. A line break counts as written or JSON-escaped.
   * ``authorization`` keeps its scheme word (``Bearer``, ``Basic``...). A bare ``Bearer <token>`` is redacted
     too, and a bare ``Basic <base64>`` when it decodes to ``user:password`` or holds a digit, ``+``, ``/`` or
     ``=``, so "Basic authentication" survives. A PagerDuty key (32 letters or digits) after ``routing key``,
     ``integration key`` or ``service key`` is redacted even without ``=`` or ``:``.
   * In a URL, the password of ``scheme://user:password@host``, up to the last ``@`` before a host, so it may
     hold ``/``, ``#``, ``?`` or ``@``; the same in a percent-encoded URL (``snowflake%3A%2F%2Fetl%3A...%40``).
     Scheme, user and host are kept.
3. **Shapes**: credential formats recognised on their own.

A secret is replaced by :data:`REDACTED` (``***REDACTED***``) when it was known or labelled, keeping the label,
quotes and URL around it. A secret found only by its shape carries its kind, ``***REDACTED:<kind>***``, so a
reader knows what was there:

=====================  ======================================================================
kind                   shape
=====================  ======================================================================
``private_key``        ``-----BEGIN ... PRIVATE KEY-----`` through ``-----END ... PRIVATE KEY-----`` (encrypted,
                       OpenSSH and URL-encoded headers too; to the end of the text when never closed); a bare
                       base64 DER key (``MII`` and at least 60 more base64 characters)
``slack_webhook``      the path of ``hooks.slack.com/services/T.../B.../...``, with or without a scheme
``slack_token``        ``xoxa-``, ``xoxb-``, ``xoxp-``, ``xoxe.xoxp-``... (``xox`` + a letter), ``xapp-``
``pagerduty_key``      the key in ``events.pagerduty.com/integration/<key>/``
``aws_access_key``     ``AKIA`` / ``ASIA`` followed by 16 upper-case letters or digits
``aws_secret_key``     40 base64 characters, not all hex, within 100 characters of an AWS access key id
``github_token``       ``ghp_``, ``gho_``, ``ghu_``, ``ghs_``, ``ghr_``, ``github_pat_``
``gitlab_token``       ``glpat-`` followed by at least 20 characters
``google_api_key``     ``AIza`` followed by 35 characters
``api_key``            ``sk-`` followed by at least 20 characters (OpenAI, Anthropic); ``sk_live_``,
                       ``rk_live_``, ``sk_test_`` (Stripe)
``snowflake_token``    Snowflake OAuth and session tokens: ``ver:<n>-hint:<n>-...`` and ``ETMsDg...``
``jwt``                ``eyJ...`` ``.`` ``eyJ...`` ``.`` signature (Snowflake programmatic access tokens too)
=====================  ======================================================================

**What survives.** Identifiers, SQL (its ``--`` comments too), dbt node names, column names that merely contain a
label (``password_reset_at``, ``token_count``), hex digests (a git commit's 40, a fingerprint's 64), UUIDs,
Snowflake query ids and ``host:port/path`` URLs: no rule matches them unless a label names them.

**What cannot be found.** A value that is neither known, labelled nor shaped (a password alone in prose), and
the part of an unquoted labelled value after whitespace, a quote, ``,``, ``;`` or ``&``. Pass the values you
know as ``extra_secrets``.

**Cost.** Linear in the size of the input: repetitions are bounded or possessive, the values of a URL are read
possessively so that only their ``@`` are backtracked over, and patterns start with a literal or a single
character the regex engine can search for, so a multi-megabyte log costs a few scans.

.. code-block:: python

    redact("connecting to snowflake://etl:hunter2@acct with token=t0k")
    # 'connecting to snowflake://etl:***REDACTED***@acct with token=***REDACTED***'
    redact_obj({"password": "pw1", "dsn": "postgres://u:p4ss@db/x"})
    # {'password': '***REDACTED***', 'dsn': 'postgres://u:***REDACTED***@db/x'}
    redact("ERROR: user ETL, key HUNTER2", extra_secrets=secrets_of_connection(connection))
    # 'ERROR: user ETL, key ***REDACTED***' when the connection's password is hunter2
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
import re
import shlex
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

REDACTED = "***REDACTED***"
# Extra secrets of one or two characters are skipped: replacing every "a" or "42" would shred the text and
# tell a reader exactly which short strings were secret.
MIN_EXTRA_SECRET_LENGTH = 3
#: Lines of a multi-line known secret at least this long are redacted on their own: a log may print one line
#: of a key.
MIN_SECRET_LINE_LENGTH = 16
# redact() repeats its pass until the text stops changing; adversarial text needs at most a few.
MAX_PASSES = 5
# How far from an AWS access key id its secret key is looked for (CSV rows, "id secret" pairs, env dumps).
_AWS_PAIR_DISTANCE = 100

_MARKER = re.compile(r"\*\*\*REDACTED(?::[a-z_]{1,32})?\*\*\*")


def _kind(kind: str) -> str:
    return f"***REDACTED:{kind}***"


_WORD_OR_DASH = r"[\w-]"


def _word_start(literal: str, word: str = r"\w") -> str:
    r"""
    ``literal`` where no ``word`` character comes before it, or where a JSON escape (``\n``) does.

    The literal comes first so that the regex engine searches for it; the check looks behind it.
    """
    escaped = re.escape(literal)
    return rf"{escaped}(?:(?<!{word}{escaped})|(?<=\\[nrt]{escaped}))"


# ---------------------------------------------------------------------------------------------------------------
# Patterns. See _redact_once for their order: known values first, then whole blocks (keys, webhooks), then the
# labelled rules, then the shapes, so a labelled value gets the plain marker.
# ---------------------------------------------------------------------------------------------------------------

# A space in a PEM header, as written, URL-encoded or form-encoded.
_PEM_SPACE = r"(?: |%20|\+)"
_PRIVATE_KEY = re.compile(
    rf"-----BEGIN{_PEM_SPACE}(?:[A-Z0-9]{{1,20}}{_PEM_SPACE}){{0,3}}PRIVATE{_PEM_SPACE}KEY"
    rf"(?:{_PEM_SPACE}BLOCK)?-----"
    # An unterminated block (a log cut mid-key) is redacted to the end rather than leaked.
    rf".*?(?:-----END{_PEM_SPACE}(?:[A-Z0-9]{{1,20}}{_PEM_SPACE}){{0,3}}PRIVATE{_PEM_SPACE}KEY"
    rf"(?:{_PEM_SPACE}BLOCK)?-----|\Z)",
    re.DOTALL,
)
# The scheme in front is kept as it is, so the webhook is found with or without one, and URL-encoded.
_SLACK_WEBHOOK = re.compile(
    r"(?P<prefix>hooks\.slack(?:-gov)?\.com(?:/|%2[Ff])(?:services|workflows|triggers)(?:/|%2[Ff]))"
    r"[A-Za-z0-9_/+%-]{1,512}"
)
_PAGERDUTY_URL = re.compile(r"(?P<prefix>pagerduty\.com/integration/)[0-9A-Za-z]{32}(?![0-9A-Za-z])")

# The labelled rules are written in lower case and run over ``text.lower()``; spans map back to the original
# text (see _sub_lowered). An IGNORECASE alternation would be tried at every position and cost ten times more.
_LABEL_WORDS = (
    r"(?:passw(?:or)?d|pwd|passphrase|secret(?:[_-]?(?:access[_-]?)?key)?|token|api[_-]?key"
    r"|private[_-]?key(?:[_-]?content)?|access[_-]?key(?:[_-]?id)?|(?:routing|integration|service)[_-]?key"
    r"|webhook(?:[_-]?(?:url|token))?|credentials?|dbt_env_secret_[a-z0-9_]{1,64})"
)
# A value: a marker left from an earlier pass (followed by a delimiter, so "***REDACTED***hunter2" is no
# marker); a JSON string escaped inside another one; a double- or single-quoted string, past backslash-escaped
# and SQL-doubled quotes, to the end of the line when never closed; or a bare word, unless it opens a nested
# structure ({"... or [{...), whose own labels are redacted instead. A bare word stops before a JSON escape
# (\" or \n), so redacting a JSON document as text keeps it valid JSON.
_VALUE = (
    r"(?P<value>\*\*\*redacted(?::[a-z_]{1,32})?\*\*\*(?![^\s\"'`,;&|<>()\[\]{}\\])"
    r"|(?P<escape>\\{1,7})\"[^\r\n]*?(?:(?P=escape)\"|(?=[\r\n])|\Z)"
    r"|\"(?:[^\"\\\r\n]|\\.|\"\")*+\"?"
    r"|'(?:[^'\\\r\n]|\\{1,8}'|\\.|'')*+'?"
    r"|(?![{\[](?:[\s\"'{\[\]}\\]|\Z))(?:[^\s\"',;&\\]++|\\(?![\"'nrt]))++)"
)
# A line break, as written or JSON-escaped ("\\n" inside a JSON log line), after an optional shell continuation.
_NEWLINE = r"(?:\\{1,2}(?=\r?\n|(?:\\r)?\\n))?(?:\r?\n|(?:\\r)?\\n)"
# A line ending where the value wraps, then the next line's indentation; not when the next line is a key of its
# own ("password:\n  user: etl").
_WRAP = rf"(?:{_NEWLINE}[ \t]{{0,64}}(?![\w.\-\"']{{1,64}}[ \t]{{0,16}}:(?:[ \t\r\n]|\\[rn]|\Z)))"
_LABELLED_VALUE = re.compile(
    rf"(?P<prefix>{_LABEL_WORDS}(?:\\{{0,7}}[\"'])?[ \t]{{0,16}}(?::=|=>|==?|:)[ \t]{{0,16}}"
    rf"(?:[|>][+-]?[ \t]{{0,16}}(?={_NEWLINE}))?{_WRAP}?)"
    rf"{_VALUE}"
)
_AUTHORIZATION = re.compile(
    r"(?P<prefix>authorization(?:\\{0,7}[\"'])?[ \t]{0,16}[:=][ \t]{0,16}(?:\\{0,7}[\"'])?"
    r"(?:(?:bearer|basic|token|digest|negotiate|ntlm|apikey|api-key|key|aws4-hmac-sha256)[ \t]{1,16})?)"
    r"(?P<value>[^\s\"'\\]{1,8192})"
)
# --password X, --db-password X, --private-key-passphrase X, also across a shell line continuation. A value that
# is the next option (--password --verbose, a prompt) is not one. --password=X is a labelled value.
_CLI_FLAG = re.compile(
    rf"(?P<prefix>{_word_start('-', _WORD_OR_DASH)}-?(?:[a-z0-9]{{1,32}}[-_]){{0,4}}{_LABEL_WORDS}"
    rf"(?:[ \t]{{0,16}}{_WRAP}|[ \t]{{1,16}}))(?!--){_VALUE}"
)
_IDENTIFIED_BY = re.compile(
    rf"(?P<prefix>identified[ \t]{{1,16}}by[ \t]{{1,16}}(?:password[ \t]{{1,16}})?){_VALUE}"
)
_XML_ELEMENT = re.compile(
    # The value runs to the closing tag; it may hold a few "<" of its own.
    rf"(?P<prefix><[a-z0-9_.:-]{{0,64}}?{_LABEL_WORDS}>)"
    r"(?P<value>[^<\r\n]{1,8192}+(?:<(?!/)[^<\r\n]{0,8192}+){0,16}|(?:<(?!/)[^<\r\n]{0,8192}+){1,16})(?=</)"
)
_PAGERDUTY_KEY = re.compile(
    r"(?P<prefix>(?:routing|integration|service)[ _-]?key(?![\w-])[^\w\r\n]{0,16}(?:is[ \t]{1,4})?)"
    r"(?P<value>[0-9a-z]{32})(?![0-9a-z])"
)
# "://" first so the regex engine searches for the literal; the scheme before it is kept untouched. A user name
# already redacted by shape (an AWS key as the user of s3://...) ends in a marker whose ":" is not the separator.
# The password runs to the last "@" of the run that a host follows: each run between two "@" is read
# possessively, so only the "@"s are backtracked over.
_URL_CREDENTIALS = re.compile(
    r"(?P<prefix>://[^\s:/@?#\"'<>]{0,256}(?<!\*\*\*REDACTED):)"
    # A password starting with "//" would be the next URL's "://"; refusing it keeps "://://..." cheap.
    r"(?P<value>(?!//)[^\s\"<>@]{1,256}+(?:@[^\s\"<>@]{0,256}+){0,16})(?=@[A-Za-z0-9\[])"
)
_ENCODED_URL_CREDENTIALS = re.compile(
    r"(?P<prefix>%3[Aa]%2[Ff]%2[Ff](?:[^\s%:/@?#&\"'<>]|%(?!3[Aa])[0-9A-Fa-f]{2}){0,256}%3[Aa])"
    r"(?P<value>(?:[^\s&\"'<>%]{1,256}+|%(?!40)[0-9A-Fa-f]{2}){1,128}+"
    r"(?:%40(?:[^\s&\"'<>%]{1,256}+|%(?!40)[0-9A-Fa-f]{2}){0,128}+){0,16})(?=%40)"
)
# mysql -u etl -phunter2: a -p flag with its value attached is a password only on a command line naming a user.
_SHORT_PASSWORD_FLAG = re.compile(
    rf"(?P<prefix>{_word_start('-p', _WORD_OR_DASH)})"
    r"(?P<value>\"[^\"\r\n]{1,256}\"|'[^'\r\n]{1,256}'|[^\s\"'-][^\s\"']{0,255})"
)
_USER_FLAG = re.compile(
    rf"{_word_start('-u', _WORD_OR_DASH)}|{_word_start('-U', _WORD_OR_DASH)}"
    rf"|{_word_start('--user', _WORD_OR_DASH)}(?:name)?[ =]|\b(?:mysql|mysqldump|mysqladmin|mariadb)\b"
)
# host:port/path before an "@" later in the URL (an e-mail in the query) is a port, not a password.
_PORT_AND_PATH = re.compile(r"[0-9]{1,5}(?:[/?#]|%2[Ff]|%3[Ff]|%23).*", re.DOTALL)
# Shape rules start with a literal and check the word boundary behind it, which lets the engine jump from one
# occurrence of the literal to the next instead of trying the pattern at every position.
_BEARER = re.compile(
    rf"(?P<prefix>(?:{_word_start('Bearer')}|{_word_start('BEARER')})"
    rf"(?:[ \t]{{1,16}}|[ \t]{{0,16}}{_NEWLINE}[ \t]{{0,64}}))(?P<value>[A-Za-z0-9._~+/=-]{{1,8192}})"
)
_BASIC = re.compile(
    rf"(?P<prefix>{_word_start('Basic')}(?:[ \t]{{1,16}}|[ \t]{{0,16}}{_NEWLINE}[ \t]{{0,64}}))"
    r"(?P<value>[A-Za-z0-9+/]{4,8192}={0,2})(?![A-Za-z0-9+/=])"
)
_AWS_ACCESS_KEY = re.compile(rf"{_word_start('A')}(?:KIA|SIA)[0-9A-Z]{{16}}(?![0-9A-Za-z_])")
_AWS_SECRET_KEY = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
_HEX = re.compile(r"[0-9a-fA-F]+")
_BASE64_CHARACTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")
_BASE64 = "[A-Za-z0-9+/]"
_SHAPES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(rf"{_word_start('x')}(?:ox[a-z]|app)[-.][A-Za-z0-9.%-]{{1,255}}"), "slack_token"),
    (_AWS_ACCESS_KEY, "aws_access_key"),
    (re.compile(rf"{_word_start('gh')}[pousr]_[A-Za-z0-9]{{20,255}}"), "github_token"),
    (re.compile(rf"{_word_start('github_pat_')}[A-Za-z0-9_]{{20,255}}"), "github_token"),
    (re.compile(rf"{_word_start('glpat-')}[A-Za-z0-9_-]{{20,255}}"), "gitlab_token"),
    (re.compile(rf"{_word_start('AIza')}[0-9A-Za-z_-]{{35}}"), "google_api_key"),
    (re.compile(rf"{_word_start('sk-', _WORD_OR_DASH)}[A-Za-z0-9_-]{{20,512}}"), "api_key"),
    (
        re.compile(rf"(?:{_word_start('sk_')}|{_word_start('rk_')})(?:live|test)_[A-Za-z0-9]{{16,255}}"),
        "api_key",
    ),
    (
        re.compile(rf"{_word_start('ver:')}[0-9]{{1,3}}-hint:[0-9]{{1,32}}-[A-Za-z0-9+/=_-]{{8,8192}}"),
        "snowflake_token",
    ),
    (re.compile(rf"{_word_start('ETMsDg', _BASE64)}[A-Za-z0-9+/=_-]{{16,8192}}"), "snowflake_token"),
    (
        re.compile(
            rf"{_word_start('eyJ')}[A-Za-z0-9_-]{{1,8192}}\.eyJ[A-Za-z0-9_-]{{1,16384}}\.[A-Za-z0-9_-]{{0,8192}}"
        ),
        "jwt",
    ),
    (re.compile(rf"{_word_start('MII', _BASE64)}[A-Za-z0-9+/]{{60,16384}}={{0,2}}"), "private_key"),
)

# Dict keys whose values are secret as a whole, after camelCase and separators are folded to snake_case.
_SECRET_KEY = re.compile(
    r"(?:^|_)(?:passw(?:or)?d|pwd|passphrase|secret|token|api_?key|private_?key(?:_content)?|authorization"
    r"|routing_?key|integration_?key|service_?key|webhook(?:_url|_token)?|client_secret|access_?key(?:_id)?"
    r"|secret_?(?:access_?)?key|credentials?|creds)$"
    r"|^dbt_env_secret_"
)
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_KEY_SEPARATORS = re.compile(r"[^a-z0-9]+")


# ---------------------------------------------------------------------------------------------------------------
# Replacement helpers
# ---------------------------------------------------------------------------------------------------------------


_OPENING_QUOTE = re.compile(r"\\*[\"']")


def _is_marker(value: str) -> bool:
    return _MARKER.fullmatch(value) is not None


def _replace_value(whole: str, prefix: str, value: str) -> str:
    """Keep the label or URL prefix and replace the value, keeping its quotes; a marker is left as it is."""
    opening = _OPENING_QUOTE.match(value)
    quote_mark = opening.group(0) if opening else ""
    if quote_mark:
        closed = len(value) >= 2 * len(quote_mark) and value.endswith(quote_mark)
        inner = value[len(quote_mark) : -len(quote_mark)] if closed else value[len(quote_mark) :]
        if not inner or _is_marker(inner):
            return whole
        return f"{prefix}{quote_mark}{REDACTED}{quote_mark if closed else ''}"
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


def _redact_basic(match: re.Match[str]) -> str:
    """Redact ``Basic <base64>`` only when it looks like credentials, so "Basic authentication" survives."""
    value = match.group("value")
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if b":" in decoded or any(char.isdigit() or char in "+/=" for char in value):
        return _replace_value(match.group(0), match.group("prefix"), value)
    return match.group(0)


def _redact_url_credentials(match: re.Match[str]) -> str:
    if _PORT_AND_PATH.fullmatch(match.group("value")):
        return match.group(0)
    return _redact_value(match)


def _redact_short_password_flag(text: str) -> str:
    """``-pVALUE`` on a line that also names a user (``-u``, ``--user``) or a MySQL client."""
    if "-p" not in text:
        return text
    # One search per line, however many flags it holds; lines found by bisection, not by scanning back.
    line_ends = [match.start() for match in re.finditer("\n", text)] + [len(text)]
    names_a_user: dict[int, bool] = {}

    def replace(match: re.Match[str]) -> str:
        line = bisect.bisect_left(line_ends, match.start())
        if line not in names_a_user:
            line_start = line_ends[line - 1] + 1 if line else 0
            names_a_user[line] = _USER_FLAG.search(text, line_start, line_ends[line]) is not None
        return _redact_value(match) if names_a_user[line] else match.group(0)

    return _SHORT_PASSWORD_FLAG.sub(replace, text)


def _redact_aws_secret_keys(text: str) -> str:
    """A 40-character base64 word near an AWS access key id is its secret key (``id,secret`` rows, env dumps)."""
    spans = []
    for key in _AWS_ACCESS_KEY.finditer(text):
        window_start = max(0, key.start() - _AWS_PAIR_DISTANCE)
        window_end = min(len(text), key.end() + _AWS_PAIR_DISTANCE)
        for candidate in _AWS_SECRET_KEY.finditer(text, window_start, window_end):
            # endpos hides what follows the window: a longer word cut there is no key.
            cut = candidate.end() == window_end < len(text) and text[window_end] in _BASE64_CHARACTERS
            if not cut and not _HEX.fullmatch(candidate.group(0)):
                spans.append(candidate.span())
    if not spans:
        return text
    pieces: list[str] = []
    last = 0
    for start, end in sorted(set(spans)):
        if start < last:
            continue
        pieces += [text[last:start], _kind("aws_secret_key")]
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


def _replace_with(kind: str) -> Callable[[re.Match[str]], str]:
    marker = _kind(kind)

    def replace(match: re.Match[str]) -> str:
        prefix = match.groupdict().get("prefix") or ""
        return f"{prefix}{marker}"

    return replace


# ---------------------------------------------------------------------------------------------------------------
# Known secrets
# ---------------------------------------------------------------------------------------------------------------


def _quoted_forms(secret: str) -> set[str]:
    """The forms a value takes once quoted, escaped or encoded by the code that prints it."""
    json_escaped = json.dumps(secret)[1:-1]
    json_twice = json.dumps(json_escaped)[1:-1]
    backslashed = secret.replace("\\", "\\\\")
    forms = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        quote(quote(secret, safe=""), safe=""),
        json_escaped,
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json_twice,
        json.dumps(json_twice)[1:-1],
        json_escaped.replace("/", "\\/"),
        repr(secret)[1:-1],
        backslashed.replace("'", "\\'"),
        backslashed.replace('"', '\\"'),
        secret.replace("'", "''"),
        secret.replace('"', '""'),
        shlex.quote(secret),
    }
    return forms


def _secret_variants(extra_secrets: Iterable[str]) -> list[str]:
    """The known values, the parts a log may print alone, and their quoted or encoded forms, longest first."""
    variants: set[str] = set()
    for secret in extra_secrets:
        if not isinstance(secret, str) or len(secret) < MIN_EXTRA_SECRET_LENGTH:
            continue
        variants.update(_quoted_forms(secret))
        for part in _secret_parts(secret):
            variants.update(_quoted_forms(part))
    return sorted(
        (variant for variant in variants if len(variant) >= MIN_EXTRA_SECRET_LENGTH), key=len, reverse=True
    )


def _secret_parts(secret: str) -> list[str]:
    """Each long line of a multi-line value (a PEM key); the last path segment of a URL (a webhook's token)."""
    parts = [line.strip() for line in secret.splitlines()] if "\n" in secret or "\r" in secret else []
    parts = [line for line in parts if len(line) >= MIN_SECRET_LINE_LENGTH]
    if "://" in secret:
        try:
            segment = urlsplit(secret).path.rstrip("/").rsplit("/", 1)[-1]
        except ValueError:
            segment = ""
        if len(segment) >= MIN_SECRET_LINE_LENGTH // 2:
            parts.append(segment)
    return parts


def _redact_known(text: str, secrets: list[str]) -> str:
    """Replace every occurrence of a known value, ignoring case; existing markers are kept whole."""
    if not secrets:
        return text
    lowered = text.lower()
    if len(lowered) != len(text):
        # Some characters lower to two (e.g. "İ"), which would shift the spans; let the regex engine fold case.
        pattern = re.compile(
            f"(?P<marker>{_MARKER.pattern})|" + "|".join(re.escape(secret) for secret in secrets),
            re.IGNORECASE,
        )
        return pattern.sub(lambda match: match.group(0) if match.group("marker") else REDACTED, text)
    # str.find over the lowered text, instead of an IGNORECASE alternation, which costs ten times more on a
    # large log. Candidates are taken leftmost first, a marker before a secret, a longer secret before a shorter
    # one, as the alternation would; a secret such as "RED" thus cannot shred a marker.
    candidates: list[tuple[int, int, int]] = []
    for priority, secret in enumerate(secrets, start=1):
        needle = secret.lower()
        start = lowered.find(needle)
        while start >= 0:
            candidates.append((start, priority, start + len(needle)))
            start = lowered.find(needle, start + len(needle))
    if not candidates:
        return text
    candidates += [(match.start(), 0, match.end()) for match in _MARKER.finditer(text)]
    pieces: list[str] = []
    last = 0
    for start, priority, end in sorted(candidates):
        if start < last:
            continue
        pieces += [text[last:start], text[start:end] if priority == 0 else REDACTED]
        last = end
    pieces.append(text[last:])
    return "".join(pieces)


# ---------------------------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------------------------


def redact(text: str, *, extra_secrets: Iterable[str] = ()) -> str:
    """
    Replace the secrets in ``text`` with redaction markers; see the module docstring for what is found.

    .. code-block:: python

        redact("AIRFLOW_CONN_SF=snowflake://etl:pw1@acct", extra_secrets=["pw1"])
        # 'AIRFLOW_CONN_SF=snowflake://etl:***REDACTED***@acct'

    :param text: any text: a log, an error message, compiled SQL, a JSON document.
    :param extra_secrets: exact values known to be secret (e.g. :func:`secrets_of_connection`), replaced wherever
        they occur, even inside words, case-insensitively, together with their quoted, escaped and encoded
        forms. Values shorter than :data:`MIN_EXTRA_SECRET_LENGTH` characters are skipped because replacing
        them would shred the text.
    :return: the text with every secret replaced; idempotent.
    """
    return _redact_text(text, _secret_variants(extra_secrets))


def _redact_text(text: str, secrets: list[str]) -> str:
    if not isinstance(text, str):
        text = str(text)
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
    text = _PAGERDUTY_URL.sub(_replace_with("pagerduty_key"), text)
    text = _sub_lowered(_AUTHORIZATION, text)
    text = _URL_CREDENTIALS.sub(_redact_url_credentials, text)
    if "%40" in text:
        text = _ENCODED_URL_CREDENTIALS.sub(_redact_url_credentials, text)
    for pattern in (_LABELLED_VALUE, _CLI_FLAG, _IDENTIFIED_BY, _XML_ELEMENT, _PAGERDUTY_KEY):
        text = _sub_lowered(pattern, text)
    text = _redact_short_password_flag(text)
    text = _BEARER.sub(_redact_value, text)
    text = _BASIC.sub(_redact_basic, text)
    text = _redact_aws_secret_keys(text)
    for pattern, kind in _SHAPES:
        text = pattern.sub(_kind(kind), text)
    return text


def is_secret_key(key: str) -> bool:
    """
    Whether a mapping key names a secret, e.g. ``password``, ``SNOWFLAKE_PASSWORD``, ``apiKey``, ``x-api-key``.

    :param key: the key as written; camelCase, dashes, dots and spaces are folded to snake_case first.
    :return: True when the key ends in one of the secret words (``private_key_content``, ``credentials``,
        ``aws_secret_access_key``...) or starts with ``DBT_ENV_SECRET_``.
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
    return _redact_obj(value, _secret_variants(extra_secrets))


def _redact_obj(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return _redact_text(value, secrets)
    if isinstance(value, Mapping):
        redacted: dict[Any, Any] = {}
        for key, item in value.items():
            secret_key = isinstance(key, str) and is_secret_key(key)
            new_key = _redact_text(key, secrets) if isinstance(key, str) else key
            redacted[new_key] = REDACTED if secret_key and item is not None else _redact_obj(item, secrets)
        return redacted
    if isinstance(value, list):
        return [_redact_obj(item, secrets) for item in value]
    if isinstance(value, tuple):
        return tuple(_redact_obj(item, secrets) for item in value)
    return value


# ---------------------------------------------------------------------------------------------------------------
# The secrets of a connection
# ---------------------------------------------------------------------------------------------------------------

# Connection types whose login is an access key id rather than a user name.
_KEY_ID_LOGIN_TYPES = frozenset({"aws", "s3", "emr"})


def secrets_of_connection(connection: Any) -> list[str]:
    """
    Every secret value of a connection, to pass to :func:`redact` as ``extra_secrets``.

    That is the password, and every value under a secret-named key (:func:`is_secret_key`) of its extras, at any
    depth, including an extra stored as a JSON string inside an extra (a service account's ``keyfile_dict``): a
    Snowflake key pair's ``private_key_content`` and ``private_key_passphrase``, OAuth ``token``,
    ``refresh_token``, ``client_secret`` and ``oauth_password``, a Slack webhook's token (the password), a
    PagerDuty integration key (the password), an AWS connection's ``aws_secret_access_key`` and
    ``aws_session_token``, and its login, the access key id. Bytes (the DER private key of Snowflake's
    connector arguments) are given in base64 and, when they are text, as text.

    .. code-block:: python

        secrets = secrets_of_connection(BaseHook.get_connection("snowflake_prod"))
        secrets = secrets_of_connection(SelfhealSnowflakeHook(snowflake_conn_id="snowflake_prod").conn_params)
        redact(log, extra_secrets=secrets)

    :param connection: an Airflow ``Connection`` or anything with ``password`` and ``extra_dejson`` (or
        ``extra``, a JSON string) attributes; or a mapping, such as a hook's connector arguments, with
        ``password``, secret-named keys and an optional ``extra``.
    :return: the distinct values, password first, in the order found; empty or None values left out.
    """
    fields: dict[str, Any]
    if isinstance(connection, Mapping):
        fields = dict(connection)
    else:
        extra = getattr(connection, "extra_dejson", None)
        if not isinstance(extra, Mapping):
            extra = getattr(connection, "extra", None)
        fields = {
            "password": getattr(connection, "password", None),
            "extra": extra,
            "conn_type": getattr(connection, "conn_type", None),
            "login": getattr(connection, "login", None),
        }
    found: dict[str, None] = {}
    if "password" in fields:
        _collect_secrets(fields.pop("password"), True, found)
    login = fields.pop("login", None)
    _collect_secrets(fields, False, found)
    if str(fields.get("conn_type") or "").lower() in _KEY_ID_LOGIN_TYPES:
        _collect_secrets(login, True, found)
    return list(found)


def _collect_secrets(value: Any, secret: bool, found: dict[str, None]) -> None:
    if value is None or value == "":
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            _collect_secrets(item, secret or (isinstance(key, str) and is_secret_key(key)), found)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            _collect_secrets(item, secret, found)
    elif isinstance(value, (bytes, bytearray)):
        if secret:
            found.setdefault(base64.b64encode(bytes(value)).decode("ascii"), None)
            try:
                _collect_secrets(bytes(value).decode("utf-8"), secret, found)
            except UnicodeDecodeError:
                pass
    elif isinstance(value, str):
        if secret:
            found.setdefault(value, None)
        if value.lstrip().startswith("{"):
            # An extra holding JSON (a keyfile, a nested extra) has secret-named keys of its own.
            try:
                nested = json.loads(value)
            except ValueError:
                return
            if isinstance(nested, Mapping):
                _collect_secrets(nested, secret, found)
    elif secret and isinstance(value, (int, float)) and not isinstance(value, bool):
        found.setdefault(str(value), None)


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
