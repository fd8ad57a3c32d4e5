"""The registry over every registered model: ``num_classes`` sets the output width, the book/twin
bookkeeping is consistent, and the package's layers import one way (``models/`` nothing above it,
the registry no family, no import circle)."""
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
# Import direction: models/ is the bottom layer above the MXNet compatibility layer, the argument
# checks and the book's data; the registry imports no family; the FLOP counter no model class.
# Every other file is in a layer (docs/architecture.md) and imports only the layers below it.

#: What models/ may import from the rest of the package.
MODELS_MAY_IMPORT = {"gluon_modern_cnn.runtime.compat", "gluon_modern_cnn.runtime.mxnet_internals",
                     "gluon_modern_cnn.book", "gluon_modern_cnn.checks"}


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
            # `from . import book` imports a module; `from .x import name` a name of module x;
            # `from .. import __version__` only the version string of the package's root.
            names = [f"{base}.{a.name}" if _is_module(f"{base}.{a.name}")
                     or a.name == "__version__" else base for a in node.names]
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
    assert set(_package_imports(PACKAGE / "runtime" / "machine.py")) == {
        "gluon_modern_cnn.__version__", "gluon_modern_cnn.runtime.devices"}
    assert "gluon_modern_cnn.book" in set(_package_imports(PACKAGE / "tools" / "summary.py"))
    assert "gluon_modern_cnn.models" in set(_package_imports(PACKAGE / "__init__.py"))


@pytest.mark.parametrize("path", sorted((PACKAGE / "models").glob("*.py")),
                         ids=lambda p: p.name)
def test_models_import_nothing_above_them(path):
    above = {m for m in _package_imports(path)
             if not m.startswith("gluon_modern_cnn.models") and m not in MODELS_MAY_IMPORT}
    assert not above, f"models/{path.name} imports {sorted(above)}"


#: The layers, bottom to top, by module prefix (docs/architecture.md). The bottom holds what every
#: layer may read: the argument checks, the book's printed lines and settings, the version string.
LAYERS = {
    "bottom": ("gluon_modern_cnn.checks", "gluon_modern_cnn.book", "gluon_modern_cnn.__version__"),
    "runtime": ("gluon_modern_cnn.runtime",),
    "data": ("gluon_modern_cnn.data",),
    "models": ("gluon_modern_cnn.models", "gluon_modern_cnn.registry"),
    "training": ("gluon_modern_cnn.training",),
    "tools": ("gluon_modern_cnn.tools", "gluon_modern_cnn.bench"),
    # What a reader imports: the d2l namespace, the editions' APIs, the moved modules' old paths.
    "reader": ("gluon_modern_cnn.edition10", "gluon_modern_cnn.gluonbook",
               "gluon_modern_cnn.book_cells", "gluon_modern_cnn.losses",
               "gluon_modern_cnn.precision", "gluon_modern_cnn.flops", "gluon_modern_cnn.export"),
    # Entry points: the command line, and the old paths `python -m` runs.
    "entry": ("gluon_modern_cnn.cli", "gluon_modern_cnn.__main__", "gluon_modern_cnn.distributed",
              "gluon_modern_cnn.model_docs"),
}
#: What each layer may import besides itself.
MAY_IMPORT = {
    "bottom": set(),
    "runtime": {"bottom"},
    "data": {"bottom", "runtime"},
    "models": {"bottom", "runtime"},
    "training": {"bottom", "runtime", "data", "models"},
    "tools": {"bottom", "runtime", "data", "models", "training"},
    "reader": {"bottom", "runtime", "data", "models", "training", "tools"},
    "entry": {"bottom", "runtime", "data", "models", "training", "tools", "reader"},
}
PACKAGE_FILES = sorted(PACKAGE.rglob("*.py"))


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> str:
    if module == "gluon_modern_cnn":
        return "reader"  # the d2l namespace
    for layer, prefixes in LAYERS.items():
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return layer
    raise AssertionError(f"{module} is in no layer: add it to LAYERS (and docs/architecture.md)")


def _runs_the_package_as_a_process(path: Path) -> bool:
    """Whether ``path`` imports the package's root in its ``if __name__ == "__main__":`` block, as
    a process's entry point does (for the numpy aliases and ``set_np``)."""
    for node in ast.parse(path.read_text()).body:
        test = getattr(node, "test", None)
        if isinstance(node, ast.If) and isinstance(test, ast.Compare) \
                and isinstance(test.left, ast.Name) and test.left.id == "__name__":
            return any(isinstance(n, ast.Import) and any(a.name == "gluon_modern_cnn"
                                                          for a in n.names)
                       for n in ast.walk(node))
    return False


