# Corpus case, rewritten after pytorch/examples distributed/rpc/parameter_server/rpc_parameter_server.py:
# set_start_method("spawn"), then Processes whose targets are module-level functions and whose arguments
# (DataLoaders without lambdas) pickle.
import argparse
import os

import torch
import torch.distributed.rpc as rpc
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F
from torchvision import datasets, transforms


class Net(nn.Module):
    def __init__(self, num_gpus=0):
        super().__init__()
        self.device = torch.device("cuda:0" if torch.cuda.is_available() and num_gpus > 0 else "cpu")
        self.fc = nn.Linear(784, 10).to(self.device)

    def forward(self, x):
        return F.log_softmax(self.fc(torch.flatten(x.to(self.device), 1)), dim=1)


def run_parameter_server(rank, world_size):
    rpc.init_rpc(name="parameter_server", rank=rank, world_size=world_size)
    rpc.shutdown()


def run_worker(rank, world_size, num_gpus, train_loader, test_loader):
    rpc.init_rpc(name=f"trainer_{rank}", rank=rank, world_size=world_size)
    net = Net(num_gpus=num_gpus)
    for data, target in train_loader:
        F.nll_loss(net(data), target.to(net.device)).backward()
    rpc.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Parameter-Server RPC based training")
    parser.add_argument("--world_size", type=int, default=4)
    parser.add_argument("--rank", type=int, default=None)
    parser.add_argument("--num_gpus", type=int, default=0)
    parser.add_argument("--master_addr", type=str, default="localhost")
    parser.add_argument("--master_port", type=str, default="29500")
    args = parser.parse_args()
    assert args.rank is not None, "must provide rank argument."
    os.environ["MASTER_ADDR"] = args.master_addr
    os.environ["MASTER_PORT"] = args.master_port
    processes = []
    world_size = args.world_size
    mp.set_start_method("spawn")
    if args.rank == 0:
        p = mp.Process(target=run_parameter_server, args=(0, world_size))
        p.start()
        processes.append(p)
    else:
        train_loader = torch.utils.data.DataLoader(
            datasets.MNIST("../data", train=True, download=True,
                           transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])),
            batch_size=32, shuffle=True)
        test_loader = torch.utils.data.DataLoader(
            datasets.MNIST("../data", train=False,
                           transform=transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])),
            batch_size=32, shuffle=True)
        p = mp.Process(target=run_worker, args=(args.rank, world_size, args.num_gpus, train_loader, test_loader))
        p.start()
        processes.append(p)
    for p in processes:
        p.join()
