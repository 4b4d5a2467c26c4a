"""Model artifacts: serialise, digest, verify, load, and split into chunk records.

An artifact is any Python object with River's ``predict_one`` (optionally
``predict_proba_one``) or scikit-learn's ``predict`` (optionally ``predict_proba``),
serialised with cloudpickle or joblib. Its SHA-256 is stored in the metadata and checked
before every load.

Loading an artifact runs code (unpickling can execute anything), so only trusted writers
may write the registry topics; see the package docstring for the ACLs that enforce it.

Examples
--------
>>> data = serialize({"weights": [1, 2]}, "cloudpickle")
>>> verify(data, sha256(data), what="demo v1")
>>> verify(data + b"x", sha256(data), what="demo v1")  # doctest: +ELLIPSIS
Traceback (most recent call last):
services.registry._errors.IntegrityError: artifact of demo v1 does not match its SHA-256 ...
>>> chunks = split(b"abcdefg", 3)
>>> chunks, join(chunks) == b"abcdefg"
([b'abc', b'def', b'g'], True)
"""

from __future__ import annotations

import hashlib
import io
import platform
from importlib import metadata
from typing import Any, Final, Literal, get_args

import cloudpickle

from services.registry._errors import IntegrityError, InvalidModelError

__all__ = [
    "ArtifactFormat",
    "class_labels",
    "deserialize",
    "environment",
    "format_for",
    "guess_task",
    "join",
    "looks_like_joblib",
    "require_predictor",
    "serialize",
    "sha256",
    "split",
    "verify",
]

ArtifactFormat = Literal["cloudpickle", "joblib"]
FORMATS: Final[tuple[str, ...]] = get_args(ArtifactFormat)
_PREDICT: Final = ("predict_one", "predict")
_LIBRARIES: Final = ("cloudpickle", "joblib", "river", "scikit-learn", "numpy", "pandas")


def check_format(fmt: str) -> ArtifactFormat:
    if fmt not in FORMATS:
        raise InvalidModelError(
            f"artifact format {fmt!r} is not supported: use one of {', '.join(FORMATS)}"
        )
    return fmt  # type: ignore[return-value]  # checked against the Literal's values


def serialize(model: object, fmt: str = "cloudpickle") -> bytes:
    """The model object as artifact bytes."""
    if check_format(fmt) == "cloudpickle":
        return bytes(cloudpickle.dumps(model))
    import joblib  # imported on use: it is slow to import and most artifacts are cloudpickle

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def deserialize(data: bytes, fmt: str) -> object:
    """Artifact bytes back to the model object. Runs code: verify the digest first."""
    check_format(fmt)
    try:
        if fmt == "cloudpickle":
            return cloudpickle.loads(data)
        import joblib

        return joblib.load(io.BytesIO(data))
    except Exception as exc:  # unpickling raises anything the pickled code raises
        hint = (
            "it looks like a joblib file: try --format joblib"
            if fmt == "cloudpickle" and looks_like_joblib(data)
            else "check the format, and that the libraries it needs are installed here"
        )
        raise InvalidModelError(
            f"the artifact could not be loaded as {fmt}: {type(exc).__name__}: {exc}; {hint}"
        ) from exc


# compressed joblib files start with their compressor's magic bytes
_COMPRESSED: Final = (b"\x78", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"\x5d\x00\x00")


def looks_like_joblib(data: bytes) -> bool:
    """Whether ``data`` is probably ``joblib.dump`` output rather than a plain pickle:
    joblib writes numpy arrays as ``NumpyArrayWrapper`` records, or compresses.

    >>> looks_like_joblib(serialize([1.0], "cloudpickle"))
    False
    >>> import numpy
    >>> looks_like_joblib(serialize({"w": numpy.ones(3)}, "joblib"))
    True
    """
    return b"NumpyArrayWrapper" in data[:1_000_000] or data.startswith(_COMPRESSED)


def format_for(path_suffix: str) -> ArtifactFormat:
    """The artifact format a file name suggests: ``.joblib`` files are joblib.

    >>> format_for(".joblib"), format_for(".pkl")
    ('joblib', 'cloudpickle')
    """
    return "joblib" if path_suffix.lower() == ".joblib" else "cloudpickle"


def sha256(data: bytes) -> str:
    """64 hex digits."""
    return hashlib.sha256(data).hexdigest()


def verify(data: bytes, expected: str, *, what: str) -> None:
    """Raise :class:`IntegrityError` unless ``data`` has the SHA-256 ``expected``."""
    got = sha256(data)
    if got != expected:
        raise IntegrityError(
            f"artifact of {what} does not match its SHA-256 (expected {expected[:12]}..., "
            f"got {got[:12]}...): the stored bytes were altered or are incomplete. "
            "Do not load it; register the model again"
        )


def require_predictor(model: object) -> object:
    """``model`` itself, when it has River's or scikit-learn's predict method."""
    if not any(callable(getattr(model, method, None)) for method in _PREDICT):
        raise InvalidModelError(
            f"a {type(model).__name__} cannot serve predictions: expected a River model "
            "(predict_one) or a scikit-learn estimator (predict)"
        )
    return model


def guess_task(model: object) -> str | None:
    """``classification`` or ``regression`` when the library says so, else None.

    >>> from sklearn.linear_model import LinearRegression
    >>> from river import linear_model, preprocessing
    >>> guess_task(LinearRegression())
    'regression'
    >>> guess_task(preprocessing.StandardScaler() | linear_model.LogisticRegression())
    'classification'
    >>> guess_task(object()) is None
    True
    """
    for guess in (_sklearn_task, _river_task):
        task = guess(model)
        if task is not None:
            return task
    return None


def _sklearn_task(model: object) -> str | None:
    try:
        from sklearn.base import BaseEstimator, is_classifier, is_regressor
    except ImportError:
        return None
    if not isinstance(model, BaseEstimator):  # is_classifier fails on other objects
        return None
    if is_classifier(model):
        return "classification"
    return "regression" if is_regressor(model) else None


def _river_task(model: object) -> str | None:
    try:
        from river import base
    except ImportError:
        return None
    if isinstance(model, base.Classifier):  # pipelines answer for their last step
        return "classification"
    return "regression" if isinstance(model, base.Regressor) else None


def class_labels(model: object) -> list[str] | None:
    """The class labels as strings when the model exposes them (scikit-learn
    ``classes_``); ``None`` otherwise.

    >>> class Fitted:
    ...     classes_ = [0, 1]
    >>> class_labels(Fitted()), class_labels(object())
    (['0', '1'], None)
    """
    classes: Any = getattr(model, "classes_", None)
    if classes is None:
        return None
    try:
        return [_label(value) for value in classes]
    except TypeError:
        return None


def _label(value: Any) -> str:
    """A class label as text: numpy scalars as Python values, booleans as JSON does."""
    item = getattr(value, "item", None)
    plain = item() if callable(item) else value
    if isinstance(plain, bool):
        return "true" if plain else "false"
    return str(plain)


def split(data: bytes, chunk_size: int) -> list[bytes]:
    """``data`` in pieces of ``chunk_size`` bytes (the last may be shorter; at least one)."""
    if chunk_size < 1:
        raise ValueError(f"expected a chunk size >= 1, got {chunk_size}")
    return [data[start : start + chunk_size] for start in range(0, len(data), chunk_size)] or [b""]


def join(chunks: list[bytes]) -> bytes:
    return b"".join(chunks)


def environment() -> dict[str, str]:
    """Versions of Python and the libraries an artifact usually needs to load."""
    found = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found
