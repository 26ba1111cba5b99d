"""Redaction tried as an attacker would: many shapes of secret, in the text they really turn up in.

Each :class:`Shape` makes one kind of secret from a random source (a label and a syntax, a token format, a known
value in one of its quoted forms, a secret-named key), and each context puts it in realistic text: a dbt log, a
Snowflake error, a traceback, YAML, a JSON log line, a command line, a URL, a wrapped line, a nested payload.
Hypothesis draws the pairs and the secrets; :func:`leak_report` tries every pair once, for the counts.

A secret leaks when any 8 consecutive characters of it (as written, or JSON-escaped) survive, so a half-redacted
value counts as a leak.
"""

from __future__ import annotations

import base64
import json
import random
import shlex
import string
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airflow_selfheal.core.redaction import REDACTED, redact, redact_obj, secrets_of_connection

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

LEAK_WINDOW = 8
ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
BASE64 = ALNUM + "+/"
BASE64URL = ALNUM + "-_"
# Characters an unquoted value may hold: not whitespace, quotes, backslash, ",", ";" or "&", which end it.
UNQUOTED_SPECIALS = "!#$%*+-./:=?@^_~|<>()[]{}"


# ---------------------------------------------------------------------------------------------------------------
# What a shape makes
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    """
    One secret in place.

    :param text: the fragment holding the secret, for a text shape.
    :param needles: what must not survive.
    :param known: values the caller knows are secret (``extra_secrets``).
    :param value: the mapping holding the secret, for an object shape (``redact_obj``).
    """

    text: str | None
    needles: tuple[str, ...]
    known: tuple[str, ...] = ()
    value: Any = None


@dataclass(frozen=True)
class Shape:
    name: str
    make: Callable[[random.Random], Sample]


def chars(rng: random.Random, alphabet: str, length: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(length))


def password(rng: random.Random, specials: str = UNQUOTED_SPECIALS) -> str:
    """A password: a letter, then letters, digits and ``specials``, then a digit."""
    return (
        rng.choice(string.ascii_letters)
        + chars(rng, ALNUM + specials, rng.randint(10, 24))
        + rng.choice("0123456789")
    )


def aws_key_id(rng: random.Random, prefix: str = "AKIA") -> str:
    return prefix + chars(rng, UPPER_DIGITS, 16)


def aws_secret(rng: random.Random) -> str:
    # At least one "/" and an upper- and a lower-case letter: never all hex.
    return (
        chars(rng, BASE64, 37) + "/" + rng.choice(string.ascii_uppercase) + rng.choice(string.ascii_lowercase)
    )


def jwt(rng: random.Random) -> str:
    return f"eyJ{chars(rng, BASE64URL, 30)}.eyJ{chars(rng, BASE64URL, 60)}.{chars(rng, BASE64URL, 43)}"


def slack_path(rng: random.Random) -> str:
    return f"T{chars(rng, UPPER_DIGITS, 10)}/B{chars(rng, UPPER_DIGITS, 10)}/{chars(rng, ALNUM, 24)}"


def pem_body(rng: random.Random) -> list[str]:
    return ["MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" + chars(rng, BASE64, 32)] + [
        chars(rng, BASE64, 64) for _ in range(4)
    ]


def pem(rng: random.Random, kind: str = "PRIVATE KEY", newline: str = "\n") -> tuple[str, list[str]]:
    body = pem_body(rng)
    return newline.join([f"-----BEGIN {kind}-----", *body, f"-----END {kind}-----"]), body


def shape(name: str) -> Callable[[Callable[[random.Random], Sample]], Shape]:
    def register(make: Callable[[random.Random], Sample]) -> Shape:
        built = Shape(name, make)
        SHAPES.append(built)
        return built

    return register


def text_sample(text: str, *needles: str, known: Sequence[str] = ()) -> Sample:
    return Sample(text=text, needles=tuple(needles), known=tuple(known))


SHAPES: list[Shape] = []


# ---------------------------------------------------------------------------------------------------------------
# Labelled values: every syntax with every label
# ---------------------------------------------------------------------------------------------------------------

LABELS = (
    "password",
    "client_secret",
    "access_token",
    "api_key",
    "private_key_passphrase",
    "aws_secret_access_key",
    "routing_key",
    "DBT_ENV_SECRET_GIT_CRED",
)


def cli_name(label: str) -> str:
    return label.lower().replace("_", "-")


LABEL_SYNTAXES: dict[str, Callable[[str, str], str]] = {
    "equals": lambda label, value: f"{label}={value}",
    "yaml": lambda label, value: f"{label}: {value}",
    "json": lambda label, value: json.dumps({label: value}),
    "single-quoted": lambda label, value: f"{label} = '{value}'",
    "env-export": lambda label, value: f'export {label.upper()}="{value}"',
    "cli-space": lambda label, value: f"--{cli_name(label)} {value}",
    "cli-equals": lambda label, value: f"--{cli_name(label)}={value}",
    "wrapped-yaml": lambda label, value: f"{label}:\n    {value}",
    "wrapped-env": lambda label, value: f"{label}=\n{value}",
    "url-query": lambda label, value: (
        f"https://api.example.com/v1/runs?{label}={quote(value, safe='')}&page=2"
    ),
    "xml": lambda label, value: f"<{label}>{value}</{label}>",
    "python-repr": lambda label, value: repr({label: value, "user": "etl"}),
    "escaped-json": lambda label, value: json.dumps(json.dumps({label: value})),
    "arrow": lambda label, value: f'{label} => "{value}"',
    "yaml-block": lambda label, value: f"{label}: |\n  {value}",
}


