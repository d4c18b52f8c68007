import multiprocessing as mp

import torch


def work():
    print(torch.ones(1).cuda())


if __name__ == "__main__":
    torch.cuda.set_device(0)
    ctx = mp.get_context("fork")
    proc = ctx.Process(target=work)  # <- cuda-fork
    proc.start()
    proc.join()
