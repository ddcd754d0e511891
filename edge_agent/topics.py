"""MQTT topic segments that come from configuration or devices must not change the topic tree."""

from __future__ import annotations

__all__ = ["TopicError", "check_segment", "check_topic_prefix"]

_FORBIDDEN = {"+": "'+'", "#": "'#'", "/": "'/'", "\x00": "NUL"}


class TopicError(ValueError):
    pass


def check_segment(value: str, what: str = "topic segment") -> str:
    """A single topic level: not empty, no wildcard, separator or NUL."""
    if not value:
        raise TopicError(f"{what} must not be empty")
    for char, name in _FORBIDDEN.items():
        if char in value:
            raise TopicError(f"{what} {value!r} must not contain {name} (it is used in MQTT topics)")
    if len(value.encode()) > 256:
        raise TopicError(f"{what} {value!r} is longer than 256 bytes")
    return value


def check_topic_prefix(prefix: str) -> str:
    """A prefix of several levels: each level checked, no leading or trailing '/'."""
    if not prefix:
        raise TopicError("topic_prefix must not be empty")
    for level in prefix.split("/"):
        if not level:
            raise TopicError(f"topic_prefix {prefix!r} has an empty level (leading, trailing or double '/')")
        for char, name in _FORBIDDEN.items():
            if char != "/" and char in level:
                raise TopicError(f"topic_prefix {prefix!r} must not contain {name}")
    return prefix