def labelled_shape(syntax: str, label: str) -> Shape:
    render = LABEL_SYNTAXES[syntax]

    def make(rng: random.Random) -> Sample:
        value = password(rng)
        needles = [value, quote(value, safe="")] if syntax == "url-query" else [value]
        return text_sample(render(label, value), *needles)

    return Shape(f"label {syntax} {label}", make)


for _syntax in LABEL_SYNTAXES:
    for _label in LABELS:
        if _syntax.startswith("cli") and _label.startswith("DBT_ENV"):
            continue  # an environment variable, never a flag
        SHAPES.append(labelled_shape(_syntax, _label))


# ---------------------------------------------------------------------------------------------------------------
# AWS
# ---------------------------------------------------------------------------------------------------------------


@shape("aws access key id")
def _(rng: random.Random) -> Sample:
    key = aws_key_id(rng)
    return text_sample(f"S3 request signed with {key} was refused", key)


@shape("aws session key id")
def _(rng: random.Random) -> Sample:
    key = aws_key_id(rng, "ASIA")
    return text_sample(f"assumed role, key {key}", key)


@shape("aws key pair separated by a space")
def _(rng: random.Random) -> Sample:
    key, secret = aws_key_id(rng), aws_secret(rng)
    return text_sample(f"{key} {secret}", key, secret)


@shape("aws credentials csv")
def _(rng: random.Random) -> Sample:
    key, secret = aws_key_id(rng), aws_secret(rng)
    return text_sample(f"Access key ID,Secret access key\n{key},{secret}", key, secret)


@shape("aws environment pair")
def _(rng: random.Random) -> Sample:
    key, secret = aws_key_id(rng), aws_secret(rng)
    return text_sample(f"AWS_ACCESS_KEY_ID={key}\nAWS_SECRET_ACCESS_KEY={secret}", key, secret)


@shape("aws credentials ini")
def _(rng: random.Random) -> Sample:
    secret = aws_secret(rng)
    return text_sample(
        f"[default]\naws_access_key_id = {aws_key_id(rng)}\naws_secret_access_key = {secret}", secret
    )


@shape("aws sts json")
def _(rng: random.Random) -> Sample:
    key, secret, token = aws_key_id(rng, "ASIA"), aws_secret(rng), chars(rng, BASE64, 120)
    return text_sample(
        json.dumps({"AccessKeyId": key, "SecretAccessKey": secret, "SessionToken": token}), key, secret, token
    )


@shape("aws secret key label")
def _(rng: random.Random) -> Sample:
    secret = aws_secret(rng)
    return text_sample(f"AWS_SECRET_KEY={secret}", secret)


@shape("aws keys as url user and password")
def _(rng: random.Random) -> Sample:
    key, secret = aws_key_id(rng), aws_secret(rng)
    return text_sample(f"s3://{key}:{secret}@selfheal-artifacts/dbt_artifacts", key, secret)


# ---------------------------------------------------------------------------------------------------------------
# Slack
# ---------------------------------------------------------------------------------------------------------------


@shape("slack bot token")
def _(rng: random.Random) -> Sample:
    token = f"xoxb-{chars(rng, string.digits, 11)}-{chars(rng, string.digits, 12)}-{chars(rng, ALNUM, 24)}"
    return text_sample(f"slack_sdk: invalid_auth for {token}", token)


@shape("slack user token")
def _(rng: random.Random) -> Sample:
    token = f"xoxp-{chars(rng, string.digits, 11)}-{chars(rng, string.digits, 12)}-{chars(rng, HEX, 32)}"
    return text_sample(f"using {token}", token)


@shape("slack app token")
def _(rng: random.Random) -> Sample:
    token = f"xapp-1-A{chars(rng, UPPER_DIGITS, 10)}-{chars(rng, string.digits, 13)}-{chars(rng, HEX, 64)}"
    return text_sample(f"socket mode {token}", token)


@shape("slack rotated token")
def _(rng: random.Random) -> Sample:
    token = f"xoxe.xoxp-1-{chars(rng, ALNUM, 40)}"
    return text_sample(f"refreshed {token}", token)


@shape("slack webhook")
def _(rng: random.Random) -> Sample:
    path = slack_path(rng)
    return text_sample(f"POST https://hooks.slack.com/services/{path} returned 404", path)


@shape("slack webhook without scheme")
def _(rng: random.Random) -> Sample:
    path = slack_path(rng)
    return text_sample(f"webhook hooks.slack.com/services/{path} is gone", path)


@shape("slack webhook url-encoded")
def _(rng: random.Random) -> Sample:
    path = slack_path(rng)
    encoded = quote(f"https://hooks.slack.com/services/{path}", safe="")
    return text_sample(f"redirect_uri={encoded}", path, quote(path, safe=""))


