# Corpus case, rewritten after pytorch/examples distributed/FSDP/T5_training.py: run by torchrun; the
# loaders get num_workers=2 through **kwargs after update(); CUDA memory queries for logging.
import argparse
import os

import torch
import torch.distributed as dist
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler
from transformers import AutoTokenizer, T5ForConditionalGeneration


class WikihowDataset(torch.utils.data.Dataset):
    def __init__(self, tokenizer, n=1000):
        self.items = [tokenizer("summarize: text " + str(i), return_tensors="pt") for i in range(n)]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, idx):
        return {k: v.squeeze(0) for k, v in self.items[idx].items()}


def format_metrics_to_gb(item):
    return round(item / 2 ** 30, 4)


def fsdp_main(args):
    local_rank = int(os.environ["LOCAL_RANK"])
    rank = int(os.environ["RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    dist.init_process_group("nccl")
    model = T5ForConditionalGeneration.from_pretrained("t5-base")
    tokenizer = AutoTokenizer.from_pretrained("t5-base")
    train_dataset = WikihowDataset(tokenizer)
    sampler1 = DistributedSampler(train_dataset, rank=rank, num_replicas=world_size, shuffle=True)
    train_kwargs = {"batch_size": args.batch_size, "sampler": sampler1}
    cuda_kwargs = {"num_workers": 2, "pin_memory": True, "shuffle": False}
    train_kwargs.update(cuda_kwargs)
    train_loader = torch.utils.data.DataLoader(train_dataset, **train_kwargs)
    torch.cuda.set_device(local_rank)
    model = FSDP(model, device_id=torch.cuda.current_device())
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    for epoch in range(1, args.epochs + 1):
        model.train()
        sampler1.set_epoch(epoch)
        for batch in train_loader:
            for key in batch:
                batch[key] = batch[key].to(local_rank)
            optimizer.zero_grad()
            output = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["input_ids"])
            output["loss"].backward()
            optimizer.step()
        if rank == 0:
            print(f"epoch {epoch}: allocated {format_metrics_to_gb(torch.cuda.memory_allocated())} GB, "
                  f"reserved {format_metrics_to_gb(torch.cuda.memory_reserved())} GB")
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="PyTorch T5 FSDP Example")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.002)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    fsdp_main(args)
