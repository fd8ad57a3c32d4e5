"""A run's decisions, made once by ``plan_run`` and ``resolve_settings`` and passed down: called
directly here (the CLI's subprocess tests cover the same rules through ``gluon-modern-cnn train``)."""
import json

import mxnet as mx
import pytest

from gluon_modern_cnn.bench import BenchConfig
from gluon_modern_cnn.models import list_models, model_info
from gluon_modern_cnn.runtime import distributed
from gluon_modern_cnn.runtime.devices import resolve_devices
from gluon_modern_cnn.training.experiment import run_training, train_model
from gluon_modern_cnn.training.run_plan import RunPlan, plan_run, resolve_settings

from conftest import synthetic_loaders as _synthetic


class FakeClusterKVStore:
    """What plan_run reads of a connected ``dist_sync`` kvstore: its type, rank and size."""

    def __init__(self, rank, num_workers, type="dist_sync"):
        self.rank, self.num_workers, self.type = rank, num_workers, type


@pytest.fixture
def settings():
    return resolve_settings("lenet_bn_hybrid", num_epochs=1, batch_size=16)




@pytest.mark.parametrize("device, expected", [
    (None, (mx.cpu(),)),                       # the book's try_gpu() on a machine without GPU
    ("cpu", (mx.cpu(0),)),
    ("cpu0,cpu1", (mx.cpu(0), mx.cpu(1))),
    (mx.cpu(1), (mx.cpu(1),)),
    ([mx.cpu(0), mx.cpu(1)], (mx.cpu(0), mx.cpu(1))),
])
def test_devices_are_resolved_once_into_a_tuple_of_contexts(settings, device, expected,
                                                               monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert resolve_devices(device) == list(expected)
    assert plan_run(settings, device=device).devices == expected


@pytest.mark.parametrize("device", [[], ["cpu"], 3])
def test_a_device_that_is_no_context_is_refused(device):
    with pytest.raises(ValueError, match="device must be an mx.Context .* or a non-empty list"):
        resolve_devices(device)


def test_the_data_folder_is_resolved_once_to_an_absolute_path(settings, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert plan_run(settings, device="cpu", data_root="data").data_root == tmp_path / "data"
    monkeypatch.setenv("FASHION_MNIST_ROOT", str(tmp_path / "elsewhere"))
    assert plan_run(settings, device="cpu").data_root == tmp_path / "elsewhere"


def test_a_single_machine_plan_writes_and_steps_with_the_local_batch(settings, tmp_path):
    plan = plan_run(settings, device="cpu", out=tmp_path / "run")
    assert (plan.out, plan.is_chief, plan.cluster, plan.kvstore) == (tmp_path / "run", True,
                                                                      None, "device")
    assert plan.shards == {"num_shards": 1, "shard_index": 0}
    assert plan.step_batch_size is None


@pytest.mark.parametrize("rank, kvstore_type, step_batch_size", [
    (0, "dist_sync", 48), (2, "dist_sync", 48), (1, "dist_async", 16)])
def test_a_cluster_plan_decides_rank_shard_writer_and_step_batch(settings, tmp_path, rank,
                                                                  kvstore_type, step_batch_size):
    kv = FakeClusterKVStore(rank, 3, kvstore_type)
    plan = plan_run(settings, device="cpu", kvstore=kv, out=tmp_path / "run")
    assert plan.kvstore is kv
    assert plan.is_chief == (rank == 0)
    assert plan.out == (tmp_path / "run" if rank == 0 else None)  # only rank 0 writes
    assert plan.shards == {"num_shards": 3, "shard_index": rank}
    assert plan.step_batch_size == step_batch_size  # dist_sync: the global batch (3 x 16)


def test_a_cluster_kvstore_is_connected_only_after_every_check(settings, monkeypatch):
    for var in ("DMLC_ROLE", "DMLC_PS_ROOT_URI", "DMLC_PS_ROOT_PORT"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ValueError, match="device must be"):  # refused before connecting
        plan_run(settings, device=[], kvstore="dist_sync")
    with pytest.raises(ValueError, match="needs a parameter-server cluster.*launch"):
        plan_run(settings, device="cpu", kvstore="dist_sync")


def test_an_unknown_kvstore_is_named(settings):
    with pytest.raises(ValueError, match="kvstore must be one of local, device.*got 'nccl'"):
        plan_run(settings, kvstore="nccl")


def test_a_process_started_by_launch_must_train_on_the_cluster(settings, monkeypatch):
    monkeypatch.setenv(distributed.LAUNCHER_ENV_VAR, "1")
    monkeypatch.delenv(distributed.INDEPENDENT_ENV_VAR, raising=False)
    with pytest.raises(ValueError, match="every process would train on its own"):
        plan_run(settings, device="cpu")
    monkeypatch.setenv(distributed.INDEPENDENT_ENV_VAR, "1")
    assert plan_run(settings, device="cpu").cluster is None


def test_a_cluster_run_cannot_resume(settings, tmp_path):
    from gluon_modern_cnn.training.experiment import resume_training
    with pytest.raises(ValueError, match="--resume cannot be combined with --kvstore dist_sync.*"
                                         + str(tmp_path / "run" / "model.params")):
        resume_training(tmp_path / "run", kvstore="dist_sync")


def test_run_training_follows_the_plan(settings, tmp_path, capsys):
    plan = plan_run(settings, device=mx.cpu(), out=tmp_path / "run")
    outcome = run_training(plan, data=_synthetic(), quiet=True)
    assert isinstance(plan, RunPlan)
    assert outcome.devices == [mx.cpu()] and outcome.out == plan.out
    written = json.loads((plan.out / "settings.json").read_text())
    assert written["settings"] == settings.to_dict()
    assert written["devices"] == ["cpu(0)"]
    assert (plan.out / "checkpoint.zip").is_file() and (plan.out / "model.params").is_file()
    assert f"on cpu(0); outputs in {plan.out}" in capsys.readouterr().err


@pytest.mark.parametrize("rank, kvstore_type, expected", [
    (0, "dist_sync", "worker rank 0 of 2 (dist_sync): training lenet_bn_hybrid: 1 epoch, lr 1.0, "
                     "batch 16 per worker (global 32), resize -, seed 0, on cpu(0); outputs in "),
    (1, "dist_async", "worker rank 1 of 2 (dist_async): training lenet_bn_hybrid: 1 epoch, lr 1.0, "
                      "batch 16 per worker (each worker's updates applied on their own), resize -, "
                      "seed 0, on cpu(0); rank 0 writes the results"),
])
def test_a_cluster_run_describes_its_worker_and_who_writes(settings, tmp_path, rank,
                                                           kvstore_type, expected):
    from gluon_modern_cnn.training.experiment import _describe_run
    plan = plan_run(settings, device="cpu", kvstore=FakeClusterKVStore(rank, 2, kvstore_type),
                    out=tmp_path / "run")
    assert _describe_run(plan).startswith(expected)


def test_train_model_is_plan_run_then_run_training(settings, tmp_path):
    a = train_model(settings, device="cpu", data=_synthetic(), quiet=True, progress=False)
    b = run_training(plan_run(settings, device="cpu"), data=_synthetic(), quiet=True,
                     progress=False)
    assert [e.train_loss for e in a.history.epochs] == [e.train_loss for e in b.history.epochs]


def test_a_model_without_book_settings_names_the_ones_to_give():
    with pytest.raises(ValueError, match=r"give lr and batch_size \(e\.g\. --lr 0\.05 "
                                         r"--batch-size 128\)"):
        resolve_settings("resnet50_v1_imagenet", num_epochs=1)


@pytest.mark.parametrize("model", [m for m in list_models()
                                   if model_info(m).hyperparameters is not None])
def test_bench_fills_in_the_settings_a_training_run_would_use(model):
    """``bench`` and ``train`` take a model's book settings from one place."""
    run = resolve_settings(model)
    config = BenchConfig(model).resolved()
    assert (config.lr, config.batch_size, config.seed) == (run.lr, run.batch_size, run.seed)


def test_kvstore_none_or_a_callers_own_kvstore_reaches_the_trainer_as_given(settings):
    assert plan_run(settings, device="cpu", kvstore=None).kvstore is None
    local = mx.kv.create("local")
    plan = plan_run(settings, device="cpu", kvstore=local)
    assert plan.kvstore is local and plan.cluster is None


def test_a_generator_of_contexts_is_taken_like_a_list():
    assert resolve_devices(d for d in (mx.cpu(0), mx.cpu(1))) == [mx.cpu(0), mx.cpu(1)]


def test_the_outcome_carries_the_plan_it_ran(settings):
    plan = plan_run(settings, device="cpu")
    assert run_training(plan, data=_synthetic(), quiet=True, progress=False).plan is plan


def test_reproduce_refuses_under_launch_before_replacing_earlier_results(tmp_path, monkeypatch):
    """Every run of the section is planned (and checked) before --overwrite deletes anything."""
    from gluon_modern_cnn.training.reproduce import reproduce
    earlier = tmp_path / "lenet_bn_scratch" / "model.params"
    earlier.parent.mkdir()
    earlier.write_bytes(b"trained weights")
    monkeypatch.setenv(distributed.LAUNCHER_ENV_VAR, "1")
    monkeypatch.delenv(distributed.INDEPENDENT_ENV_VAR, raising=False)
    with pytest.raises(ValueError, match="every process would train on its own"):
        reproduce("7.5", out=tmp_path, device="cpu", overwrite=True)
    assert earlier.read_bytes() == b"trained weights"