@shape("slack workflow webhook")
def _(rng: random.Random) -> Sample:
    path = f"{chars(rng, UPPER_DIGITS, 11)}/{chars(rng, string.digits, 18)}/{chars(rng, ALNUM, 24)}"
    return text_sample(f"https://hooks.slack.com/workflows/{path}", path)


# ---------------------------------------------------------------------------------------------------------------
# PagerDuty
# ---------------------------------------------------------------------------------------------------------------


@shape("pagerduty routing key in prose")
def _(rng: random.Random) -> Sample:
    key = chars(rng, HEX, 32)
    return text_sample(f"PagerDuty rejected the routing key {key} (invalid)", key)


@shape("pagerduty integration key with colon")
def _(rng: random.Random) -> Sample:
    key = chars(rng, HEX, 32)
    return text_sample(f"Integration Key: {key}", key)


@shape("pagerduty global routing key")
def _(rng: random.Random) -> Sample:
    key = "R0" + chars(rng, UPPER_DIGITS, 30)
    return text_sample(f"service key {key}", key)


@shape("pagerduty v1 integration url")
def _(rng: random.Random) -> Sample:
    key = chars(rng, HEX, 32)
    return text_sample(f"POST https://events.pagerduty.com/integration/{key}/enqueue", key)


@shape("pagerduty event json")
def _(rng: random.Random) -> Sample:
    key = chars(rng, HEX, 32)
    return text_sample(json.dumps({"routing_key": key, "event_action": "trigger"}), key)


@shape("pagerduty routing key header")
def _(rng: random.Random) -> Sample:
    key = chars(rng, HEX, 32)
    return text_sample(f"X-Routing-Key: {key}", key)


# ---------------------------------------------------------------------------------------------------------------
# Snowflake, DSNs and URLs
# ---------------------------------------------------------------------------------------------------------------


@shape("snowflake oauth access token")
def _(rng: random.Random) -> Sample:
    token = f"ver:1-hint:{chars(rng, string.digits, 10)}-ETMsDgAAAY{chars(rng, BASE64, 120)}"
    return text_sample(f"session opened with {token}", token)


@shape("snowflake oauth token body")
def _(rng: random.Random) -> Sample:
    token = f"ETMsDgAAAY{chars(rng, BASE64, 100)}="
    return text_sample(f"master token {token}", token)


@shape("snowflake programmatic access token")
def _(rng: random.Random) -> Sample:
    token = jwt(rng)
    return text_sample(f"snow connection test --account acme --user etl --authenticator PAT {token}", token)


@shape("snowflake uri")
def _(rng: random.Random) -> Sample:
    secret = password(rng, "!$*-._~")
    return text_sample(f"snowflake://etl:{secret}@acme/ANALYTICS/PUBLIC?warehouse=WH", secret)


for _special in "/#?@:":

    def _uri_with(rng: random.Random, special: str = _special) -> Sample:
        secret = password(rng, "") + special + password(rng, "")
        return text_sample(
            f"AIRFLOW_CONN_SNOWFLAKE_PROD=snowflake://etl:{secret}@acme.snowflakecomputing.com/DB", secret
        )

    SHAPES.append(Shape(f"snowflake uri password with {_special}", _uri_with))


@shape("uri password percent-encoded")
def _(rng: random.Random) -> Sample:
    secret = password(rng, "") + "/#?@ " + password(rng, "")
    encoded = quote(secret, safe="")
    return text_sample(f"snowflake://etl:{encoded}@acme/DB", encoded, secret)


@shape("uri url-encoded whole")
def _(rng: random.Random) -> Sample:
    secret = password(rng, "/#@")
    encoded = quote(f"snowflake://etl:{secret}@acme/DB", safe="")
    return text_sample(f"GET /login?next={encoded}", quote(secret, safe=""), secret)


@shape("postgres dsn")
def _(rng: random.Random) -> Sample:
    secret = password(rng, "!$*-._~")
    return text_sample(f"sql_alchemy_conn = postgresql+psycopg2://airflow:{secret}@db:5432/airflow", secret)


@shape("git url with token")
def _(rng: random.Random) -> Sample:
    token = "ghs_" + chars(rng, ALNUM, 36)
    return text_sample(
        f"fatal: unable to access 'https://x-access-token:{token}@github.com/acme/dbt.git/'", token
    )


@shape("gitlab url with token")
def _(rng: random.Random) -> Sample:
    token = "glpat-" + chars(rng, ALNUM, 20)
    return text_sample(f"remote: https://oauth2:{token}@gitlab.com/acme/dbt.git", token)


@shape("snowflake create user")
def _(rng: random.Random) -> Sample:
    secret = password(rng, "!#$%*+-./:=?@^_~")
    return text_sample(f"CREATE USER etl PASSWORD = '{secret}' DEFAULT_ROLE = TRANSFORMER", secret)


@shape("sql identified by")
def _(rng: random.Random) -> Sample:
    secret = password(rng)
    return text_sample(f"ALTER USER etl IDENTIFIED BY '{secret}'", secret)


@shape("sql doubled quote in labelled value")
def _(rng: random.Random) -> Sample:
    head, tail = password(rng, ""), password(rng, "")
    return text_sample(f"ALTER USER etl SET PASSWORD = '{head}''{tail}'", head, tail)


