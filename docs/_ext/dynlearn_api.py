"""The API reference, generated from the package's own ``__all__`` lists at every build, and its checks.

Every public name is documented exactly once, on the page of its family, under the most public module whose
``__all__`` holds it (``dynlearn.integration.rollout``, not ``dynlearn.integration.rollout.rollout``), so the
reference cannot miss a name the package exports. Cross-references and type hints that name an object by the
module that defines it (what ``typing`` and autodoc see) are resolved to that documented name. A public name
without a docstring is a warning, and the build runs with warnings as errors.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.ext.napoleon import Config as NapoleonConfig
from sphinx.ext.napoleon.docstring import GoogleDocstring
from sphinx.util import logging

logger = logging.getLogger(__name__)

#: the reference's pages: (page, title, the packages whose modules it documents)
PAGES = (
    ("integration", "Integration: tableaus, steps, rollouts", ("dynlearn.integration",)),
    ("fields", "Learned fields, maps and their training", ("dynlearn.fields",)),
    ("autoencoder", "The physics-aware autoencoder", ("dynlearn.autoencoder",)),
    ("continuousnet", "ContinuousNet", ("dynlearn.continuousnet",)),
    ("systems", "Physical systems", ("dynlearn.systems",)),
    ("datasets", "Datasets: the file format, views, real data", ("dynlearn.datasets",)),
    ("analysis", "Instruments: rates, convergence, reconstruction, robustness", ("dynlearn.analysis",)),
    ("experiments", "Experiments: the studies behind the commands", ("dynlearn.analysis.experiments",)),
    ("utilities", "Utilities: progress, independent tasks, expressions", ("dynlearn.progress", "dynlearn.tasks",
                                                                           "dynlearn.expressions")),
)


def _modules(package: str) -> list[str]:
    """``package`` and its public modules, depth first, shallowest first; sub-packages that have a page of their
    own are left to it."""
    own_pages = {root for _, _, roots in PAGES for root in roots}
    module = importlib.import_module(package)
    found = [package]
    for info in pkgutil.iter_modules(getattr(module, "__path__", [])):
        name = f"{package}.{info.name}"
        if info.name.startswith("_") or name in own_pages:
            continue
        found += _modules(name)
    return found


def public_names() -> dict[str, list[tuple[str, str]]]:
    """Per page, the (module, name) pairs it documents: each exported object once. Classes and functions go
    under the shallowest module whose ``__all__`` holds them; constants and type aliases, whose documentation is
    a ``#:`` comment beside their definition, under the deepest (the one that defines them)."""
    placed: dict[tuple[str, int], tuple[str, str, str]] = {}
    order: list[tuple[str, int]] = []
    module_order: list[str] = []
    for page, _, roots in PAGES:
        for module_name in [name for root in roots for name in _modules(root)]:
            module_order.append(module_name)
            module = importlib.import_module(module_name)
            for name in getattr(module, "__all__", ()):
                obj = getattr(module, name)
                key = (name if _is_value(obj) else "", id(obj))
                if key not in placed:
                    order.append(key)
                elif not _is_value(obj):
                    continue
                placed[key] = (page, module_name, name)
    pages: dict[str, list[tuple[str, str]]] = {page: [] for page, _, _ in PAGES}
    for key in order:
        page, module_name, name = placed[key]
        pages[page].append((module_name, name))
    for page in pages:  # grouped by module: the package first, then its modules in order (a stable sort)
        pages[page].sort(key=lambda entry: module_order.index(entry[0]))
    return pages


def _is_value(obj: object) -> bool:
    """Constants (numbers, strings, tuples, dicts) and type aliases: their documentation is a ``#:`` comment where
    they are defined, and small values share identities with unrelated ones."""
    return isinstance(obj, (int, float, str, tuple, frozenset, dict, type(None))) or hasattr(obj, "__origin__")


def _directive(obj: object) -> str:
    if inspect.isclass(obj):
        return "autoexception" if issubclass(obj, BaseException) else "autoclass"
    if callable(obj) and not hasattr(obj, "__origin__"):
        return "autofunction"
    return "autodata"


def write_pages(app: Sphinx) -> None:
    """Write ``api/*.rst`` (generated, not committed) from the ``__all__`` lists."""
    folder = Path(app.srcdir) / "api"
    folder.mkdir(exist_ok=True)
    pages = public_names()
    index = ["API reference", "=============", "",
             "Generated from the package's ``__all__`` lists at every build: every public name, once, on its "
             "family's page. ``import dynlearn`` offers the names a user reaches for first; each is documented "
             "where it lives:", "", ".. toctree::", "   :maxdepth: 1", ""]
    index += [f"   {page}" for page, _, _ in PAGES]
    index += ["", "The names of ``import dynlearn``:", "", ".. list-table::", "   :header-rows: 1", "",
              "   * - name", "     - documented as"]
    import dynlearn

    documented = _documented(pages)
    for name in dynlearn.__all__:
        index += [f"   * - ``dynlearn.{name}``", f"     - :py:obj:`{documented[id(getattr(dynlearn, name))]}`"]
    _write(folder / "index.rst", "\n".join(index) + "\n")
    object_names = {f"{module}.{name}" for entries in pages.values() for module, name in entries}
    for page, title, _ in PAGES:
        lines = [title, "=" * len(title), ""]
        current = None
        for module_name, name in pages[page]:
            if module_name != current:
                if current is not None:  # the page's package opens it, under the page's title
                    lines += [f"``{module_name}``", "-" * (len(module_name) + 4), ""]
                if module_name not in object_names:  # a module named like a function (``rollout``) gets no entry
                    lines += [f".. automodule:: {module_name}", "   :no-members:", ""]
                lines += [f".. currentmodule:: {module_name}", ""]
                current = module_name
            obj = getattr(importlib.import_module(module_name), name)
            directive = _directive(obj)
            lines += [f".. {directive}:: {name}"]
            if directive in ("autoclass", "autoexception"):
                lines += ["   :members:", "   :show-inheritance:"]
            lines += [""]
        _write(folder / f"{page}.rst", "\n".join(lines))