@pytest.mark.parametrize("path", PACKAGE_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_file_imports_only_the_layers_below_it(path):
    module = _module_name(path)
    layer = _layer(module)
    allowed = {"gluon_modern_cnn"} if _runs_the_package_as_a_process(path) else set()
    wrong = {m for m in _package_imports(path)
             if _layer(m) not in MAY_IMPORT[layer] | {layer} and m not in allowed}
    assert not wrong, f"{module} ({layer}) imports {sorted(wrong)}"


def test_only_entry_points_import_the_cli_and_the_package_no_old_path():
    old_paths = set(LAYERS["reader"][3:]) | set(LAYERS["entry"][2:])
    for path in PACKAGE_FILES:
        module = _module_name(path)
        imports = set(_package_imports(path))
        if "gluon_modern_cnn.cli" in imports:
            assert module in LAYERS["entry"], f"{module} imports the command line"
        if module not in old_paths:
            assert not imports & old_paths, f"{module} imports {sorted(imports & old_paths)}: " \
                                            f"use the module's new path"


def test_no_import_circle():
    graph = {_module_name(path): set(_package_imports(path)) for path in PACKAGE_FILES}
    done, path = set(), []

    def visit(module):
        if module in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(module):]
                                                                 + [module]))
        if module in done:
            return
        path.append(module)
        for imported in graph.get(module, ()):
            visit(imported)
        path.pop()
        done.add(module)

    for module in graph:
        visit(module)


#: The devices package, bottom to top: each module imports only the ones before it, and its
#: ``__init__`` only re-exports them (docs/architecture.md).
DEVICES_MODULES = ("wheels", "decision", "probes", "selection")


def test_devices_modules_import_one_way():
    folder = PACKAGE / "runtime" / "devices"
    assert {p.stem for p in folder.glob("*.py")} == {"__init__", *DEVICES_MODULES}
    assert set(folder.glob("*.py")) <= set(PACKAGE_FILES)  # the layer and circle tests cover them
    for i, name in enumerate(DEVICES_MODULES):
        inside = {m for m in _package_imports(folder / f"{name}.py")
                  if m.startswith("gluon_modern_cnn.runtime.devices")}
        below = {f"gluon_modern_cnn.runtime.devices.{m}" for m in DEVICES_MODULES[:i]}
        assert inside <= below, f"devices/{name}.py imports {sorted(inside - below)}"


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


# The public API of the layers above the models: their builders, functions and records carry an
# `Args:` section too (exceptions excluded; names re-exported from another module are checked
# where they are defined).
DOCUMENTED_MODULES = [
    "gluon_modern_cnn.training.loop", "gluon_modern_cnn.training.checkpoint",
    "gluon_modern_cnn.training.inference", "gluon_modern_cnn.training.precision",
    "gluon_modern_cnn.training.losses", "gluon_modern_cnn.training.plotting",
    "gluon_modern_cnn.training.progress", "gluon_modern_cnn.training.run_plan",
    "gluon_modern_cnn.training.experiment", "gluon_modern_cnn.training.reproduce",
    "gluon_modern_cnn.bench.harness",
    "gluon_modern_cnn.data.loaders", "gluon_modern_cnn.data.pipelines",
    "gluon_modern_cnn.data.fashion_mnist",
    "gluon_modern_cnn.tools.export", "gluon_modern_cnn.tools.flops",
    "gluon_modern_cnn.tools.summary", "gluon_modern_cnn.tools.crosscheck",
    "gluon_modern_cnn.tools.model_docs",
    "gluon_modern_cnn.runtime.files", "gluon_modern_cnn.runtime.distributed.worker",
    "gluon_modern_cnn.runtime.distributed.layout", "gluon_modern_cnn.runtime.distributed.running",
    "gluon_modern_cnn.runtime.compat", "gluon_modern_cnn.checks",
]


def _takes_parameters(obj) -> bool:
    import inspect
    return bool(inspect.signature(obj).parameters)


def _public_objects_with_parameters(module):
    import inspect
    public = {name: getattr(module, name) for name in module.__all__}
    return {name: obj for name, obj in public.items()
            if (inspect.isfunction(obj) or (inspect.isclass(obj)
                                            and not issubclass(obj, BaseException)))
            and obj.__module__ == module.__name__ and _takes_parameters(obj)}


@pytest.mark.parametrize("module_name", DOCUMENTED_MODULES)
def test_public_api_of_the_other_layers_documents_its_arguments(module_name):
    import importlib
    module = importlib.import_module(module_name)
    public = _public_objects_with_parameters(module)
    assert public, f"{module_name} has no public function or class with parameters to check"
    assert [name for name, obj in public.items() if "Args:" not in (obj.__doc__ or "")] == []


def test_the_argument_check_sees_functions_classes_and_records():
    # Guards the filter above: what it must check is not filtered out.
    from gluon_modern_cnn.runtime import files
    from gluon_modern_cnn.training import checkpoint, loop
    checked = _public_objects_with_parameters(loop)
    assert {"fit", "train_ch6", "History", "EpochRecord", "Accumulator"} <= set(checked)
    assert "Timer" not in checked  # no parameters
    assert "TrainingDiverged" not in checked  # an exception
    assert "claim_run_folder" in _public_objects_with_parameters(files)  # a context manager
    in_checkpoint = _public_objects_with_parameters(checkpoint)
    assert "save_checkpoint" in in_checkpoint
    assert "atomic_write" not in in_checkpoint  # re-exported: checked in runtime.files