@shape("backslash-escaped quote in labelled value")
def _(rng: random.Random) -> Sample:
    head, tail = password(rng, ""), password(rng, "")
    return text_sample(f"password='{head}\\'{tail}'", head, tail)


@shape("connector keyword arguments")
def _(rng: random.Random) -> Sample:
    secret = password(rng)
    return text_sample(
        f"snowflake.connector.connect(user='etl', password='{secret}', account='acme')", secret
    )


@shape("libpq keyword dsn")
def _(rng: random.Random) -> Sample:
    secret = password(rng)
    return text_sample(
        f"host=db port=5432 dbname=airflow user=airflow password={secret} sslmode=require", secret
    )


# ---------------------------------------------------------------------------------------------------------------
# Authorization headers, JWTs and API tokens
# ---------------------------------------------------------------------------------------------------------------


@shape("jwt")
def _(rng: random.Random) -> Sample:
    token = jwt(rng)
    return text_sample(f"cookie session={token}; path=/", token)


@shape("authorization bearer")
def _(rng: random.Random) -> Sample:
    token = chars(rng, ALNUM + "._-", 48)
    return text_sample(f"Authorization: Bearer {token}", token)


@shape("bare bearer")
def _(rng: random.Random) -> Sample:
    token = chars(rng, ALNUM + "._-", 48)
    return text_sample(f"retrying with Bearer {token}", token)


@shape("authorization basic")
def _(rng: random.Random) -> Sample:
    credentials = base64.b64encode(f"etl:{password(rng)}".encode()).decode()
    return text_sample(f"Authorization: Basic {credentials}", credentials)


@shape("proxy authorization basic")
def _(rng: random.Random) -> Sample:
    credentials = base64.b64encode(f"proxy:{password(rng)}".encode()).decode()
    return text_sample(f"Proxy-Authorization: Basic {credentials}", credentials)


@shape("authorization token scheme")
def _(rng: random.Random) -> Sample:
    token = chars(rng, HEX, 40)
    return text_sample(f"authorization: token {token}", token)


@shape("curl header")
def _(rng: random.Random) -> Sample:
    token = chars(rng, ALNUM, 40)
    return text_sample(
        f"curl -sS -H 'Authorization: Bearer {token}' https://acme.snowflakecomputing.com/api", token
    )


@shape("authorization json")
def _(rng: random.Random) -> Sample:
    token = jwt(rng)
    return text_sample(json.dumps({"headers": {"Authorization": f"Bearer {token}"}}), token)


@shape("bearer wrapped")
def _(rng: random.Random) -> Sample:
    token = chars(rng, ALNUM, 40)
    return text_sample(f"Authorization:\n  Bearer {token}", token)


@shape("github classic token")
def _(rng: random.Random) -> Sample:
    token = "ghp_" + chars(rng, ALNUM, 36)
    return text_sample(f"git push with {token}", token)


@shape("github fine-grained token")
def _(rng: random.Random) -> Sample:
    token = "github_pat_" + chars(rng, ALNUM + "_", 82)
    return text_sample(f"GH_TOKEN {token}", token)


@shape("github oauth token")
def _(rng: random.Random) -> Sample:
    token = "gho_" + chars(rng, ALNUM, 36)
    return text_sample(f"token for app: {token}", token)


@shape("gitlab token")
def _(rng: random.Random) -> Sample:
    token = "glpat-" + chars(rng, ALNUM + "_-", 20)
    return text_sample(f"registry login {token}", token)


@shape("openai key")
def _(rng: random.Random) -> Sample:
    key = "sk-proj-" + chars(rng, ALNUM + "_-", 48)
    return text_sample(f"model call with {key}", key)


@shape("anthropic key")
def _(rng: random.Random) -> Sample:
    key = "sk-ant-api03-" + chars(rng, ALNUM + "_-", 60)
    return text_sample(f"agent key {key}", key)


@shape("stripe key")
def _(rng: random.Random) -> Sample:
    key = "sk_live_" + chars(rng, ALNUM, 24)
    return text_sample(f"billing {key}", key)


@shape("google api key")
def _(rng: random.Random) -> Sample:
    key = "AIza" + chars(rng, ALNUM + "_-", 35)
    return text_sample(f"maps {key}", key)


# ---------------------------------------------------------------------------------------------------------------
# Private keys
# ---------------------------------------------------------------------------------------------------------------


for _kind in (
    "PRIVATE KEY",
    "RSA PRIVATE KEY",
    "ENCRYPTED PRIVATE KEY",
    "OPENSSH PRIVATE KEY",
    "EC PRIVATE KEY",
):

    def _pem_kind(rng: random.Random, kind: str = _kind) -> Sample:
        block, body = pem(rng, kind)
        return text_sample(f"private_key_content loaded:\n{block}\nconnecting", *body)

    SHAPES.append(Shape(f"pem {_kind.lower()}", _pem_kind))


@shape("pem json-escaped")
def _(rng: random.Random) -> Sample:
    block, body = pem(rng)
    return text_sample(json.dumps({"private_key_content": block}), *body)


@shape("pem cut off")
def _(rng: random.Random) -> Sample:
    block, body = pem(rng)
    return text_sample(block.split("-----END")[0], *body)


