"""The registry over every registered model: ``num_classes`` sets the output width, the book/twin
bookkeeping is consistent, and ``models/`` imports nothing above it (the registry no family)."""
import ast
from pathlib import Path

import pytest
from mxnet.gluon import nn

import gluon_modern_cnn as gmc
from gluon_modern_cnn.tools import flops

PACKAGE = Path(gmc.__file__).resolve().parent
ALL_MODELS = gmc.list_models()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_num_classes_sets_the_output_width(name):
    # timm's check: any classifier width, not only the registered one (42 is no dataset's).
    info = gmc.model_info(name)
    net = gmc.get_model(name, num_classes=42)
    shape = (2, info.in_channels, info.min_input_size, info.min_input_size)
    assert flops.infer_shapes(net, shape).output_shape(net) == (2, 42)


@pytest.mark.parametrize("name", ALL_MODELS)
def test_twin_bookkeeping(name):
    info = gmc.model_info(name)
    net = info.constructor()
    assert isinstance(net, nn.HybridBlock) == info.hybrid
    book, hybrid = gmc.model_info(info.book_model), info.hybrid_model
    if info.twin is None:
        if info.hybrid:  # a paper's variant: a HybridBlock, its own book model and twin
            assert info.book_model == hybrid == name
        else:  # a book nn.Block without a twin (the 1.0 edition's networks): nothing to hybridize
            assert info.book_model == name and hybrid is None
        return
    twin = gmc.model_info(info.twin)
    assert twin.twin == name and twin.hybrid != info.hybrid
    assert (twin.book_model, twin.hybrid_model) == (info.book_model, hybrid)
    assert not book.hybrid and hybrid == f"{book.name}_hybrid" and gmc.model_info(hybrid).hybrid
    assert {name, info.twin} == {book.name, hybrid}
    for field in ("family", "section", "input_size", "in_channels", "num_classes",
                  "book_settings", "description"):
        assert getattr(twin, field) == getattr(info, field), field
    assert twin.hyperparameters == info.hyperparameters
    # One parameter file serves both: the same structural parameter names (the hybrid scratch
    # BatchNorm adds its moving statistics, which the book's keeps outside Parameters).
    book_params, hybrid_params = (set(gmc.model_info(n).constructor()._collect_params_with_prefix())
                                  for n in (book.name, hybrid))
    assert book_params and book_params <= hybrid_params
    assert all(p.endswith(("moving_mean", "moving_var")) for p in hybrid_params - book_params)


# ---------------------------------------------------------------------------------------------
# Import direction: models/ is the bottom layer above the MXNet compatibility shim, the argument
# checks and the book's data; the registry imports no family; the FLOP counter no model class.

#: What models/ may import from the rest of the package.
MODELS_MAY_IMPORT = {"gluon_modern_cnn.runtime.compat", "gluon_modern_cnn.book", "gluon_modern_cnn.checks"}


def _package_imports(path: Path):
    """Every ``gluon_modern_cnn`` module ``path`` imports, anywhere in it (function-level imports
    included), as absolute dotted names."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    package = ".".join(parts[:-1])  # what a relative import of level 1 starts from
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            base = f"{base}.{node.module}" if node.level and node.module else \
                base if node.level else node.module
            # `from . import book` imports a module; `from .x import name` a name of module x.
            names = [f"{base}.{a.name}" if _is_module(f"{base}.{a.name}") else base
                     for a in node.names]
        else:
            continue
        yield from (n for n in names if n.split(".")[0] == "gluon_modern_cnn")


def _is_module(dotted: str) -> bool:
    path = PACKAGE.parent.joinpath(*dotted.split("."))
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


def test_import_parser_sees_relative_and_lazy_imports(tmp_path):
    assert set(_package_imports(PACKAGE / "models" / "_registry.py")) == {
        "gluon_modern_cnn.book", "gluon_modern_cnn.runtime.compat", "gluon_modern_cnn.checks",
        "gluon_modern_cnn.models._shapes"}
    assert "gluon_modern_cnn.book" in set(_package_imports(PACKAGE / "tools" / "summary.py"))
    assert "gluon_modern_cnn.models" in set(_package_imports(PACKAGE / "__init__.py"))


@pytest.mark.parametrize("path", sorted((PACKAGE / "models").glob("*.py")),
                         ids=lambda p: p.name)
def test_models_import_nothing_above_them(path):
    may_import = set(MODELS_MAY_IMPORT)
    if path.name == "edition10.py":
        # The one known exception: the 1.0 edition writes its networks as subclasses of its
        # d2l.Classifier, whose Module base owns a ProgressBoard and reports to a Trainer.
        # Splitting Module's model side from its training side is still to come (issue 11).
        may_import.add("gluon_modern_cnn.edition10")
    above = {m for m in _package_imports(path)
             if not m.startswith("gluon_modern_cnn.models") and m not in may_import}
    assert not above, f"models/{path.name} imports {sorted(above)}"


def test_registry_and_flops_import_no_model_family():
    lower = {"gluon_modern_cnn.models._shapes", "gluon_modern_cnn.models._registry"}
    for path in (PACKAGE / "models" / "_registry.py", PACKAGE / "models" / "_shapes.py",
                 PACKAGE / "tools" / "flops.py"):
        families = {m for m in _package_imports(path)
                    if m.startswith("gluon_modern_cnn.models") and m not in lower}
        assert not families, f"{path.name} imports {sorted(families)}"


def test_registry_module_is_a_documented_re_export():
    from gluon_modern_cnn import registry
    from gluon_modern_cnn.models import _registry
    for name in registry.__all__:
        assert getattr(registry, name) is getattr(_registry, name)
    assert "models/_registry.py" in registry.__doc__


def test_public_builders_and_classes_document_their_arguments():
    # timm's and torchvision's convention: an `Args:` section beside the book-section provenance.
    import inspect
    from gluon_modern_cnn import models
    objects = {name: getattr(models, name) for name in models.__all__}
    public = {name: obj for name, obj in objects.items()
              if inspect.isfunction(obj) or (inspect.isclass(obj)
                                             and not issubclass(obj, Exception))}
    assert "ResidualV1" in public and "get_model" in public
    assert [name for name, obj in public.items() if "Args:" not in (obj.__doc__ or "")] == []
