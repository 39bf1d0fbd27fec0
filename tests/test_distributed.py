"""DistributedDataParallel on the CPU (gloo, 2 processes via torchrun): the ranks stay identical.

The test launches this file with ``python -m torch.distributed.run --nproc_per_node 2``;
each rank trains the tiny config for 2 steps (each with the double-backward gradient
penalty through DDP-wrapped critics) and saves its weights, then the test compares them.
"""
import os
import subprocess
import sys
from pathlib import Path

import torch


def _worker(out: Path) -> None:
    from course_lib.config import TrainConfig
    from course_lib.train import Trainer

    config = TrainConfig(data="toy", toy_size=16, val_images=0, image_size=32, hole_size=16, max_delta=4,
                         cnum=4, critic_cnum=4, batch_size=2, critic_steps=2, max_iters=2, progress="none",
                         tensorboard=False, device="cpu", seed=0, image_every=1000, val_every=1000)
    trainer = Trainer(config, out / "run")
    initial = {k: v.clone() for k, v in trainer.generator.state_dict().items()}
    trainer.fit()
    rank = trainer.dist.rank
    trainer.close()  # drops the DDP wrappers and leaves the group (no abort at the interpreter's exit)
    trainer.close()  # twice is harmless
    unwrapped = (trainer.g_train is trainer.generator and trainer.d_local_train is trainer.local_critic
                 and trainer.d_global_train is trainer.global_critic)
    torch.save({"world_size": trainer.dist.world_size, "initial": initial, "unwrapped_after_close": unwrapped,
                "generator": trainer.generator.state_dict(),
                "local_critic": trainer.local_critic.state_dict(),
                "global_critic": trainer.global_critic.state_dict(),
                "first_index": trainer.stream.state_dict()},
               out / f"rank{rank}.pt")


def test_two_gloo_ranks_end_with_identical_weights(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           __file__, str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["world_size"] == r1["world_size"] == 2
    assert r0["unwrapped_after_close"] and r1["unwrapped_after_close"], "close() left a DDP wrapper holding the group"
    for net in ("generator", "local_critic", "global_critic"):
        for key in r0[net]:
            assert torch.equal(r0[net][key], r1[net][key]), f"{net}.{key} differs between ranks"
    changed = [k for k in r0["generator"] if not torch.equal(r0["generator"][k], r0["initial"][k])]
    assert changed, "training did not change the generator"
    # Only rank 0 writes: one run folder with one checkpoint and one log.
    ckpts = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert ckpts == ["step_00000002.pt"]
    assert len((tmp_path / "run" / "log.csv").read_text().splitlines()) == 3


def _fault_worker(out: Path) -> None:
    """Validation on rank 0 only; non-finite weights on rank 1 alone stop BOTH ranks at the save."""
    import json

    from course_lib.config import TrainConfig
    from course_lib.train import NonFiniteLossError, Trainer

    config = TrainConfig(data="toy", toy_size=16, val_images=2, image_size=32, hole_size=16, max_delta=4,
                         cnum=4, critic_cnum=4, batch_size=2, critic_steps=2, max_iters=1, progress="none",
                         tensorboard=False, device="cpu", seed=0, image_every=1000, val_every=1)
    trainer = Trainer(config, out / "run")
    calls = []
    real_validate = trainer.validate
    trainer.validate = lambda: calls.append(1) or real_validate()
    trainer.fit()  # one step: validation at step 1, then the final checkpoint
    rank = trainer.dist.rank
    if rank == 1:  # this rank alone finds bad weights (in a real run: a diverged replica)
        with torch.no_grad():
            next(trainer.generator.parameters()).fill_(float("nan"))
    try:
        trainer.save_checkpoint()
        raised = ""
    except NonFiniteLossError as err:
        raised = str(err)
    (out / f"faults{rank}.json").write_text(json.dumps({"validate_calls": len(calls), "raised": raised,
                                                        "global_index": trainer.stream.global_index}))
    trainer.close()


def test_ranks_stop_together_validate_on_rank_0_and_resume_on_another_gpu_count(tmp_path):
    import json

    from course_lib.train import Trainer

    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           __file__, str(tmp_path), "faults"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)  # a hang would time out
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0, r1 = (json.loads((tmp_path / f"faults{r}.json").read_text()) for r in (0, 1))
    assert (r0["validate_calls"], r1["validate_calls"]) == (1, 0)
    assert "not finite" in r1["raised"] and "on another rank" in r0["raised"]  # both stopped, none waits
    # 1 step = 3 updates x 2 ranks x batch 2 = 12 samples of the epoch, counted over both ranks
    assert r0["global_index"] == r1["global_index"] == 12
    # the run's checkpoint (2 processes) resumed in one process: the data continues at sample 12
    single = Trainer(_config_of_run(tmp_path / "run"), tmp_path / "run", resume=True)
    assert single.step == 1 and single.stream.global_index == 12 and single.stream.index == 12
    assert any("from a checkpoint of 2" in note for note in single._notes)


def _config_of_run(run: Path):
    from course_lib import checkpoint as ckpt_io
    from course_lib.config import TrainConfig
    return TrainConfig.from_dict(ckpt_io.load_checkpoint(run)["config"])


if __name__ == "__main__":
    if sys.argv[2:] == ["faults"]:
        _fault_worker(Path(sys.argv[1]))
    else:
        _worker(Path(sys.argv[1]))


def test_a_half_set_torchrun_environment_names_what_is_missing(monkeypatch):
    import pytest

    from course_lib.distributed import init_distributed

    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv("MASTER_PORT", raising=False)
    with pytest.raises(RuntimeError, match=r"MASTER_ADDR and MASTER_PORT are not set.*torchrun"):
        init_distributed("cpu")
    monkeypatch.setenv("WORLD_SIZE", "four")
    with pytest.raises(RuntimeError, match=r"WORLD_SIZE='four' is not an integer"):
        init_distributed("cpu")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "29500")
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(RuntimeError, match=r"RANK=5 is outside 0..1"):
        init_distributed("cpu")
    monkeypatch.setenv("WORLD_SIZE", "1")
    info = init_distributed("cpu")  # one process: nothing to join
    assert (info.rank, info.world_size, info.distributed) == (0, 1, False)
