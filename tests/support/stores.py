"""Names the artifact-store fixtures of ``tests/unit/conftest.py`` share with the tests that use them."""

from __future__ import annotations

#: The Airflow connection the S3 stores of the unit tests read their endpoint and credentials from.
S3_CONN_ID = "selfheal_artifacts_s3"
