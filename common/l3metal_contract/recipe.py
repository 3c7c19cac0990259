# -*- coding: utf-8 -*-
# Copyright (c) 2026, l3metal.provision contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Load, validate and normalize provisioning recipes.

Pure Python (jsonschema, optionally fastjsonschema and PyYAML); no Ansible imports, because the maintenance OS
dispatcher and the webhook receiver use this same file.  Every problem in a recipe is reported at
once, each with the JSON path of the offending value and a message that says how to fix it.  No
input, however malformed, makes these functions raise anything but ``RecipeError``.
"""

from __future__ import annotations

import base64
import binascii
import copy
import difflib
import json
import math
import re
import typing as t

from .recipe_schema import BASE64_PATTERN, FILESYSTEMS, LINUX_TARGET, PAYLOAD_FILES, RECIPE_SCHEMA, WINDOWS_TARGET

try:
    import jsonschema
    HAS_JSONSCHEMA = True
    JSONSCHEMA_IMPORT_ERROR: ImportError | None = None
except ImportError as exc:  # pragma: no cover - exercised by the sanity import test
    HAS_JSONSCHEMA = False
    JSONSCHEMA_IMPORT_ERROR = exc

try:
    # optional: a fast validity check compiled from RECIPE_SCHEMA; jsonschema still makes the list of problems
    import fastjsonschema
    HAS_FASTJSONSCHEMA = True
except ImportError:  # pragma: no cover - exercised by tests/unit/common/l3metal_contract/test_recipe_fast.py
    HAS_FASTJSONSCHEMA = False

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover
    HAS_YAML = False

MAX_RECIPE_BYTES = 16 * 1024 * 1024

# Longest filesystem label mkfs accepts for each format.
LABEL_LIMITS = {'vfat': 11, 'xfs': 12, 'ext3': 16, 'ext4': 16, 'swap': 16, 'ntfs': 32, 'btrfs': 255}
LINUX_ROOT_FILESYSTEMS = ('ext4', 'ext3', 'xfs', 'btrfs')

_JSON_TYPE_NAMES = {dict: 'object', list: 'array', str: 'string', bool: 'boolean', int: 'integer', float: 'number', type(None): 'null'}


class RecipeProblem(t.NamedTuple):
    """One thing wrong with a recipe: where (a JSON path such as ``partition_layout[1].size``) and what."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {'path': self.path, 'message': self.message}

    def __str__(self) -> str:
        return '%s: %s' % (self.path, self.message)


class RecipeError(Exception):
    """A recipe could not be loaded or is invalid; ``problems`` lists every reason."""

    def __init__(self, problems: t.Sequence[RecipeProblem]) -> None:
        self.problems = list(problems)
        super().__init__(self.summary())

    def summary(self) -> str:
        count = len(self.problems)
        head = 'recipe is invalid (%d problem%s)' % (count, '' if count == 1 else 's')
        return head + ': ' + '; '.join(str(p) for p in self.problems)

    def as_dicts(self) -> list[dict[str, str]]:
        return [p.as_dict() for p in self.problems]


# ---------------------------------------------------------------------------------------------------
# loading


def _json_type(value: t.Any) -> str:
    exact = _JSON_TYPE_NAMES.get(type(value))  # exact type: bool must not be reported as integer
    if exact:
        return exact
    if isinstance(value, t.Mapping):
        return 'object'
    if isinstance(value, str):
        return 'string'
    if isinstance(value, (list, tuple)):
        return 'array'
    return type(value).__name__


def format_path(parts: t.Iterable[str | int]) -> str:
    """``['partition_layout', 1, 'size']`` -> ``partition_layout[1].size``; the empty path is ``recipe``."""
    out = ''
    for part in parts:
        if isinstance(part, int):
            out += '[%d]' % part
        elif re.match(r'^[A-Za-z_$][A-Za-z0-9_$-]*$', part):
            out += ('.' if out else '') + part
        else:
            out += '[%s]' % json.dumps(part)
    return out or 'recipe'