@shape("pem url-encoded")
def _(rng: random.Random) -> Sample:
    block, body = pem(rng)
    return text_sample(
        f"extra__snowflake__private_key_content={quote(block, safe='')}",
        *(quote(line, safe="") for line in body),
    )


@shape("pem in yaml block")
def _(rng: random.Random) -> Sample:
    block, body = pem(rng)
    indented = "\n    ".join(block.splitlines())
    return text_sample(f"private_key: |\n    {indented}", *body)


@shape("der key base64")
def _(rng: random.Random) -> Sample:
    key = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" + chars(rng, BASE64, 200)
    return text_sample(f"key {key}", key)


# ---------------------------------------------------------------------------------------------------------------
# Command lines and environments
# ---------------------------------------------------------------------------------------------------------------


@shape("mysql attached password")
def _(rng: random.Random) -> Sample:
    secret = password(rng, "!#$%*+./:=?@^_~")
    return text_sample(f"mysql -uetl -p{secret} -h db analytics", secret)


@shape("mysql spaced user")
def _(rng: random.Random) -> Sample:
    secret = password(rng, "!#$%*+./:=?@^_~")
    return text_sample(f"mysqldump -u etl -p{secret} shop > dump.sql", secret)


@shape("cli password continued")
def _(rng: random.Random) -> Sample:
    secret = password(rng)
    return text_sample(
        f"snow sql --account acme --user etl --password \\\n    {secret} -q 'select 1'", secret
    )


@shape("dbt vars json")
def _(rng: random.Random) -> Sample:
    secret = password(rng)
    return text_sample(f'dbt run --vars \'{{"snowflake_password": "{secret}"}}\'', secret)


@shape("pgpassword env")
def _(rng: random.Random) -> Sample:
    secret = password(rng)
    return text_sample(f"PGPASSWORD={secret} psql -h db -U airflow", secret)


@shape("env dump of dbt secrets")
def _(rng: random.Random) -> Sample:
    first, second = password(rng), password(rng)
    return text_sample(
        f"DBT_ENV_SECRET_SNOWFLAKE_KEY={first}\nDBT_ENV_SECRET_GIT={second}\nDBT_PROFILES_DIR=/opt",
        first,
        second,
    )


@shape("env suffixes")
def _(rng: random.Random) -> Sample:
    values = [password(rng) for _ in range(3)]
    return text_sample(
        f"ORDERS_API_TOKEN={values[0]} WAREHOUSE_SECRET={values[1]} REPORTING_DB_PASSWORD={values[2]}",
        *values,
    )


# ---------------------------------------------------------------------------------------------------------------
# Known values in the forms quoting gives them
# ---------------------------------------------------------------------------------------------------------------


def known_shape(name: str, form: Callable[[str], str], specials: str = "!#$%*+-./:=?@^_~") -> Shape:
    def make(rng: random.Random) -> Sample:
        secret = password(rng, specials)
        written = form(secret)
        return text_sample(
            f"000390 (42601): login failed near {written} for user ETL", written, known=[secret]
        )

    return Shape(f"known {name}", make)


SHAPES += [
    known_shape("as is", lambda secret: secret),
    known_shape("inside a word", lambda secret: f"x{secret}y"),
    known_shape("upper-cased", str.upper),
    known_shape("lower-cased", str.lower),
    known_shape("sql-doubled quotes", lambda secret: "'" + secret.replace("'", "''") + "'", "'\"!$"),
    known_shape("backslash-escaped", lambda secret: "'" + secret.replace("'", "\\'") + "'", "'!$"),
    known_shape("json-escaped", lambda secret: json.dumps(secret)[1:-1], '"\\/!$'),
    known_shape("json-escaped twice", lambda secret: json.dumps(json.dumps(secret))[1:-1], '"\\!$'),
    known_shape("url-encoded", lambda secret: quote(secret, safe=""), "/#?@ :!"),
    known_shape("url-encoded lower-case hex", lambda secret: quote(secret, safe="").lower(), "/#?@"),
    known_shape("form-encoded", quote_plus, " /&="),
    known_shape("shell-quoted", shlex.quote, "' $"),
    known_shape("repr", lambda secret: repr(secret), "'\\\"\t"),
]


@shape("known pem line printed alone")
def _(rng: random.Random) -> Sample:
    block, body = pem(rng)
    return text_sample(f"could not load key: bad line {body[2]}", body[2], known=[block])


@shape("known webhook token printed alone")
def _(rng: random.Random) -> Sample:
    path = slack_path(rng)
    token = path.rsplit("/", 1)[-1]
    return text_sample(f"invalid_token {token}", token, known=[f"https://chat.example.com/services/{path}"])


@shape("key-pair connection's key body")
def _(rng: random.Random) -> Sample:
    block, body = pem(rng)
    passphrase = password(rng)
    connection = ConnectionLike(
        password=None,
        extra_dejson={"account": "acme", "private_key_content": block, "private_key_passphrase": passphrase},
    )
    return text_sample(
        f"key {''.join(body)} with {passphrase.upper()}",
        "".join(body),
        passphrase,
        known=secrets_of_connection(connection),
    )


