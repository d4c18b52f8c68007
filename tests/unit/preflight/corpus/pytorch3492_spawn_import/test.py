# Corpus case, written after the snippet in pytorch/pytorch issue #3492 ("context has already been set"):
# spawn is chosen at import, CUDA tensors are made at import and task() starts Processes at import: each
# spawned child re-imports the script and runs all of it again.
import torch

torch.multiprocessing.set_start_method("spawn")
import torch.multiprocessing as mp  # noqa: E402


def sub_processes(A, B, D, i, j, size):
    D[(j * size):((j + 1) * size), i] = torch.mul(B[:, i], A[j, i])


def task(A, B):
    size1 = A.shape
    size2 = B.shape
    D = torch.zeros([size1[0] * size2[0], size1[1]]).cuda()
    D.share_memory_()
    for i in range(1):
        processes = []
        for j in range(size1[0]):
            p = mp.Process(target=sub_processes, args=(A, B, D, i, j, size2[0]))
            p.start()
            processes.append(p)
        for p in processes:
            p.join()
    return D


A = torch.rand(3, 3).cuda()
B = torch.rand(3, 3).cuda()
C = task(A, B)
print(C)
