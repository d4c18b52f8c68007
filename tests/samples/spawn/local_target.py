import torch.multiprocessing as mp


def main():
    def work(rank):  # <- pickle
        print(rank)

    mp.spawn(work, nprocs=2)


if __name__ == "__main__":
    main()
