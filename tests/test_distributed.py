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
    torch.save({"world_size": trainer.dist.world_size, "initial": initial,
                "generator": trainer.generator.state_dict(),
                "local_critic": trainer.local_critic.state_dict(),
                "global_critic": trainer.global_critic.state_dict(),
                "first_index": trainer.stream.state_dict()},
               out / f"rank{rank}.pt")
    trainer.close()


def test_two_gloo_ranks_end_with_identical_weights(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           __file__, str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert r0["world_size"] == r1["world_size"] == 2
    for net in ("generator", "local_critic", "global_critic"):
        for key in r0[net]:
            assert torch.equal(r0[net][key], r1[net][key]), f"{net}.{key} differs between ranks"
    changed = [k for k in r0["generator"] if not torch.equal(r0["generator"][k], r0["initial"][k])]
    assert changed, "training did not change the generator"
    # Only rank 0 writes: one run folder with one checkpoint and one log.
    ckpts = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert ckpts == ["step_00000002.pt"]
    assert len((tmp_path / "run" / "log.csv").read_text().splitlines()) == 3


if __name__ == "__main__":
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