@shape("aws connection's secret key")
def _(rng: random.Random) -> Sample:
    key, secret = "AKIA" + chars(rng, UPPER_DIGITS, 16), chars(rng, BASE64, 40)
    connection = ConnectionLike(
        conn_type="aws", login=key, password=secret, extra_dejson={"region_name": "eu-west-1"}
    )
    return text_sample(
        f"signature mismatch for {secret.lower()}", secret, known=secrets_of_connection(connection)
    )


@shape("oauth connection's tokens")
def _(rng: random.Random) -> Sample:
    refresh, client = chars(rng, ALNUM, 40), chars(rng, ALNUM, 32)
    params = {
        "authenticator": "oauth",
        "refresh_token": refresh,
        "client_secret": client,
        "session_parameters": {},
    }
    return text_sample(
        f"grant failed: {refresh} / {client}", refresh, client, known=secrets_of_connection(params)
    )


# ---------------------------------------------------------------------------------------------------------------
# Secret-named keys (redact_obj)
# ---------------------------------------------------------------------------------------------------------------


def object_shape(name: str, build: Callable[[str], Any]) -> Shape:
    def make(rng: random.Random) -> Sample:
        secret = password(rng, "\"' /\\")
        return Sample(text=None, needles=(secret,), value=build(secret))

    return Shape(f"key {name}", make)


SHAPES += [
    object_shape("password", lambda secret: {"login": "etl", "password": secret}),
    object_shape("private_key_content", lambda secret: {"extra": {"private_key_content": secret}}),
    object_shape("credentials", lambda secret: {"credentials": {"user": "etl", "blob": [secret]}}),
    object_shape("DBT_ENV_SECRET_", lambda secret: {"env": {"DBT_ENV_SECRET_GIT_CRED": secret}}),
    object_shape("Authorization", lambda secret: {"headers": {"Authorization": f"Token {secret}"}}),
    object_shape("webhook_token", lambda secret: {"slack": {"webhook_token": secret}}),
    object_shape("aws_session_token", lambda secret: [{"aws_session_token": secret}]),
    object_shape("secretAccessKey", lambda secret: {"Credentials": {"secretAccessKey": secret}}),
    object_shape("x-api-key", lambda secret: ({"x-api-key": secret},)),
    object_shape("oauth_client_secret", lambda secret: {"oauth": {"oauth_client_secret": secret}}),
    object_shape("private_key_passphrase", lambda secret: {"private_key_passphrase": secret}),
    object_shape("integration_key", lambda secret: {"pagerduty": {"integration_key": secret}}),
]


# ---------------------------------------------------------------------------------------------------------------
# Where secrets turn up
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """Realistic text around a fragment; ``kept`` must survive redaction."""

    name: str
    wrap: Callable[[str], Any]
    kept: str


CONTEXTS = (
    Context(
        "dbt log",
        lambda fragment: (
            "12:01:02  1 of 3 ERROR creating sql view model analytics.stg_orders ... [ERROR in 1.20s]\n"
            "12:01:02  Database Error in model stg_orders (models/staging/stg_orders.sql)\n"
            f"  {fragment}\n"
            "12:01:03  Done. PASS=1 WARN=0 ERROR=1 SKIP=1 TOTAL=3"
        ),
        "models/staging/stg_orders.sql",
    ),
    Context(
        "snowflake error",
        lambda fragment: (
            "250001 (08001): None: Failed to connect to DB: acme.snowflakecomputing.com:443. "
            f"Incorrect username or password was specified. ({fragment})"
        ),
        "Incorrect username or password was specified.",
    ),
    Context(
        "python traceback",
        lambda fragment: (
            "Traceback (most recent call last):\n"
            '  File "/opt/airflow/dags/orders.py", line 42, in execute\n'
            "    hook.run(sql)\n"
            f"snowflake.connector.errors.ProgrammingError: 001003 (42000): {fragment}"
        ),
        'File "/opt/airflow/dags/orders.py", line 42, in execute',
    ),
    Context(
        "yaml",
        lambda fragment: (
            f"selfheal:\n  outputs:\n    prod:\n      type: snowflake\n      {fragment}\n  threads: 4"
        ),
        "type: snowflake",
    ),
    Context(
        "json log",
        lambda fragment: json.dumps({"level": "error", "node": "model.shop.stg_orders", "msg": fragment}),
        '"node": "model.shop.stg_orders"',
    ),
    Context(
        "cli",
        lambda fragment: f"$ dbt build --select stg_orders+ --target prod\n+ {fragment}\nexit status 2",
        "dbt build --select stg_orders+ --target prod",
    ),
    Context(
        "url",
        lambda fragment: (
            f"GET https://acme.snowflakecomputing.com/queries/01b2c3d4-0000 -> 500 Internal Error: {fragment}"
        ),
        "GET https://acme.snowflakecomputing.com/queries/01b2c3d4-0000 -> 500",
    ),
    Context(
        "wrapped line",
        lambda fragment: (
            "WARNING airflow.task: the failure callback could not reach the warehouse after 3 attempts, last error\n"
            f"    {fragment}\n    (will retry)"
        ),
        "could not reach the warehouse after 3 attempts",
    ),
    Context(
        "nested payload",
        lambda fragment: {"summary": "dbt run failed", "details": {"log": [fragment], "attempt": 2}},
        "dbt run failed",
    ),
)


