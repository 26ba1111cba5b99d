r"""
The incident model: one failure of one pipeline run, with its evidence, and its fingerprint.

An :class:`Incident` is what the failure callback records and what the repair DAG, the pages and the audit record
read. It is built by :func:`build_incident`, which redacts every free-text field (see
:mod:`airflow_selfheal.core.redaction`) and truncates it *before* it is stored, so nothing downstream can leak a
secret by forgetting to.

The **fingerprint** is the dedup key for repair runs, pages and notifications: a sha256 over the pipeline, the
failing dbt nodes and the normalised error signature (:func:`compute_fingerprint`). It does not depend on the run
id, the try number, the task id or the time, so a retry or a re-occurrence of the same failure is the same
incident, with the same :attr:`Incident.incident_id`. A failure outside dbt (a drift check that cannot reach the
warehouse) has no failing node, so its fingerprint covers the failed task id instead; the dbt nodes its failure
blocked are kept in :attr:`Incident.blocked_nodes`, for the retry to rebuild.

The **error signature** (:func:`normalize_error_signature`) is the error text as the failure itself wrote it:
the formatting of the channel that carried it (Airflow and Kubernetes log prefixes, dbt's JSON log lines and
timestamps, terminal colours, CRLF, line wraps) taken off, its volatile parts (query ids, UUIDs, timestamps,
durations, temp dirs, addresses, pids, row counts, run ids) replaced by placeholders, lower-cased, from the first
error to the end of what is read, never cut short. SQL ``line`` and ``position`` numbers are kept on purpose:
they point at the failing expression, and a change to the model that moves them is a change worth a new
incident. The fingerprint hashes the whole signature with its whitespace taken out.

.. code-block:: python

    incident = build_incident(
        pipeline="orders_daily",
        run_id="scheduled__2025-01-01T00:00:00+00:00",
        task_id="dbt.stg_orders_run",
        try_number=1,
        nodes=[DbtNodeRef("model.demo.stg_orders", "model", "stg_orders", "models/staging/stg_orders.sql")],
        error="000904 (42000): SQL compilation error: error line 3 at position 4\ninvalid identifier 'EMAIL'",
        failed_at=datetime.now(timezone.utc),
        secrets=[connection.password],
    )
    store(json.dumps(incident.to_dict()))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_selfheal.core.redaction import redact, redact_obj, truncate

ERROR_LIMIT = 20_000
RESULT_MESSAGE_LIMIT = 2_000
# The signature reads only the two ends of a long text, as the triage classifier does (the same window and the
# same marker between the ends): dbt prints the failing node's error last and the connector prints its cause first.
SIGNATURE_WINDOW_CHARS = 20_000
INCIDENT_ID_PREFIX = "inc-"
# The run_results.json keys kept per failing result; the rest (timing, thread, compiled code) is noise or large.
RUN_RESULT_KEYS = ("unique_id", "status", "message", "failures", "execution_time", "adapter_response")

_FINGERPRINT = re.compile(r"[0-9a-f]{64}")


# ---------------------------------------------------------------------------------------------------------------
# Error signature
# ---------------------------------------------------------------------------------------------------------------

# Escapes of a JSON or Python string left in the text: line breaks, quotes, ``\uXXXX`` (a box frame or a colour
# code's escape character, as ``json.dumps`` writes them) and the escape character as Python and shells spell it.
_LITERAL_ESCAPE = re.compile(
    r"\\r\\n|\\[nrt\"']|\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|\\x1[bB]|\\033"
)
_LITERAL_ESCAPES = {"\\r\\n": "\n", "\\n": "\n", "\\r": "\n", "\\t": " ", '\\"': '"', "\\'": "'"}
# pytest's "E" before an empty line or a line indented deeper than the triage's prefix pattern reads.
_PYTEST_PREFIX = re.compile(r"^E(?:[ \t]{1,64}|$)", re.MULTILINE)
# dbt's lines about the whole run, whose counts and versions change with the project, not with the failure.
_DBT_RUN_LINE = re.compile(
    r"^[ \t]{0,16}(?:running with dbt=|registered adapter: |concurrency: |finished running |completed with \d"
    r"|completed successfully|found \d{1,9} (?:models?|seeds?|snapshots?|sources?|data tests?|tests?|analys[ie]s"
    r"|macros?|operations?|exposures?|metrics?|semantic models?|saved quer(?:y|ies)|unit tests?|groups?)\b)"
    r"[^\n]{0,2000}$",
    re.MULTILINE | re.IGNORECASE,
)
# dbt prefixes each log line with the wall-clock time; a line holding only that is a blank line.
_LOG_TIME_PREFIX = re.compile(r"^[ \t]{0,8}\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[ \t]{1,8}|$)", re.MULTILINE)
_WHITESPACE = re.compile(r"\s+")
# Query ids, hashes and long numbers that a wrap split inside a long word (a URL, a path), found again once the
# whitespace is out; with what is left of them beside a placeholder, they become one "<id>".
_SPLIT_VOLATILE: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"(?<![0-9a-f])[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?![0-9a-f])"),
        "<uuid>",
    ),
    (re.compile(r"(?<![0-9a-z])(?=[a-f]{0,127}\d)[0-9a-f]{16,128}(?![0-9a-z])"), "<hex>"),
    (re.compile(r"(?<!\d)\d{10,30}(?!\d)"), "<n>"),
    (
        re.compile(
            r"[0-9a-f-]{0,64}<(?:hex|uuid|n)>(?:[0-9a-f-]{0,64}<(?:hex|uuid|n)>){0,16}[0-9a-f-]{0,64}"
        ),
        "<id>",
    ),
)
# Applied in order to the lower-cased text, its lines joined; each pattern repeats only bounded character classes.
_VOLATILE: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"(?:/private)?/(?:tmp|var/folders/[^\s/]{1,64}/[^\s/]{1,64}/t)/[^\s/'\"(),:;]{1,255}"),
        "<tmp>",
    ),
    (re.compile(r"\bsfqid[=: ]{1,3}[\w-]{1,64}"), "sfqid=<id>"),
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    (
        re.compile(r"\b(?:scheduled|manual|backfill|dataset_triggered|asset_triggered)__[^\s,'\")]{1,128}"),
        "<run_id>",
    ),
    (re.compile(r"\brun_id=[^\s,'\")]{1,250}"), "run_id=<run_id>"),
    (re.compile(r"\btry_number=\d{1,9}"), "try_number=<n>"),
    (re.compile(r"\battempt \d{1,9} of \d{1,9}\b"), "attempt n of n"),
    (re.compile(r"\bjob \d{1,18}\b"), "job <n>"),
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}(?:[t ]\d{2}:\d{2}(?::\d{2})?(?:[.,]\d{1,9})?)?(?:z|[+-]\d{2}:?\d{2}(?!\d))?"
        ),
        "<ts>",
    ),
    (re.compile(r"\b\d{8}t\d{6}(?:\.\d{1,9})?z?"), "<ts>"),
    (re.compile(r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d{1,9})?"), "<time>"),
    (
        re.compile(r"\b\d{1,9}(?:\.\d{1,9})?[ \t]?(?:ms|s|secs?|seconds?|mins?|minutes?|hours?)\b"),
        "<duration>",
    ),
    (re.compile(r"\b0x[0-9a-f]{1,16}\b"), "<addr>"),
    (re.compile(r"\bpid[=: ]{1,2}\d{1,10}\b"), "pid=<n>"),
    # Row counts of a failed test and dbt's tallies change from run to run of one failure.
    (re.compile(r"\bgot \d{1,18} results?\b"), "got n results"),
    (re.compile(r"\b(fail|warn) \d{1,18}\b"), r"\1 n"),
    (re.compile(r"\b(pass|warn|error|skip|no-op|total)=\d{1,9}\b"), r"\1=n"),
    # dbt's progress position ("3 of 12 ERROR ..."), which depends on the threads' order.
    (re.compile(r"\b\d{1,9} of \d{1,9} (?=start|ok|error|fail|pass|warn|skip|success|created)"), "n of n "),
    (re.compile(r"\btruncated \d{1,18} characters\b"), "truncated n characters"),
    (re.compile(r"\b[0-9a-f]{16,128}\b"), "<hex>"),
    (re.compile(r"\b\d{10,30}\b"), "<n>"),
)
# Log prefixes that a wrap moved off the start of a line (as they read once volatile parts are placeholders),
# with dbt's time after them: Airflow 2 and 3, Kubernetes, `kubectl --prefix`, dbt's debug log.
_CARRIED_PREFIX = re.compile(
    r"(?:\[<ts>[^\]]{0,48}\] (?:\{[^{}]{0,160}\} )?[a-z]{4,8} - "
    r"|<ts> (?:stdout|stderr) [fp] "
    r"|\[pod/[^\]]{1,253}\] "
    r"|(?:<time> )?\[(?:debug|info|warn|warning|error)\] \[[^\]]{1,80}\]: )"
    r"(?:<time> )?"
)
# dbt's progress lines, whose order depends on the threads, and its closing tally, as they read once joined (a
# wrap may have split them).
_DBT_CHATTER = re.compile(
    r"\bn of n (?:start|ok|error|fail|pass|warn|skip|success|created)\b[^\[\]]{0,400}\[[^\[\]]{0,80}\]"
    r"|\bdone\. pass=n(?: (?:warn|error|skip|no-op|total)=n){0,6}"
)
_SPECIFIC_ERROR = re.compile(
    r"\b\d{6} \(\w{5}\)"
    r"|\b(?:binder|catalog|parser|conversion|constraint|dependency|compilation|database|runtime|parsing"
    r"|internal|programming|operational|integrity|data|invalid input|out of range|not implemented) error\b"
    r"|\bsql compilation error\b|\b(?:failure|warning) in test\b|\bgot n results\b"
)
_ANY_ERROR = re.compile(r"error|exception|fail")


def normalize_error_signature(error: str) -> str:
    r"""
    Reduce an error text to the part that identifies the failure, however it was carried and whenever it ran.

    Only the first and last :data:`SIGNATURE_WINDOW_CHARS` characters are read, as the triage classifier reads
    them. Then, in order:

    * the capture channel's formatting goes: CRLF and lone CR line ends, terminal escapes and control
      characters, and everything :func:`airflow_selfheal.core.triage.noise.normalise` removes (Airflow 2 and
      3 task-log prefixes, Kubernetes prefixes, dbt debug-log prefixes, pytest's ``E``, JSON log lines,
      colour codes whose escape was lost, literal ``\n`` escapes, CLI box characters), then the escaped line
      breaks still left and dbt's ``10:11:12`` line prefixes;
    * the lines are joined and each whitespace run becomes one space, so a message wrapped at any width reads
      the same; the text is lower-cased;
    * volatile parts become placeholders: temp dirs (``/tmp/tmpab12cd/x.sql`` to ``<tmp>/x.sql``), Snowflake
      query ids and other UUIDs, ``sfqid``, Airflow run ids, try numbers, job ids, timestamps, dates, times,
      durations (``in 3.21s``), ``0x`` addresses, pids, a test's row count (``Got 3 results``, ``FAIL 3``),
      dbt's tallies (``PASS=2 ... TOTAL=3``) and progress position (``3 of 12``), truncation counts, long hex
      strings and long numbers.

    Kept on purpose, because they are the same on every run of one failure and tell failures apart: SQL
    ``line``/``position`` numbers (they point at the failing expression; editing the model moves them, which
    is worth a new incident) and a traceback's ``line`` numbers (they change only with the code). The logger's
    own source line (``{subprocess.py:93}``) goes with the log prefix.

    The signature starts at the first specific error (a Snowflake code such as ``000904 (42000)``, ``Binder
    Error``, ``Database Error``, ``Failure in test``...), else at the word holding the first mention of an
    error, exception or failure, else at the start; and it runs to the end of the text read. Nothing is cut
    off: a detail after a blank line, or the end of a header longer than any limit, still tells two failures
    apart. Whitespace does not count in the fingerprint (:func:`compute_fingerprint`), so a line wrapped
    inside a word is the same failure too.

    .. code-block:: python

        normalize_error_signature("10:11:12  Database Error in model stg_orders (models/stg_orders.sql)\n"
                                  "  000904 (42000): SQL compilation error: error line 3 at position 4\n"
                                  "  invalid identifier 'EMAIL'")
        # "database error in model stg_orders (models/stg_orders.sql) 000904 (42000): sql compilation
        #  error: error line 3 at position 4 invalid identifier 'email'"

    :param error: the error text, redacted.
    :return: the lower-cased signature on one line; empty for a text without words.
    """
    # Imported here: the triage package is not needed to parse a DAG that imports this module.
    from airflow_selfheal.core.triage.noise import decolour, normalise

    if len(error) > 2 * SIGNATURE_WINDOW_CHARS:
        error = error[:SIGNATURE_WINDOW_CHARS] + "\n...\n" + error[-SIGNATURE_WINDOW_CHARS:]
    text, _ = normalise(decolour(error.replace("\r\n", "\n").replace("\r", "\n")))
    # Once more: a JSON log line's message or an escaped string decoded only now.
    text = _LITERAL_ESCAPE.sub(_unescaped, text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # Its escape characters are alone by now (the colour code went first): drop them, not the letter after.
    text = decolour(text)
    text = _DBT_RUN_LINE.sub("", _LOG_TIME_PREFIX.sub("", _PYTEST_PREFIX.sub("", text)))
    text = _WHITESPACE.sub(" ", text).lower()
    for pattern, placeholder in _VOLATILE:
        text = pattern.sub(placeholder, text)
    text = _CARRIED_PREFIX.sub("", text)
    found = _SPECIFIC_ERROR.search(text)
    if found is not None:
        start = found.start()
    elif (found := _ANY_ERROR.search(text)) is not None:
        # From the start of the word: "AirflowException: x" and "ValueError: x" stay apart.
        start = text.rfind(" ", 0, found.start()) + 1
    else:
        start = 0
    # The chatter is dropped after the start only: a progress line can be the one error line there is.
    signature = _DBT_CHATTER.sub(lambda chatter: "" if chatter.start() else chatter.group(), text[start:])
    return _WHITESPACE.sub(" ", signature).strip()


def _unescaped(found: re.Match[str]) -> str:
    escape = found.group()
    if escape in _LITERAL_ESCAPES:
        return _LITERAL_ESCAPES[escape]
    if not escape.startswith("\\u"):
        return ""  # the terminal's escape character
    if len(escape) == 12:  # a surrogate pair: one character beyond the BMP
        high, low = int(escape[2:6], 16), int(escape[8:], 16)
        return chr(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    code = int(escape[2:], 16)
    return escape if 0xD800 <= code < 0xE000 else chr(code)


def compute_fingerprint(
    pipeline: str, node_ids: Iterable[str], error_signature: str, failed_task: str | None = None
) -> str:
    """
    The dedup key of a failure: sha256 over ``[pipeline, sorted unique node ids, error_signature]``.

    The three are serialised as a compact JSON array (``ensure_ascii=False``, no spaces) and hashed as UTF-8,
    with every whitespace character taken out of the signature: a message a terminal wrapped inside a word, or
    after a hyphen, is the same failure. The whole signature is hashed, however long.
    Run id, try number and time are deliberately left out. So is the task id of a dbt failure (the node names
    it); a failure outside dbt names no node, so its task is appended (``failed_task``) and another task failing
    with the same error is another incident.

    :param pipeline: the pipeline's DAG id.
    :param node_ids: the failing dbt nodes' unique ids, in any order, duplicates allowed.
    :param error_signature: from :func:`normalize_error_signature`.
    :param failed_task: the failed task's id, for a failure outside dbt; None for a dbt node's failure.
    :return: 64 lower-case hex characters.
    """
    parts: list[Any] = [pipeline, sorted(set(node_ids)), signature_key(error_signature)]
    if failed_task is not None:
        parts.append({"task": failed_task})
    canonical = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    # "surrogatepass": a text decoded with surrogateescape (undecodable bytes of a log) still hashes.
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def signature_key(error_signature: str) -> str:
    """
    What of a signature is compared: the signature without whitespace.

    A wrap inside a long word (a URL, a path) leaves a space in it; once the whitespace is out, a query id or a
    hash it split is a placeholder again.

    :param error_signature: from :func:`normalize_error_signature`.
    :return: the signature with every whitespace character removed and split UUIDs and hashes replaced.
    """
    key = _WHITESPACE.sub("", error_signature)
    for pattern, placeholder in _SPLIT_VOLATILE:
        key = pattern.sub(placeholder, key)
    return key


def incident_id_for(fingerprint: str) -> str:
    """
    The incident id for a fingerprint: ``inc-`` and its first 16 hex characters.

    :param fingerprint: from :func:`compute_fingerprint`.
    :return: e.g. ``inc-3f2a9c0d4e5b6a71``.
    """
    return INCIDENT_ID_PREFIX + fingerprint[:16]


# ---------------------------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DbtNodeRef:
    """
    A failing dbt node and its neighbours in the graph.

    .. code-block:: python

        node = DbtNodeRef(
            unique_id="model.demo.stg_orders",
            resource_type="model",
            name="stg_orders",
            original_file_path="models/staging/stg_orders.sql",
            upstream=("source.demo.raw.orders",),
            downstream=("model.demo.orders_daily",),
        )

    :param unique_id: the manifest's unique id, e.g. ``model.demo.stg_orders``.
    :param resource_type: ``model``, ``test``, ``seed``, ``snapshot`` or ``source``.
    :param name: the node's name.
    :param original_file_path: the node's file relative to the dbt project, when known.
    :param upstream: unique ids of the nodes it depends on.
    :param downstream: unique ids of the nodes that depend on it.
    """

    unique_id: str
    resource_type: str
    name: str
    original_file_path: str | None = None
    upstream: tuple[str, ...] = ()
    downstream: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "upstream", tuple(self.upstream))
        object.__setattr__(self, "downstream", tuple(self.downstream))

    def to_dict(self) -> dict[str, Any]:
        """
        Serialise to a JSON-compatible dict.

        :return: every field; the tuples become lists.
        """
        return {
            "unique_id": self.unique_id,
            "resource_type": self.resource_type,
            "name": self.name,
            "original_file_path": self.original_file_path,
            "upstream": list(self.upstream),
            "downstream": list(self.downstream),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DbtNodeRef:
        """
        Rebuild a node from :meth:`to_dict` output.

        :param data: the dict.
        :return: the node.
        :raises ValueError: naming the field that is missing or has the wrong type.
        """
        reader = _Reader(data, "node")
        return cls(
            unique_id=reader.text("unique_id"),
            resource_type=reader.text("resource_type"),
            name=reader.text("name"),
            original_file_path=reader.optional_text("original_file_path"),
            upstream=reader.texts("upstream", default=()),
            downstream=reader.texts("downstream", default=()),
        )


@dataclass(frozen=True)
class Incident:
    """
    One failure of one pipeline run, with its evidence; built by :func:`build_incident`.

    Free-text fields are already redacted and truncated. ``to_dict`` output is plain JSON, and
    ``Incident.from_dict(json.loads(json.dumps(incident.to_dict()))) == incident``.

    .. code-block:: python

        incident = Incident.from_dict(json.loads(path.read_text()))
        incident = incident.with_triage(classify(incident.error).to_dict())
        path.write_text(json.dumps(incident.to_dict(), indent=2))

    :param incident_id: ``inc-`` and the first 16 hex characters of the fingerprint; a re-occurrence of the same
        failure is the same incident.
    :param fingerprint: 64-hex sha256 from :func:`compute_fingerprint`.
    :param pipeline: the pipeline's DAG id.
    :param run_id: the failed DAG run, when known.
    :param task_id: the failed task, when known.
    :param map_index: the task's map index, ``-1`` when it is not mapped.
    :param try_number: the failed try, when known.
    :param nodes: the failing dbt nodes, usually one.
    :param error: the error text, redacted and truncated.
    :param error_signature: from :func:`normalize_error_signature`.
    :param compiled_sql: the failing node's compiled SQL, redacted and truncated, when collected.
    :param run_results_excerpt: per failing result of ``run_results.json``: ``unique_id``, ``status``,
        ``message``, ``failures``, ``execution_time`` and ``adapter_response``, redacted.
    :param failed_at: ISO-8601 UTC time of the failure.
    :param git_sha: the dbt project's commit, when known.
    :param environment: the environment name, e.g. ``prod``.
    :param triage: the triage module's ``Triage.to_dict()``, once classified.
    :param missing: notes on evidence that could not be collected, e.g. ``run_results.json missing``.
    :param freshness: for a failed ``dbt source freshness``, the source's facts (:func:`freshness_facts`).
    :param blocked_nodes: for a failure outside dbt (``nodes`` empty), the dbt nodes of the tasks downstream of
        the failed task, which its failure kept from running; empty otherwise and in records of 0.1.0.
    """

    incident_id: str
    fingerprint: str
    pipeline: str
    run_id: str | None
    task_id: str | None
    map_index: int
    try_number: int | None
    nodes: tuple[DbtNodeRef, ...]
    error: str
    error_signature: str
    compiled_sql: str | None
    run_results_excerpt: tuple[Mapping[str, Any], ...]
    failed_at: str
    git_sha: str | None
    environment: str
    triage: Mapping[str, Any] | None = None
    missing: tuple[str, ...] = ()
    freshness: Mapping[str, Any] | None = None
    blocked_nodes: tuple[DbtNodeRef, ...] = ()

    def __post_init__(self) -> None:
        if not _FINGERPRINT.fullmatch(self.fingerprint):
            raise ValueError(f"fingerprint must be 64 lower-case hex characters, got {self.fingerprint!r}")
        if self.incident_id != incident_id_for(self.fingerprint):
            raise ValueError(
                f"incident_id must be {incident_id_for(self.fingerprint)!r} for this fingerprint, "
                f"got {self.incident_id!r}"
            )
        # Plain JSON values inside, so the JSON round trip is exact and callers cannot mutate a stored incident.
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "blocked_nodes", tuple(self.blocked_nodes))
        object.__setattr__(
            self, "run_results_excerpt", tuple(_plain_json(item) for item in self.run_results_excerpt)
        )
        object.__setattr__(self, "triage", None if self.triage is None else _plain_json(self.triage))
        object.__setattr__(self, "missing", tuple(self.missing))
        object.__setattr__(self, "freshness", None if self.freshness is None else _plain_json(self.freshness))

    def __hash__(self) -> int:
        # The mappings are unhashable; equal incidents share these fields, so the hash stays consistent.
        return hash((self.incident_id, self.run_id, self.task_id, self.map_index, self.try_number))

    def to_dict(self) -> dict[str, Any]:
        """
        Serialise to a JSON-compatible dict.

        :return: every field; tuples become lists and mappings plain dicts (copies).
        """
        return {
            "incident_id": self.incident_id,
            "fingerprint": self.fingerprint,
            "pipeline": self.pipeline,
            "run_id": self.run_id,
            "task_id": self.task_id,
            "map_index": self.map_index,
            "try_number": self.try_number,
            "nodes": [node.to_dict() for node in self.nodes],
            "error": self.error,
            "error_signature": self.error_signature,
            "compiled_sql": self.compiled_sql,
            "run_results_excerpt": [_plain_json(item) for item in self.run_results_excerpt],
            "failed_at": self.failed_at,
            "git_sha": self.git_sha,
            "environment": self.environment,
            "triage": None if self.triage is None else _plain_json(self.triage),
            "missing": list(self.missing),
            "freshness": None if self.freshness is None else _plain_json(self.freshness),
            "blocked_nodes": [node.to_dict() for node in self.blocked_nodes],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Incident:
        """
        Rebuild an incident from :meth:`to_dict` output, checking every field.

        ``triage``, ``missing``, ``freshness`` and ``blocked_nodes`` may be absent (None, empty, None, empty:
        records of 0.1.0 have none of them); every other field is required.

        :param data: the dict, e.g. ``json.loads`` of a stored incident.
        :return: the incident.
        :raises ValueError: naming the field that is missing or invalid.
        """
        reader = _Reader(data, "incident")
        fingerprint = reader.text("fingerprint")
        if not _FINGERPRINT.fullmatch(fingerprint):
            raise reader.invalid("fingerprint", "64 lower-case hex characters", fingerprint)
        incident_id = reader.text("incident_id")
        if incident_id != incident_id_for(fingerprint):
            raise reader.invalid(
                "incident_id", f"{incident_id_for(fingerprint)!r} (from the fingerprint)", incident_id
            )
        pipeline = reader.text("pipeline")
        if not pipeline:
            raise reader.invalid("pipeline", "a non-empty DAG id", pipeline)
        failed_at = reader.text("failed_at")
        if not _is_utc_iso(failed_at):
            raise reader.invalid("failed_at", "an ISO-8601 UTC time", failed_at)
        nodes = _node_refs(reader, "nodes")
        blocked = _node_refs(reader, "blocked_nodes") if data.get("blocked_nodes") is not None else ()
        triage = reader.optional("triage", Mapping, "an object or null")
        return cls(
            incident_id=incident_id,
            fingerprint=fingerprint,
            pipeline=pipeline,
            run_id=reader.optional_text("run_id"),
            task_id=reader.optional_text("task_id"),
            map_index=reader.integer("map_index"),
            try_number=reader.optional_integer("try_number"),
            nodes=tuple(nodes),
            error=reader.text("error"),
            error_signature=reader.text("error_signature"),
            compiled_sql=reader.optional_text("compiled_sql"),
            run_results_excerpt=reader.items("run_results_excerpt"),
            failed_at=failed_at,
            git_sha=reader.optional_text("git_sha"),
            environment=reader.text("environment"),
            triage=triage,
            missing=reader.texts("missing", default=()),
            freshness=reader.optional("freshness", Mapping, "an object or null"),
            blocked_nodes=blocked,
        )

    def with_triage(self, triage: Mapping[str, Any]) -> Incident:
        """
        A copy of this incident with its triage set.

        :param triage: the triage module's ``Triage.to_dict()``; stored as a plain-JSON copy.
        :return: the new incident; this one is unchanged.
        """
        if not isinstance(triage, Mapping):
            raise ValueError(f"triage must be a mapping (Triage.to_dict()), got {type(triage).__name__}")
        return dataclasses.replace(self, triage=triage)


def build_incident(
    *,
    pipeline: str,
    run_id: str | None,
    task_id: str | None,
    map_index: int = -1,
    try_number: int | None,
    nodes: Iterable[DbtNodeRef],
    error: str,
    compiled_sql: str | None = None,
    run_results_excerpt: Iterable[Mapping[str, Any]] = (),
    failed_at: datetime,
    git_sha: str | None = None,
    environment: str = "dev",
    missing: Iterable[str] = (),
    secrets: Iterable[str] = (),
    error_limit: int = ERROR_LIMIT,
    freshness: Mapping[str, Any] | None = None,
    blocked_nodes: Iterable[DbtNodeRef] = (),
) -> Incident:
    """
    Build an incident from what the failure callback collected; redaction and truncation happen here.

    The error and compiled SQL are redacted (with ``secrets`` as exact values to remove), then truncated to
    ``error_limit`` characters keeping head and tail. Each run result keeps only :data:`RUN_RESULT_KEYS`, is
    redacted and has its message truncated to :data:`RESULT_MESSAGE_LIMIT`. The signature is computed from the
    stored error, so ``normalize_error_signature(incident.error) == incident.error_signature``.

    :param pipeline: the pipeline's DAG id.
    :param run_id: the failed DAG run, when known.
    :param task_id: the failed task, when known.
    :param map_index: the task's map index, ``-1`` when it is not mapped.
    :param try_number: the failed try, when known.
    :param nodes: the failing dbt nodes.
    :param error: the error text or log, unredacted.
    :param compiled_sql: the failing node's compiled SQL, unredacted, when collected.
    :param run_results_excerpt: the failing results of ``run_results.json``.
    :param failed_at: the failure time; a naive datetime is taken as UTC.
    :param git_sha: the dbt project's commit, when known.
    :param environment: the environment name.
    :param missing: notes on evidence that could not be collected.
    :param secrets: exact secret values to remove wherever they occur, e.g. the connection password.
    :param error_limit: the maximum length of the stored error and compiled SQL.
    :param freshness: for a failed ``dbt source freshness``, the source's facts from ``sources.json``
        (:func:`freshness_facts`).
    :param blocked_nodes: for a failure outside dbt (no ``nodes``), the dbt nodes downstream of the failed task;
        the fingerprint then covers ``task_id`` instead of nodes.
    :return: the incident.
    """
    if not isinstance(pipeline, str) or not pipeline:
        raise ValueError("pipeline must be a non-empty DAG id")
    known = tuple(secret for secret in secrets if secret)
    stored_error = truncate(redact(error, extra_secrets=known), error_limit)
    stored_sql = (
        None if compiled_sql is None else truncate(redact(compiled_sql, extra_secrets=known), error_limit)
    )
    excerpt = tuple(_run_result(result, known) for result in run_results_excerpt)
    node_refs = tuple(nodes)
    blocked = tuple(dict.fromkeys(blocked_nodes)) if not node_refs else ()
    signature = normalize_error_signature(stored_error)
    fingerprint = compute_fingerprint(
        pipeline,
        (node.unique_id for node in node_refs),
        signature,
        failed_task=None if node_refs else (task_id or ""),
    )
    if failed_at.tzinfo is None:
        failed_at = failed_at.replace(tzinfo=timezone.utc)
    return Incident(
        incident_id=incident_id_for(fingerprint),
        fingerprint=fingerprint,
        pipeline=pipeline,
        run_id=run_id,
        task_id=task_id,
        map_index=map_index,
        try_number=try_number,
        nodes=node_refs,
        error=stored_error,
        error_signature=signature,
        compiled_sql=stored_sql,
        run_results_excerpt=excerpt,
        failed_at=failed_at.astimezone(timezone.utc).isoformat(),
        git_sha=git_sha,
        environment=environment,
        missing=tuple(str(note) for note in missing),
        freshness=None if freshness is None else redact_obj(dict(freshness), extra_secrets=known),
        blocked_nodes=blocked,
    )


def freshness_facts(sources_json: Mapping[str, Any], unique_id: str | None = None) -> dict[str, Any] | None:
    """
    What on-call needs to know about a failed source freshness check, from dbt's ``sources.json``.

    :param sources_json: the parsed ``target/sources.json`` of ``dbt source freshness``.
    :param unique_id: the source to report; default the first that did not pass.
    :return: ``unique_id``, ``status``, ``loaded_at_field``, ``max_loaded_at``, ``snapshotted_at``, ``age``
        (e.g. ``"3 days, 2:00:00 (266400 s)"``), ``threshold`` (e.g. ``"error after 24 hour"``) and ``error``
        where dbt gave them; None when no result matches.
    """
    results = [item for item in sources_json.get("results") or () if isinstance(item, Mapping)]
    chosen = next((item for item in results if unique_id and item.get("unique_id") == unique_id), None)
    if chosen is None:
        chosen = next((item for item in results if item.get("status") not in ("pass", "success")), None)
    if chosen is None:
        return None
    facts: dict[str, Any] = {"unique_id": chosen.get("unique_id"), "status": chosen.get("status")}
    criteria = chosen.get("criteria") or {}
    facts["loaded_at_field"] = criteria.get("loaded_at_field") or chosen.get("loaded_at_field")
    facts["max_loaded_at"] = chosen.get("max_loaded_at")
    facts["snapshotted_at"] = chosen.get("snapshotted_at")
    age = chosen.get("max_loaded_at_time_ago_in_s")
    if isinstance(age, (int, float)):
        facts["age"] = f"{timedelta(seconds=round(age))} ({round(age)} s)"
    thresholds = []
    for level in ("error_after", "warn_after"):
        rule = criteria.get(level) or {}
        if rule.get("count") is not None and rule.get("period"):
            thresholds.append(f"{level.replace('_', ' ')} {rule['count']} {rule['period']}")
    facts["threshold"] = "; ".join(thresholds) or None
    facts["error"] = chosen.get("error") or chosen.get("message")
    return {key: value for key, value in facts.items() if value not in (None, "")}


# ---------------------------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------------------------


def _node_refs(reader: _Reader, name: str) -> tuple[DbtNodeRef, ...]:
    nodes = []
    for index, item in enumerate(reader.items(name)):
        try:
            nodes.append(DbtNodeRef.from_dict(item))
        except ValueError as exc:
            raise ValueError(f"invalid incident field '{name}[{index}]': {exc}") from None
    return tuple(nodes)


def _run_result(result: Mapping[str, Any], secrets: tuple[str, ...]) -> dict[str, Any]:
    kept = {key: result[key] for key in RUN_RESULT_KEYS if key in result}
    if isinstance(kept.get("message"), str):
        kept["message"] = truncate(redact(kept["message"], extra_secrets=secrets), RESULT_MESSAGE_LIMIT)
    redacted: dict[str, Any] = redact_obj(kept, extra_secrets=secrets)
    return redacted


def _plain_json(value: Any) -> Any:
    """A deep copy made only of dict, list, str, int, float, bool and None, as ``json.loads`` would return."""
    if isinstance(value, Mapping):
        return {str(key): _plain_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_json(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _is_utc_iso(value: str) -> bool:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    offset = parsed.utcoffset()
    return offset is not None and not offset


class _Reader:
    """Typed access to a JSON object that names the offending field in every error."""

    def __init__(self, data: Any, what: str) -> None:
        if not isinstance(data, Mapping):
            raise ValueError(f"{what} must be a JSON object, got {type(data).__name__}")
        self.data = data
        self.what = what

    def invalid(self, name: str, expected: str, value: Any) -> ValueError:
        return ValueError(f"invalid {self.what} field {name!r}: expected {expected}, got {value!r:.80}")

    def required(self, name: str) -> Any:
        if name not in self.data:
            raise ValueError(f"{self.what} field {name!r} is missing")
        return self.data[name]

    def optional(self, name: str, kind: type | tuple[type, ...], expected: str) -> Any:
        value = self.data.get(name)
        if value is not None and not isinstance(value, kind):
            raise self.invalid(name, expected, value)
        return value

    def text(self, name: str) -> str:
        value = self.required(name)
        if not isinstance(value, str):
            raise self.invalid(name, "a string", value)
        return value

    def optional_text(self, name: str) -> str | None:
        value = self.required(name)
        if value is not None and not isinstance(value, str):
            raise self.invalid(name, "a string or null", value)
        return value

    def integer(self, name: str) -> int:
        value = self.required(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise self.invalid(name, "an integer", value)

    def optional_integer(self, name: str) -> int | None:
        if self.required(name) is None:
            return None
        return self.integer(name)

    def texts(self, name: str, *, default: tuple[str, ...] | None = None) -> tuple[str, ...]:
        if name not in self.data and default is not None:
            return default
        value = self.required(name)
        if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
            raise self.invalid(name, "a list of strings", value)
        return tuple(value)

    def items(self, name: str) -> tuple[Mapping[str, Any], ...]:
        value = self.required(name)
        if not isinstance(value, (list, tuple)) or not all(isinstance(item, Mapping) for item in value):
            raise self.invalid(name, "a list of objects", value)
        return tuple(value)
