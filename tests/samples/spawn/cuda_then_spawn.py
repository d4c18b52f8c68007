import multiprocessing as mp

import torch


def work():
    print(torch.ones(1))


if __name__ == "__main__":
    model = torch.nn.Linear(2, 2).cuda()
    proc = mp.get_context("spawn").Process(target=work)
    proc.start()
    proc.join()