# ---------------------------------------------------------------------------------------------------------------
# Checking
# ---------------------------------------------------------------------------------------------------------------


def placed(sample: Sample, context: Context) -> Any:
    """The sample in its context: text for a text shape, the wrapped mapping for an object shape."""
    if sample.text is not None:
        return context.wrap(sample.text)
    return {"summary": "dbt run failed", "details": sample.value}


def scrub(
    value: Any, known: Iterable[str], redact_text: Callable[..., str], redact_value: Callable[..., Any]
) -> str:
    """Redact ``value`` and give the result as one text to search."""
    if isinstance(value, str):
        return redact_text(value, extra_secrets=list(known))
    return json.dumps(redact_value(value, extra_secrets=list(known)), ensure_ascii=False)


def leaks(output: str, needles: Iterable[str]) -> list[str]:
    """The needles of which some :data:`LEAK_WINDOW` characters survive in ``output``, as written or escaped."""
    lowered = output.lower()
    found = []
    for needle in needles:
        for form in {needle, json.dumps(needle)[1:-1]}:
            form = form.lower()
            width = min(LEAK_WINDOW, len(form))
            if any(form[start : start + width] in lowered for start in range(len(form) - width + 1)):
                found.append(needle)
                break
    return found


@dataclass
class LeakReport:
    shapes: int = 0
    pairs: int = 0
    leaked_shapes: list[str] = field(default_factory=list)
    leaked_pairs: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"shapes tried / leaked: {self.shapes} / {len(self.leaked_shapes)}; "
            f"shape-context pairs tried / leaked: {self.pairs} / {len(self.leaked_pairs)}"
        )


def leak_report(
    redact_text: Callable[..., str] = redact, redact_value: Callable[..., Any] = redact_obj, seed: int = 13
) -> LeakReport:
    """
    Try every shape in every context once and count what leaks.

    Pass another module's ``redact`` and ``redact_obj`` to measure it, e.g. the redaction of an earlier release.
    """
    report = LeakReport()
    rng = random.Random(seed)
    for shape_ in SHAPES:
        report.shapes += 1
        contexts = CONTEXTS if shape_.make(random.Random(0)).text is not None else CONTEXTS[-1:]
        shape_leaked = False
        for context in contexts:
            report.pairs += 1
            sample = shape_.make(rng)
            output = scrub(placed(sample, context), sample.known, redact_text, redact_value)
            if leaks(output, sample.needles):
                report.leaked_pairs.append(f"{shape_.name} in {context.name}")
                shape_leaked = True
        if shape_leaked:
            report.leaked_shapes.append(shape_.name)
    return report


# ---------------------------------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------------------------------


class TestShapes:
    def test_there_are_at_least_a_hundred_distinct_shapes(self) -> None:
        names = [shape_.name for shape_ in SHAPES]
        assert len(set(names)) == len(names)
        assert len(names) >= 100

    def test_no_shape_leaks_in_any_context(self) -> None:
        report = leak_report()
        print(report)  # the counts, shown with -s
        assert report.leaked_pairs == [], report.leaked_pairs
        assert report.pairs >= 100 * len(CONTEXTS) * 0.9


@dataclass(frozen=True)
class ConnectionLike:
    """What an Airflow ``Connection`` offers to :func:`secrets_of_connection`."""

    password: str | None = None
    login: str | None = None
    conn_type: str = "snowflake"
    extra_dejson: dict[str, Any] = field(default_factory=dict)


@given(
    shape_=st.sampled_from(SHAPES),
    context=st.sampled_from(CONTEXTS),
    rng=st.randoms(use_true_random=False),
)
def test_no_secret_survives_redaction(shape_: Shape, context: Context, rng: random.Random) -> None:
    sample = shape_.make(rng)
    value = placed(sample, context)
    output = scrub(value, sample.known, redact, redact_obj)
    assert leaks(output, sample.needles) == []
    assert REDACTED.strip("*") in output
    if sample.text is not None:
        assert context.kept in output or json.dumps(context.kept)[1:-1] in output


@given(
    shape_=st.sampled_from([shape_ for shape_ in SHAPES if shape_.make(random.Random(0)).text is not None]),
    context=st.sampled_from([context for context in CONTEXTS if context.name != "nested payload"]),
    rng=st.randoms(use_true_random=False),
)
def test_redaction_is_idempotent(shape_: Shape, context: Context, rng: random.Random) -> None:
    sample = shape_.make(rng)
    once = redact(context.wrap(sample.text), extra_secrets=sample.known)
    assert redact(once, extra_secrets=sample.known) == once


# ---------------------------------------------------------------------------------------------------------------
# What must survive
# ---------------------------------------------------------------------------------------------------------------

identifiers = st.from_regex(r"[a-z][a-z0-9_]{2,30}", fullmatch=True).filter(
    lambda name: not name.startswith(("gh", "github_pat_", "glpat", "sk_", "rk_", "dbt_env_secret_"))
)
columns = st.sampled_from(
    [
        "password_reset_at",
        "password_changed",
        "token_count",
        "max_tokens",
        "secret_santa_id",
        "api_key_created_at",
        "credentials_expire_on",
        "private_key_path",
        "is_passphrase_set",
    ]
)
git_shas = st.binary(min_size=20, max_size=20).map(bytes.hex)
fingerprints = st.binary(min_size=32, max_size=32).map(bytes.hex)
uuids = st.uuids().map(str)


