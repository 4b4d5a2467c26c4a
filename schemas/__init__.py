"""Data contracts of modelstream: Avro schemas, the codec, and the ClickHouse DDL.

Nothing here does network I/O. ``schemas.codec`` turns bytes into validated records and
back (Avro single-object encoding or JSON checked against the same schema), raising a
``schemas.codec.DecodeError`` subclass that says what was expected and what came.
"""
