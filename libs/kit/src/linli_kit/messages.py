"""The message catalogues: what a package says to people, extracted from its source, and its Chinese.

    linli-messages update PACKAGE...   extract, merge into translations/zh/.../messages.po, compile .mo
    linli-messages check PACKAGE...    fail when a message has no Chinese (what the tests run)

PACKAGE is an import name (`linli_kit`, `linli_gateway`, `linli_issues`, ...). A message is found
where it is made: the first argument of an error (`Invalid("...")`, `NotFound("...")`, a subclass
of `ServiceError`, or an error named in the package's `MESSAGE_ERRORS`), each text in an error's
`fields={"name": ["..."]}`, `Text("...")`, `N_("...")` and `NC_("context", "...")`. The kit also
holds the messages of marshmallow, webargs and werkzeug that reach people.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ERRORS = {"ServiceError", "Invalid", "NotFound", "Forbidden", "Unauthorized", "Conflict"}
PACKAGES = ("linli_kit", "linli_gateway", "linli_issues", "linli_meetings", "linli_activities", "linli_notifications")


@dataclass(frozen=True)
class Found:
    message: str
    context: str | None
    where: str


@dataclass(frozen=True)
class Problem:
    where: str
    what: str


def package_dir(package: str) -> Path:
    return Path(list(importlib.import_module(package).__path__)[0]).resolve()


def po_path(package: str) -> Path:
    return package_dir(package) / "translations" / "zh" / "LC_MESSAGES" / "messages.po"


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _error_classes(trees: dict[str, ast.Module], extra: dict[str, int]) -> dict[str, int]:
    """Error names whose message is the argument at the given position: the kit's, their subclasses
    in the package, and the package's own (`MESSAGE_ERRORS = {"AccountError": 1}` in its __init__)."""
    errors = dict.fromkeys(ERRORS, 0) | extra
    grew = True
    while grew:
        grew = False
        for tree in trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef) and node.name not in errors:
                    if any(_name(base) in errors for base in node.bases):
                        errors[node.name] = errors[next(_name(b) for b in node.bases if _name(b) in errors)]
                        grew = True
    return errors


def _strings(node: ast.expr) -> Iterator[ast.expr]:
    """The texts of a `fields=` value: a dict of lists (or one text) per field."""
    if isinstance(node, ast.Dict):
        for value in node.values:
            yield from _strings(value)
    elif isinstance(node, ast.List | ast.Tuple):
        yield from node.elts
    elif node is not None:
        yield node


# Names under which field messages are gathered before an error is raised with them.
PROBLEM_TABLES = {"problems", "bad"}


def _is_problem_entry(node: ast.Assign) -> bool:
    """`problems["title"] = ["too long"]`: a field message put aside for an error."""
    target = node.targets[0] if len(node.targets) == 1 else None
    return (
        isinstance(target, ast.Subscript)
        and isinstance(target.value, ast.Name)
        and target.value.id in PROBLEM_TABLES
        and isinstance(node.value, ast.List | ast.Tuple)
    )