@given(table=identifiers, column=columns, other=identifiers, node=identifiers)
def test_sql_and_dbt_names_survive(table: str, column: str, other: str, node: str) -> None:
    text = (
        f"select {column}, {other}, count(*) as n from analytics.{table}\n"
        f"where {column} is not null and {other} = 'x' group by 1, 2\n"
        f"12:01:02  1 of 3 OK created sql table model shop.{node} ... [SUCCESS 1 in 0.5s]\n"
        f"Compilation Error in model.shop.{node}: column {column} not found; test.shop.not_null_{node}_id.5f8a9b2c1d"
    )
    assert redact(text) == text


@given(sha=git_shas, fingerprint=fingerprints, run=uuids, query=uuids)
def test_hex_digests_and_uuids_survive(sha: str, fingerprint: str, run: str, query: str) -> None:
    text = (
        f"dbt project at commit {sha}\nincident fingerprint {fingerprint} (dedup_key={fingerprint})\n"
        f"run {run}, Snowflake query id {query}\nuuid: {run}\nsha256:{fingerprint}"
    )
    assert redact(text) == text
    assert redact_obj({"dedup_key": fingerprint, "git_sha": sha, "run_id": run}) == {
        "dedup_key": fingerprint,
        "git_sha": sha,
        "run_id": run,
    }


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("Incorrect username or password was specified.", id="password-in-prose"),
        pytest.param(
            "update users set password_reset_at = current_timestamp() where id = 7", id="password-column"
        ),
        pytest.param("select token_count from usage where token_count > 10", id="token-column"),
        pytest.param("find /tmp -name '*.sql' -print", id="find-print"),
        pytest.param("select amount -price_delta from orders", id="minus-column"),
        pytest.param("-- password reset flow, see ticket 42\nselect 1", id="sql-comment"),
        pytest.param("Basic authentication failed for user ETL", id="basic-in-prose"),
        pytest.param("http://localhost:8080/api/v2/dags?owner=a@b.com", id="url-port-and-email"),
        pytest.param("private_key_path: /opt/keys/rsa_key.p8", id="key-path"),
        pytest.param("commit 3f786850e387550fdab836ed7e6dc881de23001b", id="git-commit"),
        pytest.param(f"run {uuid.UUID(int=7)}", id="uuid"),
        pytest.param("model.shop.stg_orders depends on source.shop.raw.orders", id="dbt-nodes"),
    ],
)
def test_ordinary_text_survives(text: str) -> None:
    assert redact(text) == text


class TestSecretsOfConnection:
    def test_a_key_pair_connection_gives_its_private_key(self) -> None:
        block = "-----BEGIN PRIVATE KEY-----\nMIIEvQ\n-----END PRIVATE KEY-----"
        connection = ConnectionLike(
            password="pp-phrase",
            extra_dejson={
                "account": "acme",
                "private_key_content": block,
                "private_key_file": "/keys/rsa.p8",
                "extra__snowflake__private_key_passphrase": "pk-pass",
            },
        )
        assert secrets_of_connection(connection) == ["pp-phrase", block, "pk-pass"]

    def test_every_secret_field_of_the_package_connections(self) -> None:
        extras = {
            "token": "t-1",
            "refresh_token": "r-1",
            "client_secret": "c-1",
            "oauth_password": "o-1",
            "webhook_token": "w-1",
            "routing_key": "k-1",
            "aws_secret_access_key": "s-1",
            "aws_session_token": "st-1",
            "session_kwargs": {"aws_access_key_id": "AKIAEXAMPLE"},
            "keyfile_dict": json.dumps({"type": "service_account", "private_key": "pk-1"}),
            "credentials": {"user": "u", "pass": "p-1"},
            "warehouse": "WH",
            "role": "TRANSFORMER",
        }
        found = secrets_of_connection({"password": "pw-1", "extra": json.dumps(extras)})
        assert found == [
            "pw-1",
            "t-1",
            "r-1",
            "c-1",
            "o-1",
            "w-1",
            "k-1",
            "s-1",
            "st-1",
            "AKIAEXAMPLE",
            "pk-1",
            "u",
            "p-1",
        ]

    def test_an_aws_connection_gives_its_access_key_id(self) -> None:
        connection = ConnectionLike(conn_type="aws", login="AKIAEXAMPLE", password="secret-1")
        assert secrets_of_connection(connection) == ["secret-1", "AKIAEXAMPLE"]
        assert secrets_of_connection(ConnectionLike(login="etl", password="pw")) == ["pw"]

    def test_connector_arguments_with_a_der_key(self) -> None:
        params = {"user": "etl", "password": "", "private_key": b"\x30\x82\x01", "account": "acme"}
        assert secrets_of_connection(params) == ["MIIB"]

    def test_an_empty_connection_gives_none(self) -> None:
        assert secrets_of_connection(ConnectionLike()) == []
        assert secrets_of_connection({}) == []