def to_plain_json(value: t.Any, path: tuple[str | int, ...] = (), depth: int = 0) -> t.Any:
    """Copy ``value`` into plain JSON types (dict/list/str/int/float/bool/None) or raise ``RecipeError``.

    Ansible hands modules dict subclasses and "unsafe" str subclasses, YAML can produce dates and
    sets; none of those may reach the recipe file.
    """
    if depth > 64:
        raise RecipeError([RecipeProblem(format_path(path), 'nested too deeply (more than 64 levels)')])
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise RecipeError([RecipeProblem(format_path(path), '%r is not a valid JSON number' % value)])
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, t.Mapping):
        out: dict[str, t.Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise RecipeError([RecipeProblem(format_path(path), 'key %r is not a string (quote it)' % (key,))])
            out[str(key)] = to_plain_json(item, path + (str(key),), depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [to_plain_json(item, path + (index,), depth + 1) for index, item in enumerate(value)]
    raise RecipeError([RecipeProblem(format_path(path), 'a %s is not valid in a recipe (use a quoted string)' % type(value).__name__)])


def _reject_constant(name: str) -> t.Any:
    raise ValueError('%s is not valid JSON' % name)


def _parse_text(text: str) -> t.Any:
    stripped = text.strip()
    if not stripped:
        raise RecipeError([RecipeProblem('recipe', 'is empty')])
    try:
        return json.loads(stripped, parse_constant=_reject_constant)
    except RecursionError:
        raise RecipeError([RecipeProblem('recipe', 'nested too deeply')]) from None
    except ValueError as exc:
        json_error = exc
    if stripped.startswith(('{', '[')) or not HAS_YAML:
        line = getattr(json_error, 'lineno', None)
        where = ' at line %s column %s' % (line, getattr(json_error, 'colno', '?')) if line else ''
        raise RecipeError([RecipeProblem('recipe', 'is not valid JSON%s: %s' % (where, getattr(json_error, 'msg', json_error)))])
    try:
        return yaml.safe_load(stripped)
    except RecursionError:
        raise RecipeError([RecipeProblem('recipe', 'nested too deeply')]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, 'problem_mark', None)
        where = ' at line %d column %d' % (mark.line + 1, mark.column + 1) if mark is not None else ''
        problem = getattr(exc, 'problem', None) or str(exc).splitlines()[0]
        raise RecipeError([RecipeProblem('recipe', 'is neither valid JSON nor valid YAML%s: %s' % (where, problem))]) from None
    except Exception as exc:  # PyYAML raises a few non-YAMLError exceptions on odd input
        raise RecipeError([RecipeProblem('recipe', 'could not be parsed: %s' % exc)]) from None


def load_recipe(source: t.Any) -> dict[str, t.Any]:
    """Turn a mapping or a JSON/YAML text (str or bytes) into a plain recipe dict."""
    if isinstance(source, (bytes, bytearray)):
        if len(source) > MAX_RECIPE_BYTES:
            raise RecipeError([RecipeProblem('recipe', 'is larger than %d bytes' % MAX_RECIPE_BYTES)])
        try:
            source = bytes(source).decode('utf-8-sig')
        except UnicodeDecodeError as exc:
            raise RecipeError([RecipeProblem('recipe', 'is not UTF-8 text (byte %d)' % exc.start)]) from None
    if isinstance(source, str):
        if len(source) > MAX_RECIPE_BYTES:
            raise RecipeError([RecipeProblem('recipe', 'is larger than %d bytes' % MAX_RECIPE_BYTES)])
        source = _parse_text(source)
    try:
        data = to_plain_json(source)
    except RecursionError:
        raise RecipeError([RecipeProblem('recipe', 'nested too deeply')]) from None
    if not isinstance(data, dict):
        raise RecipeError([RecipeProblem('recipe', 'must be a JSON object (a mapping of fields), got %s' % _json_type(data))])
    return data


def recipe_secrets(source: t.Any) -> list[str]:
    """The secret values a recipe carries (its ``callback.token``), for a module's ``no_log_values``.

    Best effort and never raising: a recipe that cannot be loaded has no secret this can find (a module
    still fails on it with its own error).  Call it before any ``fail_json`` so even an error's
    ``invocation`` (shown with ``-vvv``) does not print the token.
    """
    try:
        recipe = load_recipe(source)
    except RecipeError:
        return []
    callback = recipe.get('callback')
    token = callback.get('token') if isinstance(callback, dict) else None
    return [token] if isinstance(token, str) and token else []


def load_recipe_file(path: str) -> dict[str, t.Any]:
    """Read a recipe from a JSON or YAML file."""
    try:
        with open(path, 'rb') as handle:
            raw = handle.read(MAX_RECIPE_BYTES + 1)
    except OSError as exc:
        raise RecipeError([RecipeProblem('path', 'cannot read %s: %s' % (path, exc.strerror or exc))]) from None
    return load_recipe(raw)


# ---------------------------------------------------------------------------------------------------
# validation

def python_pattern(pattern: str) -> str:
    """A JSON Schema (ECMA-262) ``pattern`` as a Python regular expression with the same meaning.

    In ECMA-262 ``$`` matches only at the end of the input; in Python it also matches before a final
    newline, so ``^[A-Z]+$`` would accept ``"S1\\n"`` (a second active job for one server, a device path
    with a newline).  Every ``$`` outside a character class becomes ``\\Z``.  The schema uses no ``\\d`` or
    ``\\w`` (Unicode digits and letters in Python; a unit test keeps it so).
    """
    out: list[str] = []
    index, in_class = 0, False
    while index < len(pattern):
        char = pattern[index]
        if char == '\\':
            out.append(pattern[index:index + 2])
            index += 2
            continue
        if in_class:
            in_class = char != ']'
        elif char == '[':
            in_class = True
        elif char == '$':
            char = '\\Z'
        out.append(char)
        index += 1
    return ''.join(out)


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """``python_pattern`` compiled (cached: the schema's patterns are few and constant)."""
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        compiled = _PATTERNS[pattern] = re.compile(python_pattern(pattern))
    return compiled


_PATTERNS: dict[str, re.Pattern[str]] = {}
_VALIDATOR: t.Any = None
_FAST_CHECK: t.Any = None  # None: not compiled yet; False: not available (no fastjsonschema, or it refused the schema)


def _pattern_keyword(validator: t.Any, pattern: str, instance: t.Any, schema: t.Mapping[str, t.Any]) -> t.Iterator[t.Any]:
    """jsonschema's ``pattern`` with ECMA-262 semantics (jsonschema applies Python's ``re.search`` as is)."""
    if validator.is_type(instance, 'string') and not compile_pattern(pattern).search(instance):
        yield jsonschema.ValidationError('%r does not match %r' % (instance, pattern))


def _validator() -> t.Any:
    global _VALIDATOR  # pylint: disable=global-statement
    if _VALIDATOR is None:
        if not HAS_JSONSCHEMA:
            raise RuntimeError('the jsonschema Python library is required to validate recipes')
        cls = jsonschema.validators.extend(jsonschema.validators.validator_for(RECIPE_SCHEMA), {'pattern': _pattern_keyword})
        _VALIDATOR = cls(RECIPE_SCHEMA)
    return _VALIDATOR


def _fast_check() -> t.Any:
    """fastjsonschema's check compiled from the same ``RECIPE_SCHEMA`` (once, at first use), or False without it.

    fastjsonschema gives ``pattern`` the ECMA-262 meaning of ``$`` too (it becomes ``\\Z``); a hypothesis test
    (tests/unit/common/l3metal_contract/test_recipe_fast.py) proves that it and the jsonschema validator above
    agree on every recipe it generates, valid and invalid.
    """
    global _FAST_CHECK  # pylint: disable=global-statement
    if _FAST_CHECK is None:
        _FAST_CHECK = False
        if HAS_FASTJSONSCHEMA:
            try:
                _FAST_CHECK = fastjsonschema.compile(RECIPE_SCHEMA)
            except Exception:  # pylint: disable=broad-exception-caught  # any failure: jsonschema alone, as without it
                _FAST_CHECK = False
    return _FAST_CHECK


def schema_valid(recipe: t.Any) -> bool | None:
    """True/False from the fast check when it is available, None when not (then only jsonschema can tell)."""
    check = _fast_check()
    if not check:
        return None
    try:
        check(recipe)
    except Exception:  # pylint: disable=broad-exception-caught  # JsonSchemaValueException, or anything odd: let jsonschema decide
        return False
    return True


def _short(value: t.Any, limit: int = 60) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _with_hint(message: str, schema: t.Mapping[str, t.Any]) -> str:
    hint = schema.get('x-hint') if isinstance(schema, t.Mapping) else None
    return '%s (%s)' % (message, hint) if hint else message


def _schema_problems(error: t.Any) -> list[RecipeProblem]:
    """Turn one jsonschema error into problems a user can act on."""
    path = list(error.absolute_path)
    kind = error.validator
    value = error.instance
    schema = error.schema
    if kind == 'required':
        missing = [name for name in error.validator_value if isinstance(value, dict) and name not in value]
        return [RecipeProblem(format_path(path + [name]), _with_hint('is required', schema)) for name in missing]
    if kind == 'additionalProperties':
        known = sorted(schema.get('properties', {}))
        problems = []
        for name in value if isinstance(value, dict) else ():
            if name in known:
                continue
            close = difflib.get_close_matches(name, known, n=1)
            advice = "did you mean '%s'?" % close[0] if close else 'allowed: ' + ', '.join(known)
            problems.append(RecipeProblem(format_path(path + [name]), 'unknown field (%s)' % advice))
        return problems
    if kind == 'type':
        expected = error.validator_value
        expected = ' or '.join(expected) if isinstance(expected, list) else expected
        article = 'an' if str(expected)[:1] in 'aeiou' else 'a'
        return [RecipeProblem(format_path(path), _with_hint('expected %s %s, got %s' % (article, expected, _json_type(value)), schema))]
    if kind == 'pattern':
        return [RecipeProblem(format_path(path), _with_hint('%s does not match the expected format' % _short(value), schema))]
    if kind == 'enum':
        allowed = ', '.join(str(v) for v in error.validator_value)
        return [RecipeProblem(format_path(path), '%s is not one of: %s' % (_short(value), allowed))]
    if kind == 'minLength':
        if error.validator_value <= 1:
            return [RecipeProblem(format_path(path), 'must not be empty')]
        return [RecipeProblem(format_path(path), 'is too short (at least %d characters)' % error.validator_value)]
    if kind == 'maxLength':
        return [RecipeProblem(format_path(path), 'is too long (at most %d characters)' % error.validator_value)]
    if kind == 'minItems':
        return [RecipeProblem(format_path(path), 'needs at least %d item%s' % (error.validator_value, '' if error.validator_value == 1 else 's'))]
    if kind == 'maxItems':
        return [RecipeProblem(format_path(path), 'has more than %d items' % error.validator_value)]
    if kind == 'minimum':
        return [RecipeProblem(format_path(path), '%s is less than the minimum of %s' % (_short(value), error.validator_value))]
    if kind == 'maximum':
        return [RecipeProblem(format_path(path), '%s is more than the maximum of %s' % (_short(value), error.validator_value))]
    return [RecipeProblem(format_path(path), _with_hint(str(error.message), schema))]


def _layout_problems(recipe: t.Mapping[str, t.Any]) -> list[RecipeProblem]:
    layout = recipe.get('partition_layout')
    if not isinstance(layout, list):
        return []
    problems: list[RecipeProblem] = []
    parts = [(index, part) for index, part in enumerate(layout) if isinstance(part, dict)]
    rest = [index for index, part in parts if part.get('size') == '100%']
    for index in rest[1:]:
        problems.append(RecipeProblem(format_path(['partition_layout', index, 'size']),
                                      "only one partition can use 100%% (the rest of the disk); partition %d already does" % rest[0]))
    if rest and rest[0] != len(layout) - 1:
        problems.append(RecipeProblem(format_path(['partition_layout', rest[0], 'size']),
                                      '100% (the rest of the disk) is only allowed on the last partition; give this one a fixed size or move it last'))
    seen_mounts: dict[str, int] = {}
    for index, part in parts:
        fmt = part.get('format')
        label = part.get('label')
        limit = LABEL_LIMITS.get(fmt) if isinstance(fmt, str) else None
        if isinstance(label, str) and limit is not None and len(label) > limit:
            problems.append(RecipeProblem(format_path(['partition_layout', index, 'label']),
                                          '%s is too long for %s (at most %d characters)' % (_short(label), fmt, limit)))
        mount = part.get('mountpoint')
        if not isinstance(mount, str):
            continue
        if fmt not in FILESYSTEMS or fmt == 'swap':
            problems.append(RecipeProblem(format_path(['partition_layout', index, 'mountpoint']),
                                          'needs a filesystem to mount: set format (e.g. ext4 or vfat)'))
        if mount in seen_mounts:
            problems.append(RecipeProblem(format_path(['partition_layout', index, 'mountpoint']),
                                          '%s is already the mount point of partition %d' % (_short(mount), seen_mounts[mount])))
        else:
            seen_mounts[mount] = index
    target = recipe.get('task_target')
    formats = [part.get('format') for _index, part in parts]
    if target == LINUX_TARGET and parts and not any(fmt in LINUX_ROOT_FILESYSTEMS for fmt in formats):
        problems.append(RecipeProblem('partition_layout', '%s needs a partition for the root filesystem (format: %s)'
                                      % (LINUX_TARGET, ', '.join(LINUX_ROOT_FILESYSTEMS))))
    if target == WINDOWS_TARGET and parts and 'ntfs' not in formats:
        problems.append(RecipeProblem('partition_layout', '%s needs a partition with format: ntfs for Windows' % WINDOWS_TARGET))
    return problems


def _payload_problems(recipe: t.Mapping[str, t.Any], attached: t.Collection[str]) -> list[RecipeProblem]:
    problems = []
    for key in PAYLOAD_FILES:
        value = recipe.get(key)
        if isinstance(value, str) and value.strip() and compile_pattern(BASE64_PATTERN).search(value):
            try:
                base64.b64decode(re.sub(r'\s+', '', value), validate=True)
            except (binascii.Error, ValueError):
                problems.append(RecipeProblem(key, 'is not valid base64 (%s)' % RECIPE_SCHEMA['properties'][key]['x-hint']))
    if recipe.get('task_target') == WINDOWS_TARGET and 'unattend_xml' not in recipe and 'unattend_xml' not in attached:
        problems.append(RecipeProblem('unattend_xml', 'is required for %s (put it in the recipe, base64-encoded, or give it to task_iso as unattend_xml)'
                                      % WINDOWS_TARGET))
    return problems


def _sort_key(problem: RecipeProblem) -> tuple[t.Any, ...]:
    # numeric order for list indices: partition_layout[2] before partition_layout[10]
    return (tuple((int(tok) if tok.isdigit() else -1, tok) for tok in re.split(r'[\[\].]+', problem.path)), problem.message)


def check_recipe(recipe: t.Any, attached: t.Collection[str] = ()) -> list[RecipeProblem]:
    """Return every problem with ``recipe`` (empty when valid).

    ``attached`` names payload fields (``unattend_xml``, ...) that travel as separate files on the task
    medium instead of inside the recipe, so rules that need them are satisfied.
    """
    if not isinstance(recipe, dict):
        return [RecipeProblem('recipe', 'must be a JSON object (a mapping of fields), got %s' % _json_type(recipe))]
    problems: list[RecipeProblem] = []
    if not schema_valid(recipe):  # invalid, or no fast check: jsonschema lists the problems (none when the fast check erred)
        for error in _validator().iter_errors(recipe):
            problems.extend(_schema_problems(error))
    problems.extend(_layout_problems(recipe))
    problems.extend(_payload_problems(recipe, attached))
    unique = sorted(set(problems), key=_sort_key)
    return unique


def _normalize_type_code(code: str) -> str:
    return code.lower() if len(code) == 4 else code.upper()


def normalize_recipe(recipe: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """Canonical form of a valid recipe: fields in schema order, size suffixes and type codes in one
    case, base64 without line breaks.  Equivalent recipes normalize to the same JSON bytes."""
    data = copy.deepcopy(dict(recipe))
    ordered: dict[str, t.Any] = {}
    for key in RECIPE_SCHEMA['properties']:
        if key in data:
            ordered[key] = data.pop(key)
    ordered.update(data)
    layout = ordered.get('partition_layout')
    if isinstance(layout, list):
        item_keys = list(RECIPE_SCHEMA['properties']['partition_layout']['items']['properties'])
        new_layout = []
        for part in layout:
            part = {key: part[key] for key in item_keys if key in part}
            part['size'] = part['size'].upper()
            part['type_guid'] = _normalize_type_code(part['type_guid'])
            new_layout.append(part)
        ordered['partition_layout'] = new_layout
    for key in PAYLOAD_FILES:
        if isinstance(ordered.get(key), str):
            ordered[key] = re.sub(r'\s+', '', ordered[key])
    callback = ordered.get('callback')
    if isinstance(callback, dict):
        cb_keys = list(RECIPE_SCHEMA['properties']['callback']['properties'])
        ordered['callback'] = {key: callback[key] for key in cb_keys if key in callback}
    return ordered


def validate_recipe(source: t.Any, attached: t.Collection[str] = ()) -> dict[str, t.Any]:
    """Load (mapping, JSON or YAML text), validate and normalize a recipe; raise ``RecipeError`` listing all problems."""
    recipe = load_recipe(source)
    problems = check_recipe(recipe, attached)
    if problems:
        raise RecipeError(problems)
    return normalize_recipe(recipe)


def decode_payload(recipe: t.Mapping[str, t.Any], key: str) -> bytes | None:
    """The decoded bytes of a base64 payload field (``user_data``, ``unattend_xml``, ``ks_cfg``), or None."""
    value = recipe.get(key)
    if not isinstance(value, str):
        return None
    return base64.b64decode(re.sub(r'\s+', '', value), validate=True)


def recipe_json(recipe: t.Mapping[str, t.Any]) -> str:
    """Serialization used on task media: stable, ASCII-safe, newline-terminated."""
    return json.dumps(recipe, indent=2, ensure_ascii=True) + '\n'
