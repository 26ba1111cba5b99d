"""Type spellings, families and widening."""

from __future__ import annotations

import pytest

from airflow_selfheal.core.drift import is_widening, normalize_type, type_family


class TestNormalizeType:
    @pytest.mark.parametrize(
        ("data_type", "expected"),
        [
            pytest.param("NUMBER(38,0)", "NUMBER(38,0)", id="number-38-0"),
            pytest.param("INT", "NUMBER(38,0)", id="int"),
            pytest.param("INTEGER", "NUMBER(38,0)", id="integer"),
            pytest.param("BIGINT", "NUMBER(38,0)", id="bigint"),
            pytest.param("SMALLINT", "NUMBER(38,0)", id="smallint"),
            pytest.param("TINYINT", "NUMBER(38,0)", id="tinyint"),
            pytest.param("BYTEINT", "NUMBER(38,0)", id="byteint"),
            pytest.param("DECIMAL(38,0)", "NUMBER(38,0)", id="decimal-38-0"),
            pytest.param("NUMERIC(38,0)", "NUMBER(38,0)", id="numeric-38-0"),
            pytest.param("NUMBER", "NUMBER(38,0)", id="bare-number"),
            pytest.param("DECIMAL(10,2)", "NUMBER(10,2)", id="decimal-p-s"),
            pytest.param("numeric( 12 , 4 )", "NUMBER(12,4)", id="numeric-spaced-lower"),
            pytest.param("NUMBER(10)", "NUMBER(10,0)", id="number-precision-only"),
            pytest.param("TEXT", "VARCHAR", id="text"),
            pytest.param("STRING", "VARCHAR", id="string"),
            pytest.param("VARCHAR", "VARCHAR", id="varchar"),
            pytest.param("CHAR VARYING", "VARCHAR", id="char-varying"),
            pytest.param("NVARCHAR", "VARCHAR", id="nvarchar"),
            pytest.param("VARCHAR(16777216)", "VARCHAR", id="varchar-max"),
            pytest.param("varchar(50)", "VARCHAR(50)", id="varchar-explicit-length"),
            pytest.param("CHAR", "VARCHAR(1)", id="char"),
            pytest.param("CHARACTER", "VARCHAR(1)", id="character"),
            pytest.param("FLOAT", "FLOAT", id="float"),
            pytest.param("FLOAT4", "FLOAT", id="float4"),
            pytest.param("FLOAT8", "FLOAT", id="float8"),
            pytest.param("DOUBLE", "FLOAT", id="double"),
            pytest.param("double   precision", "FLOAT", id="double-precision-spaces"),
            pytest.param("REAL", "FLOAT", id="real"),
            pytest.param("DATETIME", "TIMESTAMP_NTZ", id="datetime"),
            pytest.param("TIMESTAMP", "TIMESTAMP_NTZ", id="timestamp"),
            pytest.param("TIMESTAMP_NTZ", "TIMESTAMP_NTZ", id="timestamp-ntz"),
            pytest.param("TIMESTAMP_NTZ(9)", "TIMESTAMP_NTZ", id="timestamp-ntz-default-precision"),
            pytest.param("TIMESTAMP_NTZ(3)", "TIMESTAMP_NTZ(3)", id="timestamp-ntz-other-precision"),
            pytest.param("timestamp without time zone", "TIMESTAMP_NTZ", id="timestamp-without-tz"),
            pytest.param("TIMESTAMP_TZ", "TIMESTAMP_TZ", id="timestamp-tz"),
            pytest.param("TIMESTAMP WITH TIME ZONE", "TIMESTAMP_TZ", id="timestamp-with-tz"),
            pytest.param("TIMESTAMP_LTZ(9)", "TIMESTAMP_LTZ", id="timestamp-ltz"),
            pytest.param("BOOLEAN", "BOOLEAN", id="boolean"),
            pytest.param("bool", "BOOLEAN", id="bool"),
            pytest.param("DATE", "DATE", id="date"),
            pytest.param("BINARY", "BINARY", id="binary"),
            pytest.param("VARBINARY", "BINARY", id="varbinary"),
            pytest.param("VARIANT", "VARIANT", id="variant"),
            pytest.param("object", "OBJECT", id="object"),
            pytest.param("ARRAY", "ARRAY", id="array"),
            pytest.param("  geography ", "GEOGRAPHY", id="unknown-upper-cased"),
            pytest.param("ARRAY(NUMBER(38,0))", "ARRAY(NUMBER(38,0))", id="unknown-structured-passthrough"),
        ],
    )
    def test_canonical_spelling(self, data_type: str, expected: str) -> None:
        assert normalize_type(data_type) == expected

    @pytest.mark.parametrize(
        ("left", "right"),
        [
            pytest.param("NUMBER(10,2)", "NUMBER(12,2)", id="precision"),
            pytest.param("VARCHAR(50)", "VARCHAR", id="length"),
            pytest.param("TIMESTAMP_NTZ", "TIMESTAMP_TZ", id="time-zone"),
            pytest.param("NUMBER(38,0)", "FLOAT", id="number-vs-float"),
        ],
    )
    def test_real_differences_stay_different(self, left: str, right: str) -> None:
        assert normalize_type(left) != normalize_type(right)


class TestTypeFamily:
    @pytest.mark.parametrize(
        ("data_type", "family"),
        [
            pytest.param("VARCHAR(16)", "VARCHAR", id="varchar-n"),
            pytest.param("TEXT", "VARCHAR", id="text"),
            pytest.param("CHAR(3)", "VARCHAR", id="char"),
            pytest.param("NUMBER(10,2)", "NUMBER", id="number-p-s"),
            pytest.param("INT", "NUMBER", id="int"),
            pytest.param("TIMESTAMP_NTZ(3)", "TIMESTAMP_NTZ", id="timestamp-precision"),
            pytest.param("FLOAT", "FLOAT", id="float"),
            pytest.param("VARIANT", "VARIANT", id="unknown-passes"),
        ],
    )
    def test_family(self, data_type: str, family: str) -> None:
        assert type_family(data_type) == family


class TestWidening:
    @pytest.mark.parametrize(
        ("old_type", "new_type", "widening"),
        [
            pytest.param("VARCHAR(16)", "TEXT", True, id="varchar-to-unbounded"),
            pytest.param("TEXT(16)", "VARCHAR(255)", True, id="varchar-longer"),
            pytest.param("VARCHAR(16)", "VARCHAR(16)", True, id="same-length"),
            pytest.param("VARCHAR", "VARCHAR(16)", False, id="narrowed-from-unbounded"),
            pytest.param("VARCHAR(255)", "VARCHAR(16)", False, id="narrowed"),
            pytest.param("NUMBER(10,0)", "NUMBER(38,0)", True, id="number-more-precision"),
            pytest.param("NUMBER(10,2)", "NUMBER(12,2)", True, id="number-same-scale"),
            pytest.param("NUMBER(10,2)", "NUMBER(12,4)", False, id="number-scale-changed"),
            pytest.param("NUMBER(12,0)", "NUMBER(10,0)", False, id="number-narrowed"),
            pytest.param("NUMBER(10,0)", "TEXT", False, id="family-changed"),
            pytest.param("BINARY(16)", "BINARY", True, id="binary-unbounded"),
            pytest.param("DATE", "TIMESTAMP_NTZ", False, id="date-to-timestamp"),
        ],
    )
    def test_is_widening(self, old_type: str, new_type: str, widening: bool) -> None:
        assert is_widening(old_type, new_type) is widening