def _literal(node: ast.expr, where: str, problems: list[Problem]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        problems.append(Problem(where, "an f-string message: use placeholders (Text or keyword values)"))
    elif isinstance(node, ast.BinOp) and any(
        isinstance(side, ast.Constant | ast.JoinedStr) for side in (node.left, node.right)
    ):
        problems.append(Problem(where, "a message built by concatenation: use placeholders"))
    return None


def extract(package: str) -> tuple[list[Found], list[Problem]]:
    root = package_dir(package)
    trees: dict[str, ast.Module] = {}
    for path in sorted(root.rglob("*.py")):
        if "migrations" in path.parts or "testing" in path.relative_to(root).parts:
            continue
        trees[str(path.relative_to(root.parent))] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    extra = getattr(importlib.import_module(package), "MESSAGE_ERRORS", {})
    errors = _error_classes(trees, extra)
    found: list[Found] = []
    problems: list[Problem] = []
    for filename, tree in trees.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and _is_problem_entry(node):
                for element in _strings(node.value):
                    text = _literal(element, f"{filename}:{node.lineno}", problems)
                    if text:
                        found.append(Found(text, None, f"{filename}:{node.lineno}"))
                continue
            if not isinstance(node, ast.Call):
                continue
            name = _name(node.func)
            where = f"{filename}:{node.lineno}"
            if name in ("Text", "N_") and node.args:
                text = _literal(node.args[0], where, problems)
                if text:
                    found.append(Found(text, None, where))
            elif name == "NC_" and len(node.args) == 2:
                context, text = (_literal(arg, where, problems) for arg in node.args)
                if context and text:
                    found.append(Found(text, context, where))
            elif name in errors:
                position = errors[name]
                if len(node.args) > position:
                    text = _literal(node.args[position], where, problems)
                    if text:
                        found.append(Found(text, None, where))
                for keyword in node.keywords:
                    if keyword.arg == "fields":
                        for element in _strings(keyword.value):
                            text = _literal(element, where, problems)
                            if text:
                                found.append(Found(text, None, where))
    if package == "linli_kit":
        found.extend(Found(text, None, "framework") for text in framework_messages())
    return found, problems


def framework_messages() -> list[str]:
    """marshmallow's, webargs' and werkzeug's messages that reach people through an error body."""
    import marshmallow.fields as ma_fields
    import marshmallow.validate as ma_validate
    from marshmallow import Schema
    from werkzeug import exceptions

    texts: list[str] = []
    for _, cls in inspect.getmembers(ma_fields, inspect.isclass):
        if issubclass(cls, ma_fields.Field):
            for klass in cls.__mro__:
                messages = klass.__dict__.get("default_error_messages")
                if isinstance(messages, dict):
                    texts.extend(messages.values())
    texts.extend(Schema._default_error_messages.values())
    for _, cls in inspect.getmembers(ma_validate, inspect.isclass):
        for attribute in ("default_message", "message_min", "message_max", "message_all", "message_equal"):
            value = cls.__dict__.get(attribute)
            if isinstance(value, str) and cls is not ma_validate.Range:
                texts.append(value)
    for low in ("greater than or equal to", "greater than"):
        for high in ("less than or equal to", "less than"):
            texts += [f"Must be {low} {{min}}.", f"Must be {high} {{max}}."]
            texts.append(f"Must be {low} {{min}} and {high} {{max}}.")
    # What marshmallow's temporal fields name their type, formatted into "Not a valid {obj_type}.".
    for obj_type in ("datetime", "date", "time", "aware datetime", "naive datetime"):
        texts.append(f"Not a valid {obj_type}.")
    texts += ["Invalid JSON body.", "Invalid value."]
    for code in (400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 502, 503, 504):
        error = exceptions.default_exceptions[code]
        texts += [error.description or "", error.name]
    return list(dict.fromkeys(t for t in texts if isinstance(t, str) and t))


def template(package: str) -> tuple[Catalog, list[Problem]]:
    found, problems = extract(package)
    catalog = Catalog(project="linli", domain="messages", fuzzy=False)
    for item in found:
        catalog.add(item.message, None, context=item.context)
    return catalog, problems


def update(package: str) -> Path:
    """Merge what the source says into the package's Chinese catalogue (new messages untranslated,
    gone ones dropped) and compile it."""
    path = po_path(package)
    path.parent.mkdir(parents=True, exist_ok=True)
    fresh, problems = template(package)
    for problem in problems:
        print(f"{problem.where}: {problem.what}", file=sys.stderr)
    if path.exists():
        with path.open("rb") as f:
            catalog = read_po(f, locale="zh")
        catalog.update(fresh, no_fuzzy_matching=True, update_header_comment=False, update_creation_date=False)
        catalog.obsolete.clear()
    else:
        catalog = Catalog(locale="zh", project="linli", domain="messages", fuzzy=False)
        for message in fresh:
            if message.id:
                catalog.add(message.id, "", context=message.context)
    with path.open("wb") as f:
        write_po(f, catalog, sort_output=True, omit_header=False, no_location=True, width=100)
    with path.with_suffix(".mo").open("wb") as f:
        write_mo(f, catalog)
    return path


def missing(package: str) -> tuple[list[str], list[Problem]]:
    """Messages of the source without a Chinese translation (or whose translation lacks or adds a
    placeholder), and messages made in a way that cannot be translated."""
    fresh, problems = template(package)
    path = po_path(package)
    translated: dict[tuple[str | None, str], str] = {}
    if path.exists():
        with path.open("rb") as f:
            for message in read_po(f, locale="zh"):
                if message.id and message.string and not message.fuzzy:
                    translated[(message.context, str(message.id))] = str(message.string)
    lacking = []
    for message in fresh:
        if not message.id:
            continue
        key = (message.context, str(message.id))
        text = translated.get(key)
        if text is None:
            lacking.append(f"{message.context + ': ' if message.context else ''}{message.id}")
        elif _placeholders(str(message.id)) != _placeholders(text):
            lacking.append(f"{message.id} (placeholders differ in: {text})")
    return lacking, problems


def _placeholders(text: str) -> set[str]:
    import re

    return set(re.findall(r"\{(\w+)[^}]*\}", text))


def main() -> None:
    parser = argparse.ArgumentParser(prog="linli-messages", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["update", "check"])
    parser.add_argument("packages", nargs="*", default=list(PACKAGES))
    args = parser.parse_args()
    failed = False
    for package in args.packages:
        if args.action == "update":
            print(f"{package}: {update(package)}")
        lacking, problems = missing(package)
        for problem in problems:
            print(f"{package}: {problem.where}: {problem.what}", file=sys.stderr)
        for text in lacking:
            print(f"{package}: no Chinese for {text!r}", file=sys.stderr)
        failed = failed or bool(lacking or problems)
        print(f"{package}: {len(lacking)} untranslated, {len(problems)} not translatable")
    sys.exit(1 if failed and args.action == "check" else 0)
