"""Libraries that detect a torchrun launch, run unchanged: argv[1] names the library, argv[2] the output dir."""
import json
import os
import sys
from pathlib import Path

library, out = sys.argv[1], Path(sys.argv[2])


def write(rank, world_size, **extra):
    out.mkdir(parents=True, exist_ok=True)
    (out / f"rank{rank}.json").write_text(json.dumps({"rank": rank, "world_size": world_size, **extra}))


def ignite_main(local_rank):
    import ignite.distributed as idist
    import torch

    total = idist.all_reduce(torch.tensor([1.0]))
    write(idist.get_rank(), idist.get_world_size(), total=total.item(), backend=idist.backend())


if __name__ == "__main__":
    if library == "ignite":
        import ignite.distributed as idist

        with idist.Parallel(backend="gloo") as parallel:
            parallel.run(ignite_main)
    elif library == "accelerate":
        import torch
        from accelerate import Accelerator

        accelerator = Accelerator(cpu=True)
        total = accelerator.reduce(torch.tensor([1.0]), reduction="sum")
        write(accelerator.process_index, accelerator.num_processes, total=total.item())
    elif library == "fabric":
        import torch
        from lightning.fabric import Fabric

        fabric = Fabric(accelerator="cpu", devices=int(os.environ["LOCAL_WORLD_SIZE"]), strategy="ddp")
        fabric.launch()
        total = fabric.all_reduce(torch.tensor([1.0]), reduce_op="sum")
        write(fabric.global_rank, fabric.world_size, total=total.item(),
              environment=type(fabric.strategy.cluster_environment).__name__)
