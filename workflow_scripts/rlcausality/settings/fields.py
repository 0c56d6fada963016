"""How a setting is declared, and what is derived from a declaration.

``setting(...)`` declares one key of a block (its recipe value, JSON-schema constraints and
flags); ``Block`` is the frozen dataclass every block of ``rlcausality.settings.blocks`` derives
from (``from_dict`` with the recipe's values filled in, ``to_dict``, ``of``); ``block_schema``
and ``field_schema`` give a block's JSON schema; ``flagged`` the keys declared with a flag.
A missing required key or an unknown key is a ``ConfigError`` naming it.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Literal, Self


class ConfigError(ValueError):
    """One or more problems in the configuration; ``problems`` lists them one per line."""

    def __init__(self, problems: Iterable[str], source: str = "config.yaml") -> None:
        self.problems = list(problems)
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{source}: {len(self.problems)} problem(s):\n{lines}")


def key_path(where: str, name: str) -> str:
    """A key's dotted path in a problem message (``where`` the path of its block, or empty)."""
    return f"{where}.{name}" if where else name


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any] | None) -> dict[str, Any]:
    """A new dict: ``base`` with ``override`` merged in key by key (override wins)."""
    merged = {key: _copied(value) for key, value in base.items()}
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = _copied(value)
    return merged