def _write(path: Path, text: str) -> None:
    """Only a changed page is rewritten, so an unchanged API does not make Sphinx re-read every page."""
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def warn_undocumented(app: Sphinx, what: str, name: str, obj: object, options: object, lines: list[str]) -> None:
    """A public object with no docstring of its own breaks the build (warnings are errors)."""
    if what not in ("module", "class", "exception", "function", "data"):
        return
    inherited = inspect.getdoc(type(obj)) if what == "data" else None  # a constant without ``#:`` shows its type's
    text = "\n".join(lines).strip()
    if not text or (inherited and text == inherited.strip()):
        logger.warning(f"public name {name} has no docstring", type="dynlearn", subtype="undocumented")
        lines.clear()


def _documented_name(app: Sphinx, path: str) -> str | None:
    """The name under which the object at ``path`` (a dotted path through modules, then attributes) is documented:
    that of the deepest documented object on the path, followed by the rest of the path (a method, an attribute);
    None when the path does not lead to a documented object."""
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except (ImportError, ValueError):
            continue
        chain = [obj]
        for attribute in parts[split:]:  # an instance attribute is not on its class: the chain stops there
            if not hasattr(obj, attribute):
                break
            obj = getattr(obj, attribute)
            chain.append(obj)
        for depth in range(len(chain) - 1, -1, -1):
            documented = app.env.dynlearn_documented.get(id(chain[depth]))
            if documented is not None:
                return ".".join([documented, *parts[split + depth:]])
        return None
    return None


def resolve_by_definition(app: Sphinx, env: object, node: nodes.Element,
                          contnode: nodes.Element) -> nodes.Element | None:
    """A reference by defining module (``dynlearn.integration.tableau.ButcherTableau``, as type hints give it) or
    by a name relative to the module that mentions it, resolved to where the object is documented
    (``dynlearn.integration.ButcherTableau``). A module with no page of its own resolves to its family's."""
    if node.get("refdomain") != "py":
        return None
    target = str(node.get("reftarget", "")).lstrip("~.")
    context = node.get("py:module") or ""
    candidates = [target] if target.startswith("dynlearn.") else []
    if context:
        if node.get("py:class"):
            candidates.append(f"{context}.{node['py:class']}.{target}")
        candidates.append(f"{context}.{target}")
    domain = app.env.get_domain("py")
    if node["reftype"] in ("data", "obj", "const"):  # a constant by its short name, documented in its own module
        family = ".".join(context.split(".")[:3])
        candidates += [name for name in domain.objects if name.startswith(family) and name.endswith(f".{target}")]
    for candidate in candidates:
        if node["reftype"] == "mod":
            while candidate.count(".") > 1 and candidate not in domain.modules:
                candidate = candidate.rpartition(".")[0]
            documented = candidate if candidate in domain.modules else None
        else:
            documented = candidate if candidate in domain.objects else _documented_name(app, candidate)
        if documented is None or documented == target:
            continue
        resolved = domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], documented, node, contnode)
        if resolved is None and node["reftype"] != "mod":
            resolved = domain.resolve_any_xref(env, node["refdoc"], app.builder, documented, node, contnode)
            resolved = resolved[0][1] if resolved else None
        if resolved is not None:
            return resolved
    return None


def _documented(pages: dict[str, list[tuple[str, str]]]) -> dict[int, str]:
    """Object identity -> the name it is documented under."""
    return {id(getattr(importlib.import_module(module), name)): f"{module}.{name}"
            for entries in pages.values() for module, name in entries}


def remember_documented(app: Sphinx) -> None:
    """The classes and functions by identity (constants share identities: they are found by name instead)."""
    app.env.dynlearn_documented = {key: name for key, name in _documented(public_names()).items()
                                   if not _is_value(_object(name))}


def _object(dotted: str) -> object:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def public_bases(app: Sphinx, name: str, obj: object, options: object, bases: list[type]) -> None:
    """``Bases:`` lists public classes only (a private mixin is an implementation detail)."""
    bases[:] = [base for base in bases if not base.__name__.startswith("_")] or [object]


def google_sections(app: Sphinx, what: str, name: str, obj: object, options: object, lines: list[str]) -> None:
    """Google-style sections (Args:, Returns:, Attributes:) of modules, classes and functions, through napoleon.
    Attribute and constant docstrings are prose and stay as written (napoleon would read ``text: more`` in them
    as a type)."""
    if what in ("attribute", "data", "property"):
        return
    lines[:] = GoogleDocstring(lines, NAPOLEON, app, what, name, obj, options).lines()


NAPOLEON = NapoleonConfig(napoleon_use_rtype=False, napoleon_attr_annotations=True, napoleon_use_ivar=False)


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", write_pages)
    app.connect("builder-inited", remember_documented)
    app.connect("autodoc-process-docstring", warn_undocumented)
    app.connect("autodoc-process-docstring", google_sections)
    app.connect("missing-reference", resolve_by_definition)
    app.connect("autodoc-process-bases", public_bases)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