def _copied(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _copied(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copied(item) for item in value]
    return value


# --------------------------------------------------------------------------- declaring a setting


def setting(
    default: Any = dataclasses.MISSING,
    *,
    trainer: bool = False,
    operational: bool = False,
    dag: bool = False,
    omit_none: bool = False,
    user: bool = True,
    schema: Mapping[str, Any] | None = None,
    **keywords: Any,
) -> Any:
    """A field declaring one setting: its recipe value (``default``), JSON-schema ``keywords``
    added to what its type says (``items`` merged into the items' schema), or a whole
    ``schema`` replacing it; ``user=False``: filled in by the workflow, not a key of the config."""
    metadata = {
        "trainer": trainer,
        "operational": operational,
        "dag": dag,
        "omit_none": omit_none,
        "user": user,
        "schema": schema,
        "keywords": keywords,
    }
    if default is not dataclasses.MISSING and type(default).__hash__ is None:
        return dataclasses.field(default_factory=lambda: default, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _default(field: dataclasses.Field[Any]) -> Any:
    """A field's recipe value; ``dataclasses.MISSING`` when it has none (a required key)."""
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return field.default


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.cache
def _meta(cls: type, name: str) -> Mapping[str, Any]:
    """The declaration of field ``name``: the nearest class in the MRO that declared it with
    ``setting`` (a subclass restating only the default keeps its parent's)."""
    for klass in cls.__mro__:
        field = vars(klass).get("__dataclass_fields__", {}).get(name)
        if field is not None and field.metadata:
            return field.metadata
    return MappingProxyType({})


def flagged(cls: type, flag: str) -> tuple[str, ...]:
    """The fields of block ``cls`` declared with ``flag`` (``trainer``, ``operational``, ...)."""
    return tuple(f.name for f in dataclasses.fields(cls) if _meta(cls, f.name).get(flag))


def _block_type(hint: Any) -> type[Block] | None:
    """The block class of a field's type (``Lora``, ``Lora | None``), or None."""
    for candidate in (hint, *typing.get_args(hint)):
        if isinstance(candidate, type) and issubclass(candidate, Block):
            return candidate
    return None


def _frozen(value: Any) -> Any:
    """Lists as tuples and dicts as read-only mappings, all the way down."""
    if isinstance(value, Mapping):
        return MappingProxyType({key: _frozen(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    return value


def plain(value: Any) -> Any:
    """The JSON shape of a value again: blocks and mappings as dicts, tuples as lists."""
    if isinstance(value, Block):
        return value.to_dict()
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [plain(item) for item in value]
    return value


# --------------------------------------------------------------------------- the schema of a block

_JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string"}


def _type_schema(hint: Any, nullable: bool = True) -> dict[str, Any]:
    """The JSON schema a type hint says (``nullable=False``: None means left out, not null)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        rest = [arg for arg in args if arg is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"{hint}: declare its schema with setting(schema=...)")
        inner = _type_schema(rest[0])
        if nullable and len(rest) < len(args):
            inner["type"] = [inner["type"], "null"]
            if "enum" in inner:
                inner["enum"] = [*inner["enum"], None]
        return inner
    if origin is Literal:
        return {"type": _JSON_TYPES[type(args[0])], "enum": list(args)}
    if origin is tuple:
        return {"type": "array", "items": _type_schema(args[0])}
    if isinstance(hint, type) and issubclass(hint, Block):
        return block_schema(hint)
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    raise TypeError(f"{hint}: no JSON type; declare its schema with setting(schema=...)")


def field_schema(cls: type, name: str, defaults: bool = False) -> dict[str, Any]:
    """The JSON schema of field ``name`` of block ``cls`` (with its default when ``defaults``)."""
    meta = _meta(cls, name)
    if meta.get("schema") is not None:
        made = dict(meta["schema"])
    else:
        made = _type_schema(_hints(cls)[name], nullable=not meta.get("omit_none"))
    for keyword, value in (meta.get("keywords") or {}).items():
        made[keyword] = {**made[keyword], **value} if keyword == "items" else value
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    if _default(field) is not dataclasses.MISSING:
        made.pop("required", None)  # a block given in part is merged over the field's default
        if defaults:
            made["default"] = plain(_default(field))
    return made


def block_schema(cls: type[Block], defaults: bool = False) -> dict[str, Any]:
    """The JSON schema of a block of the config: its user fields; a key is required only where
    the block declares no recipe value (``Model.source``); ``defaults``: with the recipe's
    values as the schema's defaults (blocks the validator fills in, ``tracking``)."""
    fields = [f for f in dataclasses.fields(cls) if _meta(cls, f.name).get("user", True)]
    made: dict[str, Any] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {f.name: field_schema(cls, f.name, defaults) for f in fields},
    }
    required = [f.name for f in fields if _default(f) is dataclasses.MISSING]
    if required:
        made["required"] = required
    if defaults:
        made["default"] = {}
    return made


# --------------------------------------------------------------------------- blocks


@dataclasses.dataclass(frozen=True)
class Block:
    """A block of settings: one field per key, each declared with ``setting``."""

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> Self:
        """The block of ``data`` with the recipe's value of every key it leaves out (a nested
        block given in part: over the field's default block); ConfigError listing every missing
        or unknown key (with its path, ``where`` the path of the block itself)."""
        if not isinstance(data, Mapping):
            kind = type(data).__name__
            raise ConfigError([f"{where or 'settings'}: expected a mapping, got {kind}"])
        fields = {field.name: field for field in dataclasses.fields(cls)}
        problems = [
            f"{key_path(where, key)}: unknown key; check its spelling"
            for key in data
            if key not in fields
        ]
        values = {}
        for name, field in fields.items():
            default = _default(field)
            if name not in data:
                if default is dataclasses.MISSING:
                    problems.append(f"{key_path(where, name)}: missing")
                continue
            block = _block_type(_hints(cls)[name])
            if block is None or data[name] is None:
                values[name] = _frozen(data[name])
                continue
            given = data[name]
            if isinstance(default, Block) and isinstance(given, Mapping):
                given = deep_merge(default.to_dict(), given)
            try:
                values[name] = block.from_dict(given, key_path(where, name))
            except ConfigError as err:
                problems += err.problems
        if problems:
            raise ConfigError(problems)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The complete dict of this block (the ``omit_none`` keys that are None left out)."""
        return {
            field.name: plain(getattr(self, field.name))
            for field in dataclasses.fields(self)
            if not (
                _meta(type(self), field.name).get("omit_none") and getattr(self, field.name) is None
            )
        }

    def of(self, name: str) -> Any:
        """The field ``name`` when a stage or rule names it (``settings.of("sft")``,
        ``resources.of(rule)``); ConfigError when the block has no such key or left it out."""
        value = getattr(self, name, None) if name in _hints(type(self)) else None
        if value is None:
            raise ConfigError([f"{name}: missing; these settings have no {name!r} block"])
        return value
